"""A byte-level BPE tokenizer trained locally (for the miniature zoo and the tests: no hub access)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["train_bpe_tokenizer"]


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int, *, style: str = "neox") -> Any:
    """Train a byte-level BPE tokenizer on ``texts``.

    Parameters
    ----------
    texts : iterable of str
        Training texts.
    vocab_size : int
        Vocabulary size, special tokens included.
    style : {"neox", "llama"}
        ``"neox"``: one special token ``<|endoftext|>`` (BOS and EOS), none added to a text
        (GPT-NeoX/GPT-2 style). ``"llama"``: ``<s>``, ``</s>``, ``<unk>``, with ``<s>`` prepended to
        every text (Llama style).

    Returns
    -------
    transformers.PreTrainedTokenizerFast
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    if style not in ("neox", "llama"):
        raise ValueError(f"unknown tokenizer style {style!r}; use 'neox' or 'llama'")
    special = ["<|endoftext|>"] if style == "neox" else ["<s>", "</s>", "<unk>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=special,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(texts), trainer)
    if style == "neox":
        return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", tok.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>")
