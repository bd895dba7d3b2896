"""Which tokens of a text are scored: conventions and long-text windows (:ref:`method-loglik`), torch-free.

A text becomes one or more *windows*: a token sequence fed to the model and the position from
which its targets are scored. Position ``p`` scores token ``ids[p]`` given ``ids[:p]``; a text's
log-likelihood is the sum over its windows' scored positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LoglikMapError

__all__ = [
    "CONVENTIONS",
    "LONG_TEXT_MODES",
    "EncodedText",
    "Window",
    "cut_windows",
    "encode_text",
    "encode_texts",
    "plan_batches",
    "token_ids",
]

CONVENTIONS = ("reference", "bos")
LONG_TEXT_MODES = ("rolling", "truncate", "error")


@dataclass(frozen=True)
class Window:
    """Tokens fed to the model at once; targets ``ids[score_from:]`` are scored."""

    text_index: int
    ids: tuple[int, ...]
    score_from: int

    @property
    def n_scored(self) -> int:
        return len(self.ids) - self.score_from


@dataclass(frozen=True)
class EncodedText:
    """A text's windows, how many tokens it has, and how many truncation dropped."""

    windows: tuple[Window, ...]
    n_tokens: int
    n_dropped: int


def _prefix_token(tokenizer: Any) -> int:
    for attr in ("bos_token_id", "eos_token_id"):
        tok = getattr(tokenizer, attr, None)
        if tok is not None:
            return int(tok)
    raise LoglikMapError("convention 'bos' needs a tokenizer with a BOS or EOS token")


def token_ids(tokenizer: Any, texts: Sequence[str], *, convention: str) -> list[list[int]]:
    """Token ids of every text under ``convention`` (see :func:`encode_text`), in one tokenizer call.

    A fast (Rust) tokenizer encodes a list of texts on all CPU cores; the ids are those of one
    call per text.
    """
    if convention == "reference":
        return [list(ids) for ids in tokenizer(list(texts), add_special_tokens=True)["input_ids"]]
    if convention == "bos":
        prefix = _prefix_token(tokenizer)
        return [[prefix] + list(ids) for ids in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]
    raise LoglikMapError(f"unknown convention {convention!r}; use one of {CONVENTIONS}")


def encode_text(
    tokenizer: Any,
    text: str,
    index: int,
    *,
    convention: str,
    max_length: int,
    long_texts: str,
    stride: int | None = None,
) -> EncodedText:
    """Tokenize ``text`` and cut it into windows.

    Parameters
    ----------
    tokenizer : transformers tokenizer
        The model's tokenizer.
    text : str
        The text.
    index : int
        Its position in the text set (carried into the windows).
    convention : {"reference", "bos"}
        How the first token is handled (see Notes).
    max_length : int
        The longest window, in tokens (the model's context).
    long_texts : {"rolling", "truncate", "error"}
        What happens to a text longer than ``max_length`` (see Notes).
    stride : int, optional
        New targets per rolling window after the first (default ``max_length // 2``).

    Returns
    -------
    EncodedText
        The text's token ids and windows.

    Notes
    -----
    Conventions:

    ``"reference"``
        ``tokenizer(text)`` with the tokenizer's own special tokens (as shimo-lab/modelmap's
        ``tokenizer.encode``); the first token is conditioning only, so a BOS-prepending tokenizer
        scores every text token and a GPT-NeoX/GPT-2 tokenizer does not score the first one.
    ``"bos"``
        The text's tokens without special tokens, after one BOS (EOS if there is no BOS) that is
        conditioning only: every text token is scored (as lm-evaluation-harness
        ``loglikelihood_rolling``); never a double BOS.

    Long texts (more than ``max_length`` tokens): ``"rolling"`` scores every token once with
    overlapping windows of ``max_length`` tokens, each after the first adding ``stride`` new
    targets (default ``max_length // 2``, so every token sees at least ``max_length - stride``
    tokens of context); ``"truncate"`` keeps the first ``max_length`` (and records how many were
    dropped); ``"error"`` refuses. A text that fits is one window whatever the mode, so all three
    give the same number for it.
    """
    ids = token_ids(tokenizer, [text], convention=convention)[0]
    return cut_windows(ids, index, convention=convention, max_length=max_length, long_texts=long_texts,
                       stride=stride)


def encode_texts(
    tokenizer: Any,
    texts: Sequence[str],
    *,
    convention: str,
    max_length: int,
    long_texts: str,
    stride: int | None = None,
    text_ids: Sequence[str] | np.ndarray | None = None,
) -> list[EncodedText]:
    """:func:`encode_text` of every text, tokenized in one call (text ``i`` gets index ``i``).

    Texts with fewer than two tokens are refused all at once, named by ``text_ids`` if given.
    """
    ids = token_ids(tokenizer, texts, convention=convention)
    short = [i for i, x in enumerate(ids) if len(x) < 2]
    if short:
        names = [repr(str(text_ids[i])) if text_ids is not None else str(i) for i in short]
        shown = ", ".join(f"{name} ({texts[i]!r})" for name, i in zip(names[:3], short))
        more = f" and {len(short) - 3} more" if len(short) > 3 else ""
        hint = " or use convention='bos', which scores every token of a text" if convention == "reference" else ""
        raise LoglikMapError(f"{len(short)} text(s) have fewer than 2 tokens under convention {convention!r}, so "
                             f"nothing of them would be scored (the first token only conditions): {shown}{more}. "
                             f"Leave them out{hint}")
    return [cut_windows(x, i, convention=convention, max_length=max_length, long_texts=long_texts, stride=stride,
                        text_id=None if text_ids is None else str(text_ids[i]))
            for i, x in enumerate(ids)]


def cut_windows(
    ids: Sequence[int],
    index: int,
    *,
    convention: str,
    max_length: int,
    long_texts: str,
    stride: int | None = None,
    text_id: str | None = None,
) -> EncodedText:
    """The windows of one text's token ids (see :func:`encode_text` for the long-text modes).

    ``text_id`` names the text in errors (default: its index).
    """
    name = f"text {text_id!r} (index {index})" if text_id is not None else f"text {index}"
    n = len(ids)
    if n < 2:
        raise LoglikMapError(f"{name} has {n} token(s) under convention {convention!r}; nothing to score")
    if n <= max_length:
        return EncodedText((Window(index, tuple(ids), 1),), n, 0)
    if long_texts == "truncate":
        return EncodedText((Window(index, tuple(ids[:max_length]), 1),), n, n - max_length)
    if long_texts == "error":
        raise LoglikMapError(f"{name} has {n} tokens, more than the model's {max_length}; "
                             "use long_texts='rolling' (every token scored) or 'truncate'")
    if long_texts != "rolling":
        raise LoglikMapError(f"unknown long_texts {long_texts!r}; use one of {LONG_TEXT_MODES}")
    step = max_length // 2 if stride is None else int(stride)
    if not 1 <= step <= max_length - 1:
        raise LoglikMapError(f"stride must be between 1 and max_length - 1 = {max_length - 1}, got {stride}")
    windows = [Window(index, tuple(ids[:max_length]), 1)]
    done = max_length  # targets [1, done) are scored
    while done < n:
        end = min(done + step, n)
        start = end - max_length
        windows.append(Window(index, tuple(ids[start:end]), done - start))
        done = end
    return EncodedText(tuple(windows), n, 0)


def plan_batches(windows: Sequence[Window], batch_tokens: int) -> list[list[int]]:
    """Group window indices, sorted by length, into batches of at most ``batch_tokens`` padded tokens."""
    order = sorted(range(len(windows)), key=lambda w: (len(windows[w].ids), w))
    batches: list[list[int]] = []
    current: list[int] = []
    for w in order:
        length = len(windows[w].ids)  # sorted ascending: the newest is the longest
        if current and (len(current) + 1) * length > batch_tokens:
            batches.append(current)
            current = []
        current.append(w)
    if current:
        batches.append(current)
    return batches
