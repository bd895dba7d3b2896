"""Fused unembedding + log-softmax at the target token, as one Triton kernel (GPUs only).

For positions with final hidden states ``H`` (S × d) and an output embedding ``W`` (V × d, bias
``b``), the scorer needs only ``log p(target) = H Wᵀ[s, t_s] + b[t_s] − logsumexp_v (H Wᵀ + b)[s, v]``.
The plain way writes the S × V float32 logits to device memory and reads them back twice (the
log-sum-exp and the gather): at V = 50k that traffic costs as much time as the matrix product
itself. Here each program multiplies a block of positions by a range of vocabulary rows in
registers (float32 accumulation of half-precision products, exactly what a matrix product with a
float32 output computes), keeps a running maximum, sum of exponentials and target logit per
position — the online softmax of flash attention, with the vocabulary as the keys — and writes
three numbers per position and vocabulary range. :func:`fused_target_logprobs` combines the ranges.

Imported only where :mod:`triton` is installed; :mod:`loglik_map.scoring._unembed` decides when it
is used and checks it against the plain computation the first time.
"""

from __future__ import annotations

from typing import Any

import triton
import triton.language as tl

from ._torch import torch_module

torch = torch_module()
__all__ = ["fused_target_logprobs"]

BLOCK_S = 128  # positions per program
BLOCK_V = 128  # vocabulary rows per inner tile
BLOCK_K = 64  # hidden dimensions per step of the product


@triton.jit
def _partial_lse_kernel(
    H, W, B, T, M_out, S_out, TL_out,
    n_rows, vocab, d, stride_h, stride_w, v_per_split,
    HAS_BIAS: tl.constexpr, BLOCK_S: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_K: tl.constexpr,
):
    pid_s = tl.program_id(0)
    pid_v = tl.program_id(1)
    rows = pid_s * BLOCK_S + tl.arange(0, BLOCK_S).to(tl.int64)  # 64-bit offsets: V × d can pass 2³¹
    row_ok = rows < n_rows
    target = tl.load(T + rows, mask=row_ok, other=-1)
    run_max = tl.full([BLOCK_S], float("-inf"), tl.float32)
    run_sum = tl.zeros([BLOCK_S], tl.float32)
    target_logit = tl.zeros([BLOCK_S], tl.float32)
    v_start = pid_v * v_per_split
    for v0 in range(0, v_per_split, BLOCK_V):  # v_per_split is a multiple of BLOCK_V
        cols = v_start + v0 + tl.arange(0, BLOCK_V).to(tl.int64)
        col_ok = cols < vocab  # only the last range has a masked tail, never a whole range
        acc = tl.zeros([BLOCK_S, BLOCK_V], tl.float32)
        for k0 in range(0, d, BLOCK_K):
            ks = k0 + tl.arange(0, BLOCK_K)
            k_ok = ks < d
            h = tl.load(H + rows[:, None] * stride_h + ks[None, :], mask=row_ok[:, None] & k_ok[None, :], other=0.0)
            w = tl.load(W + cols[None, :] * stride_w + ks[:, None], mask=col_ok[None, :] & k_ok[:, None], other=0.0)
            acc = tl.dot(h, w, acc)
        if HAS_BIAS:
            acc += tl.load(B + cols, mask=col_ok, other=0.0).to(tl.float32)[None, :]
        acc = tl.where(col_ok[None, :], acc, float("-inf"))
        target_logit += tl.sum(tl.where(cols[None, :] == target[:, None], acc, 0.0), axis=1)
        new_max = tl.maximum(run_max, tl.max(acc, axis=1))
        run_sum = run_sum * tl.exp(run_max - new_max) + tl.sum(tl.exp(acc - new_max[:, None]), axis=1)
        run_max = new_max
    out = pid_v * n_rows + rows
    tl.store(M_out + out, run_max, mask=row_ok)
    tl.store(S_out + out, run_sum, mask=row_ok)
    tl.store(TL_out + out, target_logit, mask=row_ok)


def _n_splits(n_rows: int, vocab: int, device: Any) -> int:
    """Vocabulary ranges per block of positions: enough programs to fill every SM about four times."""
    row_blocks = triton.cdiv(n_rows, BLOCK_S)
    n_sm = torch.cuda.get_device_properties(device).multi_processor_count if device.type == "cuda" else 4
    return max(1, min(triton.cdiv(vocab, BLOCK_V), triton.cdiv(4 * n_sm, row_blocks)))


def fused_target_logprobs(hidden: Any, weight: Any, bias: Any, targets: Any) -> Any:
    """log p(target) at each position, float32, without materialising the logits.

    Parameters
    ----------
    hidden : torch.Tensor, shape (S, d)
        Final hidden states (already final-normed), float16 or bfloat16.
    weight : torch.Tensor, shape (V, d)
        Output embedding, same dtype and device as ``hidden``.
    bias : torch.Tensor of shape (V,), or None
    targets : torch.Tensor of int64, shape (S,)
        Token predicted at each position.

    Returns
    -------
    torch.Tensor of float32, shape (S,)
        Natural-log probabilities (nats).
    """
    hidden = hidden.contiguous()
    weight = weight if weight.stride(1) == 1 else weight.contiguous()
    n_rows, d = hidden.shape
    vocab = weight.shape[0]
    splits = _n_splits(n_rows, vocab, hidden.device)
    v_per_split = triton.cdiv(triton.cdiv(vocab, splits), BLOCK_V) * BLOCK_V
    splits = triton.cdiv(vocab, v_per_split)
    parts = torch.empty((3, splits, n_rows), dtype=torch.float32, device=hidden.device)
    grid = (triton.cdiv(n_rows, BLOCK_S), splits)
    _partial_lse_kernel[grid](
        hidden, weight, bias if bias is not None else weight, targets, parts[0], parts[1], parts[2],
        n_rows, vocab, d, hidden.stride(0), weight.stride(0), v_per_split,
        HAS_BIAS=bias is not None, BLOCK_S=BLOCK_S, BLOCK_V=BLOCK_V, BLOCK_K=BLOCK_K,
        num_warps=8, num_stages=3,
    )
    run_max, run_sum, target_logit = parts
    top = run_max.max(dim=0).values
    lse = top + torch.log((run_sum * torch.exp(run_max - top)).sum(dim=0))
    return target_logit.sum(dim=0) - lse
