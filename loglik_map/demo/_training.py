"""Training of the miniature model suite: tokenizer, model configuration, token stream, the loop."""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import LoglikMapError
from ..scoring._loading import quiet_transformers
from ._tokenizer import train_bpe_tokenizer

if TYPE_CHECKING:
    from ._zoo import RunConfig, ZooConfig

__all__ = ["model_from_config", "token_stream", "train_steps", "train_tokenizer"]


def train_tokenizer(texts: Sequence[str], vocab_size: int, folder: Path) -> Any:
    tokenizer = train_bpe_tokenizer(texts, vocab_size, style="neox")
    tokenizer.save_pretrained(folder)
    return tokenizer


def model_from_config(run: RunConfig, cfg: ZooConfig, vocab: int):
    import transformers as tf

    common: dict[str, Any] = dict(vocab_size=vocab, hidden_size=run.hidden, num_hidden_layers=run.layers,
                  intermediate_size=4 * run.hidden, max_position_embeddings=cfg.max_positions, bos_token_id=0,
                  eos_token_id=0)
    heads = max(run.hidden // 32, 1)
    config: Any
    if run.arch == "neox":
        config = tf.GPTNeoXConfig(num_attention_heads=heads, **common)
    elif run.arch == "llama":
        config = tf.LlamaConfig(num_attention_heads=heads, num_key_value_heads=heads, **common)
    else:
        raise LoglikMapError(f"unknown zoo architecture {run.arch!r}")
    return tf.AutoModelForCausalLM.from_config(config)


def token_stream(tokenizer, texts: Sequence[str]):
    import torch

    ids: list[int] = []
    for t in texts:
        ids.extend(tokenizer(t, add_special_tokens=False)["input_ids"])
        ids.append(tokenizer.eos_token_id)
    return torch.tensor(ids, dtype=torch.long)


def train_steps(model, stream, *, steps: int, cfg: ZooConfig, seed: int, save_at: dict[int, Path], tokenizer,
           lr: float | None = None, warmup: int | None = None, bar=None) -> None:
    import torch

    gen = torch.Generator().manual_seed(seed)
    peak = cfg.learning_rate if lr is None else lr
    warm = cfg.warmup if warmup is None else warmup
    opt = torch.optim.AdamW(model.parameters(), lr=peak, weight_decay=0.01, betas=(0.9, 0.95))

    def lr_at(step: int) -> float:
        if step < warm:
            return peak * (step + 1) / warm
        frac = (step - warm) / max(steps - warm, 1)
        return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    def save(step: int) -> None:
        if step in save_at:
            tmp = save_at[step].with_name(save_at[step].name + ".partial")
            shutil.rmtree(tmp, ignore_errors=True)
            with quiet_transformers():
                model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            shutil.rmtree(save_at[step], ignore_errors=True)
            os.replace(tmp, save_at[step])

    model.train()
    save(0)
    n = stream.numel() - cfg.seq_len - 1
    for step in range(steps):
        starts = torch.randint(0, n, (cfg.batch_size,), generator=gen)
        batch = torch.stack([stream[s : s + cfg.seq_len] for s in starts.tolist()])
        for group in opt.param_groups:
            group["lr"] = lr_at(step)
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        save(step + 1)
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"loss {loss.item():.3f}")
    model.eval()
