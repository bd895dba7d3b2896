"""Padding-free scoring: windows packed end to end in one row, attention kept inside each window.

A batch of right-padded windows spends ``padded / real`` times the FLOPs it needs (1.03× for the
built-in texts, more for mixed lengths). Packing removes the pad tokens altogether: windows are
laid end to end in one row of at most ``max_tokens`` tokens, each with its own position ids
(0, 1, … from its start), and attention is restricted to each window by a variable-length
attention function registered with transformers (:data:`ATTENTION`): on CUDA
``torch.nn.attention.varlen.varlen_attn`` (FlashAttention over cumulative sequence lengths), on
other devices one causal ``scaled_dot_product_attention`` per window — slow, for checking the
numbers only.

This is an optimisation, so it proves itself per model: :func:`check_packing` compares it with
the model's own forward, one window at a time, on a probe; models whose attention does not go
through transformers' attention interface, or that read something besides position ids from
the row (absolute position tables indexed past a window's start, recurrent state, token-type
ids), disagree there and must not be packed. Packing is not used by the scorers yet: it is
measured first (``benchmarks/bench_gpu_next.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np

from ..errors import LoglikMapError
from ._torch import torch_module
from ._windows import Window

__all__ = ["ATTENTION", "check_packing", "pack_windows", "packed_logprob_sums"]

#: The name under which the variable-length attention is registered with transformers.
ATTENTION = "loglik_map_varlen"
_registered = False


def _varlen_attention(module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float | None = None,
                      dropout: float = 0.0, *, cu_seq_lens_q: Any = None, max_length_q: int | None = None,
                      **kwargs: Any) -> tuple[Any, None]:
    """transformers attention interface: ``query`` (1, Hq, T, D), ``key``/``value`` (1, Hkv, T, D)."""
    torch = torch_module()
    F = torch.nn.functional

    if cu_seq_lens_q is None or query.shape[0] != 1:
        raise LoglikMapError("packed attention needs one packed row and its cumulative window lengths "
                             "(cu_seq_lens_q); call the model through packed_logprob_sums")
    window = getattr(module, "sliding_window", None)
    if window:
        raise LoglikMapError(f"packed attention does not handle sliding-window layers ({type(module).__name__})")
    gqa = query.shape[1] != key.shape[1]
    if query.device.type == "cuda":
        from torch.nn.attention.varlen import varlen_attn

        q, k, v = (x[0].transpose(0, 1) for x in (query, key, value))  # (T, H, D)
        longest = int(max_length_q or 0)
        out = varlen_attn(q, k, v, cu_seq_lens_q, cu_seq_lens_q, longest, longest, scale=scaling,
                          window_size=(-1, 0), enable_gqa=gqa)
        return out.unsqueeze(0), None  # type: ignore[union-attr]  # a tensor unless return_aux is given
    bounds = cu_seq_lens_q.tolist()
    parts = [F.scaled_dot_product_attention(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], is_causal=True,
                                            scale=scaling, enable_gqa=gqa)
             for a, b in pairwise(bounds)]
    return torch.cat(parts, dim=2).transpose(1, 2).contiguous(), None


def _register() -> None:
    global _registered
    if not _registered:
        from transformers import AttentionInterface

        AttentionInterface.register(ATTENTION, _varlen_attention)
        _registered = True


def pack_windows(windows: Sequence[Window], max_tokens: int) -> list[list[int]]:
    """Window indices grouped into rows of at most ``max_tokens`` tokens (first fit, longest first).

    Parameters
    ----------
    windows : sequence of Window
        The windows to score.
    max_tokens : int
        Tokens per packed row; at least the longest window.

    Returns
    -------
    list of list of int
        Indices into ``windows``, one list per row, every window exactly once.
    """
    longest = max((len(w.ids) for w in windows), default=0)
    if longest > max_tokens:
        raise LoglikMapError(f"a window has {longest} tokens, more than max_tokens={max_tokens}; raise max_tokens")
    order = sorted(range(len(windows)), key=lambda i: (-len(windows[i].ids), i))
    rows: list[list[int]] = []
    free: list[int] = []
    for i in order:
        n = len(windows[i].ids)
        for r, room in enumerate(free):
            if n <= room:
                rows[r].append(i)
                free[r] -= n
                break
        else:
            rows.append([i])
            free.append(max_tokens - n)
    return rows


def packed_logprob_sums(model: Any, windows: Sequence[Window], max_tokens: int) -> np.ndarray:
    """Sum of log p(target) over each window's scored positions, nats, from packed rows.

    Parameters
    ----------
    model : transformers causal LM
        Evaluated with :data:`ATTENTION` attention for the call (restored afterwards).
    windows : sequence of Window
        The windows (``score_from`` honoured, as the scorers do).
    max_tokens : int
        Tokens per packed row.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(windows),)``, float64, nats. The log-softmax is taken in float32.
    """
    torch = torch_module()
    _register()
    device = next(model.parameters()).device
    config = model.config
    previous = config._attn_implementation
    out = np.zeros(len(windows))
    try:
        model.set_attn_implementation(ATTENTION)
    except (ValueError, NotImplementedError) as err:
        raise LoglikMapError(f"{type(model).__name__} cannot be packed: {err}") from None
    if model.config._attn_implementation != ATTENTION:
        raise LoglikMapError(f"{type(model).__name__} cannot be packed: its attention does not go through "
                             "transformers' attention interface; score it with padded batches")
    try:
        with torch.inference_mode():
            for row in pack_windows(windows, max_tokens):
                lengths = [len(windows[i].ids) for i in row]
                ids = torch.tensor([t for i in row for t in windows[i].ids], device=device)[None]
                positions = torch.cat([torch.arange(n, device=device) for n in lengths])[None]
                cu = torch.tensor(np.concatenate([[0], np.cumsum(lengths)]), device=device, dtype=torch.int32)
                logits = model(input_ids=ids, position_ids=positions, cu_seq_lens_q=cu, cu_seq_lens_k=cu,
                               max_length_q=max(lengths), max_length_k=max(lengths), use_cache=False).logits[0]
                for i, start in zip(row, cu[:-1].tolist()):
                    w = windows[i]
                    span = logits[start + w.score_from - 1:start + len(w.ids) - 1].float()
                    targets = ids[0, start + w.score_from:start + len(w.ids)]
                    logp = torch.log_softmax(span, dim=-1).gather(-1, targets[:, None])
                    out[i] = float(logp.double().sum())
    finally:
        model.set_attn_implementation(previous)
    return out


def check_packing(model: Any, windows: Sequence[Window], max_tokens: int, *, tolerance: float = 1e-3) -> float:
    """Largest |packed − one window at a time| over ``windows``, nats per window; raise beyond ``tolerance``.

    The reference is the model's own forward on each window alone (float32 log-softmax).

    Parameters
    ----------
    model : transformers causal LM
        The model.
    windows : sequence of Window
        A probe: a few windows of mixed lengths, packed together.
    max_tokens : int
        Tokens per packed row.
    tolerance : float, default 1e-3
        Nats per window.

    Returns
    -------
    float
        The largest absolute difference, nats.

    Raises
    ------
    LoglikMapError
        If the difference exceeds ``tolerance``: this model must not be packed.
    """
    torch = torch_module()
    device = next(model.parameters()).device
    alone = np.zeros(len(windows))
    with torch.inference_mode():
        for i, w in enumerate(windows):
            ids = torch.tensor(w.ids, device=device)[None]
            logits = model(input_ids=ids, use_cache=False).logits[0, w.score_from - 1:-1].float()
            alone[i] = float(torch.log_softmax(logits, -1).gather(-1, ids[0, w.score_from:, None]).double().sum())
    packed = packed_logprob_sums(model, windows, max_tokens)
    diff = float(np.max(np.abs(packed - alone)))
    if not diff <= tolerance:
        raise LoglikMapError(f"packed scoring disagrees with {type(model).__name__}'s own forward by {diff:.3g} nats "
                             f"per window (tolerance {tolerance:g}); score this model with padded batches")
    return diff
