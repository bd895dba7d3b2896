"""Whether two tokenizers are the same vocabulary: the condition for an exact token-level KL."""

from __future__ import annotations

import json
from typing import Any

from ..errors import LoglikMapError

__all__ = ["VocabularyMismatch", "tokenizer_difference"]

_SPECIAL_NAMES = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")


class VocabularyMismatch(LoglikMapError):
    """Two models whose tokenizers or output vocabularies differ: no exact token-level KL."""


# ---------------------------------------------------------------------- tokenizers
def _backend_json(tok: Any) -> dict[str, Any] | None:
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        return None
    return json.loads(backend.to_str())


def _specials(tok: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _SPECIAL_NAMES:
        value = getattr(tok, name, None)
        if value is not None:
            out[name] = (str(value), tok.convert_tokens_to_ids(str(value)))
    for idx, added in sorted(getattr(tok, "added_tokens_decoder", {}).items()):
        out[f"added token {idx}"] = str(added)
    return out


def _first_difference(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    for key in sorted(set(a) | set(b), key=str):
        if a.get(key) != b.get(key):
            return key
    return None


def tokenizer_difference(tok_a: Any, tok_b: Any) -> str | None:
    """What differs between two tokenizers, in words, or ``None`` if they tokenize alike.

    Compared in order: vocabulary size, special tokens (BOS/EOS/UNK/PAD…, added tokens), the
    vocabulary's content (token → id), BPE merges, and the rest of a fast tokenizer's pipeline
    (normaliser, pre-tokeniser, post-processor, model options).

    Parameters
    ----------
    tok_a, tok_b : transformers tokenizer
        The two tokenizers.

    Returns
    -------
    str or None
        The first difference found, in words (e.g. ``"vocabulary sizes differ: 50304 vs 50432
        tokens"``), or ``None`` when they tokenize alike.
    """
    if tok_a is tok_b:
        return None
    if len(tok_a) != len(tok_b):
        return f"vocabulary sizes differ: {len(tok_a)} vs {len(tok_b)} tokens"
    sa, sb = _specials(tok_a), _specials(tok_b)
    key = _first_difference(sa, sb)
    if key is not None:
        return f"special tokens differ: {key} is {sa.get(key)!r} vs {sb.get(key)!r}"
    va, vb = tok_a.get_vocab(), tok_b.get_vocab()
    if va != vb:
        for token, idx in sorted(va.items(), key=lambda kv: kv[1]):
            if vb.get(token) != idx:
                other = vb.get(token)
                where = f"id {other}" if other is not None else "absent"
                return f"vocabularies differ: token {token!r} is id {idx} vs {where}"
        return "vocabularies differ"  # pragma: no cover - equal sizes and no differing entry of a
    ja, jb = _backend_json(tok_a), _backend_json(tok_b)
    if (ja is None) != (jb is None):
        return "one tokenizer is a fast (Rust) tokenizer, the other is not"
    if ja is not None and jb is not None:
        ma, mb = ja.get("model", {}).get("merges"), jb.get("model", {}).get("merges")
        if ma != mb:
            ma, mb = ma or [], mb or []
            if len(ma) != len(mb):
                return f"BPE merges differ: {len(ma)} vs {len(mb)} merges"
            i = next(i for i, (x, y) in enumerate(zip(ma, mb)) if x != y)
            return f"BPE merges differ: merge {i} is {ma[i]!r} vs {mb[i]!r}"
        for part in ("normalizer", "pre_tokenizer", "post_processor", "model"):
            if ja.get(part) != jb.get(part):
                return f"tokenizer pipelines differ: {part}"
    return None


# ---------------------------------------------------------------------- resolving the two sides
