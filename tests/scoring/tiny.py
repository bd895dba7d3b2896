"""Tiny models and tokenizers built and trained locally for the scoring tests (no hub access)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def corpus() -> list[str]:
    """English/technical text shipped with Python itself (the pydoc topics), deterministic."""
    from pydoc_data.topics import topics

    return [topics[k] for k in sorted(topics)]


def train_tokenizer(kind: str, vocab_size: int = 384):
    """A byte-level BPE tokenizer on :func:`corpus`: ``kind="neox"`` adds no special tokens (GPT-NeoX/GPT-2
    style), ``kind="llama"`` prepends ``<s>`` (Llama style)."""
    from loglik_map.demo._tokenizer import train_bpe_tokenizer

    return train_bpe_tokenizer(corpus(), vocab_size, style=kind)


def tiny_config(arch: str, vocab_size: int, max_positions: int = 64):
    """A 2-layer, 32-wide config of the given architecture."""
    import transformers as tf

    common = dict(vocab_size=vocab_size, initializer_range=0.2)
    if arch == "gpt_neox":
        return tf.GPTNeoXConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                max_position_embeddings=max_positions, **common)
    if arch == "llama":
        return tf.LlamaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                              intermediate_size=64, max_position_embeddings=max_positions, **common)
    if arch == "gpt2":
        return tf.GPT2Config(n_embd=32, n_layer=2, n_head=2, n_positions=max_positions, bos_token_id=0,
                             eos_token_id=0, **common)
    if arch == "mistral":
        return tf.MistralConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                intermediate_size=64, max_position_embeddings=max_positions, **common)
    if arch == "qwen2":
        return tf.Qwen2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                              intermediate_size=64, max_position_embeddings=max_positions, **common)
    if arch == "gemma":
        return tf.GemmaConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                              intermediate_size=64, head_dim=8, max_position_embeddings=max_positions, **common)
    if arch == "opt":
        return tf.OPTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, ffn_dim=64,
                            word_embed_proj_dim=32, max_position_embeddings=max_positions, **common)
    if arch == "phi":
        return tf.PhiConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                            max_position_embeddings=max_positions, **common)
    raise ValueError(arch)


def build_model(arch: str, tokenizer, seed: int = 0, max_positions: int = 64):
    """A randomly initialised fp32 model with randomised (non-trivial) final-norm weights."""
    import torch
    from transformers import AutoModelForCausalLM

    from loglik_map.scoring._architectures import find_final_norm

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(tiny_config(arch, len(tokenizer), max_positions))
    model.eval()
    norm = find_final_norm(model)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        norm.weight.copy_(torch.rand(norm.weight.shape, generator=g) * 2.5 + 0.5)
        if getattr(norm, "bias", None) is not None:
            norm.bias.copy_(torch.randn(norm.bias.shape, generator=g))
    return model


def save(model, tokenizer, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def sample_texts(n: int, seed: int = 0, min_chars: int = 40, max_chars: int = 160) -> list[str]:
    """Distinct snippets of the corpus of varied length (some with non-ASCII characters)."""
    rng = np.random.default_rng(seed)
    text = " ".join(corpus())
    out: list[str] = []
    while len(out) < n:
        start = int(rng.integers(0, len(text) - max_chars))
        snippet = text[start : start + int(rng.integers(min_chars, max_chars))].strip()
        if len(out) % 7 == 3:
            snippet += " — naïve café ✓"
        if snippet and snippet not in out:
            out.append(snippet)
    return out


def reference_loglik(model, tokenizer, text: str, max_length: int) -> float:
    """shimo-lab/modelmap's procedure, one text at a time: encode, truncate, full logits, log_softmax, sum."""
    import torch

    ids = tokenizer.encode(text, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.no_grad():
        logits = model(ids, use_cache=False).logits.float()
    lp = torch.log_softmax(logits, dim=-1)
    return float(sum(float(lp[0, i, ids[0, i + 1]]) for i in range(ids.shape[1] - 1)))
