"""From final hidden states to log p(target): the unembedding, without all logits at once.

Two implementations compute the same numbers:

``"chunked"``
    Float32 logits for a chunk of positions at a time (:func:`logit_rows` of them), then the
    log-sum-exp and the target's logit. Works for every model, device and dtype, and applies the
    model's logit transform (a soft cap or a scale, traced from the model by :mod:`._head`).
``"fused"``
    One Triton kernel (:mod:`._triton_unembed`) that never writes the logits: on a GPU the
    float32 logits' round trip through memory costs about as much as the unembedding's matrix
    product, and the logit lens pays it once per layer. Used on CUDA devices for float16 /
    bfloat16 heads without a logit transform, when Triton is installed.

``"auto"`` (the default) takes the fused kernel where it applies and checks it against the
chunked computation on the first positions it sees for each head (shape, dtype, device); a
disagreement beyond rounding disables it for that head, with a warning, and the chunked path
is used — a fast path is never trusted unverified.

Whatever the weights' dtype, logits are float32 (products of half-precision numbers accumulated
in float32, never rounded to 16 bits) and the log-softmax is taken in float32.
"""

from __future__ import annotations

import warnings
from typing import Any

from ._torch import torch_module

__all__ = ["UNEMBED_METHODS", "chunked_logprobs", "logit_rows", "postprocess_logits", "target_logprobs"]

UNEMBED_METHODS = ("auto", "fused", "chunked")
_GPU_LOGIT_CHUNK_BYTES = 256 * 2**20  # float32 logits of one chunk on a GPU
_CHECK_POSITIONS = 512  # positions compared, the first time a head uses the fused kernel
_CHECK_TOLERANCE = 2e-3  # nats per position: both sum the same float32-accumulated products
_fused_verdict: dict[tuple, bool] = {}  # Head.key() -> the fused kernel agreed with the chunked path


def logit_rows(device: Any, vocab: int) -> int:
    """Scored positions per chunk of float32 logits: one chunk of one layer exists at a time.

    On a CPU, 128 rows: enough that the unembedding GEMM reuses its d × V weight well, few enough
    that the chunk's logits stay near the caches for the gather and the log-sum-exp. It was the
    fastest of 16 … 1,024 rows for d = 256 / V = 8,192 and d = 512 / V = 32,000 or 50,304 on the
    reference machine; 1,024 rows (a 32-MiB chunk at V = 8,192) ran 1.7× slower
    (``benchmarks/bench_logit_chunks.py``). On a GPU, as many rows as fit in 256 MiB of logits.
    """
    if device.type == "cpu":
        return 128
    return max(128, _GPU_LOGIT_CHUNK_BYTES // (4 * vocab))


def has_postprocessing(config: Any) -> bool:
    """True if the architecture transforms logits after the unembedding (soft-capping, scaling)."""
    scale = getattr(config, "logit_scale", None)
    return bool(getattr(config, "final_logit_softcapping", None)) or (
        isinstance(scale, (int, float)) and scale != 1)


def postprocess_logits(config: Any, logits: Any) -> Any:
    """Logit transforms named in ``config`` (soft cap, logit scale), for :mod:`.exact_kl`.

    The scorers apply the transform traced from the model itself (:mod:`._head`) instead.
    """
    cap = getattr(config, "final_logit_softcapping", None)
    if cap:
        logits = cap * (logits / cap).tanh()
    scale = getattr(config, "logit_scale", None)
    if isinstance(scale, (int, float)) and scale != 1:
        logits = logits * scale
    return logits


class Head:
    """The output embedding as used for scoring: float32 logits from any weight dtype.

    On a CUDA device, half-precision weights are multiplied with a float32 output
    (``torch.mm(..., out_dtype=torch.float32)``, the same tensor-core product without the final
    rounding to 16 bits). On a CPU, a float32 copy of the weight is made once per scoring call.
    """

    def __init__(self, module: Any) -> None:
        torch = torch_module()
        self.module = module
        self.weight = module.weight
        self.bias = getattr(module, "bias", None)
        self.device = self.weight.device
        self.half = self.weight.dtype in (torch.float16, torch.bfloat16)
        self._weight32 = None
        self._mm_out_dtype = self.device.type == "cuda"
        if self.half and self.device.type != "cuda":
            self._weight32 = self.weight.float()

    @property
    def vocab(self) -> int:
        return int(self.weight.shape[0])

    def key(self) -> tuple:
        """What the fused kernel's correctness can depend on: shape, dtype, device, bias."""
        return (tuple(self.weight.shape), str(self.weight.dtype), str(self.device), self.bias is not None)

    def logits(self, hidden: Any) -> Any:
        """Float32 logits of ``hidden`` (S × d), before any architecture post-processing."""
        torch = torch_module()
        if not self.half:
            return self.module(hidden.to(self.weight.dtype)).float()
        bias = self.bias.float() if self.bias is not None else None
        if self._weight32 is not None:
            out = hidden.float() @ self._weight32.T
        else:
            out = None
            if self._mm_out_dtype:
                try:
                    out = torch.mm(hidden.to(self.weight.dtype), self.weight.T, out_dtype=torch.float32)
                except (TypeError, RuntimeError, NotImplementedError):
                    self._mm_out_dtype = False  # an older torch: upcast the chunk instead
            if out is None:
                out = hidden.float() @ self.weight.T.float()
        return out + bias if bias is not None else out


def _fused_applies(transform: Any, head: Head, hidden: Any) -> bool:
    if head.device.type != "cuda" or not head.half or transform is not None:
        return False
    try:
        from . import _triton_unembed  # noqa: F401
    except ImportError:
        return False
    return True


def chunked_logprobs(logits_of: Any, hidden: Any, targets: Any, rows_per_chunk: int) -> Any:
    """log p(target) from ``logits_of(hidden[chunk])`` (float32 logits), one chunk of positions at a time.

    Parameters
    ----------
    logits_of : callable
        Float32 logits (S' × V) of a chunk of the rows of ``hidden``.
    hidden : torch.Tensor, shape (S, ...)
        What ``logits_of`` takes, one row per scored position.
    targets : torch.Tensor of int64, shape (S,)
    rows_per_chunk : int

    Returns
    -------
    torch.Tensor of float32, shape (S,)
        Nats, on ``targets``' device.
    """
    torch = torch_module()
    out = torch.empty(hidden.shape[0], dtype=torch.float32, device=targets.device)
    for p0 in range(0, hidden.shape[0], rows_per_chunk):
        p1 = min(p0 + rows_per_chunk, hidden.shape[0])
        logits = logits_of(hidden[p0:p1]).float().to(targets.device)
        out[p0:p1] = logits.gather(-1, targets[p0:p1, None]).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    return out


def _chunked(transform: Any, head: Head, hidden: Any, targets: Any, rows_per_chunk: int) -> Any:
    if transform is None:
        return chunked_logprobs(head.logits, hidden, targets, rows_per_chunk)
    return chunked_logprobs(lambda h: transform(head.logits(h)), hidden, targets, rows_per_chunk)


def _fused(head: Head, hidden: Any, targets: Any) -> Any:
    from ._triton_unembed import fused_target_logprobs

    return fused_target_logprobs(hidden.to(head.weight.dtype), head.weight, head.bias, targets)


def target_logprobs(transform: Any, head: Head, hidden: Any, targets: Any, *, rows_per_chunk: int,
                    method: str = "auto") -> Any:
    """log p(target) at each of the given positions, float32 (nats).

    Parameters
    ----------
    transform : callable or None
        The model's transform of its float32 logits (:class:`._head.LogitTransform`), None if none.
    head : Head
        The output embedding.
    hidden : torch.Tensor, shape (S, d)
        Final hidden states at the scored positions.
    targets : torch.Tensor of int64, shape (S,)
    rows_per_chunk : int
        Positions per chunk of logits on the chunked path.
    method : {"auto", "fused", "chunked"}
        See the module documentation; ``"fused"`` raises if the kernel cannot be used.
    """
    hidden = hidden.to(head.device)
    if method == "chunked" or (method == "auto" and not _fused_applies(transform, head, hidden)):
        return _chunked(transform, head, hidden, targets, rows_per_chunk)
    if method == "fused":
        if not _fused_applies(transform, head, hidden):
            from ..errors import LoglikMapError

            raise LoglikMapError("unembed='fused' needs a CUDA device, float16/bfloat16 weights, a model without "
                                 "logit transform and the triton package; use unembed='auto'")
        return _fused(head, hidden, targets)
    key = head.key()
    verdict = _fused_verdict.get(key)
    if verdict is False:
        return _chunked(transform, head, hidden, targets, rows_per_chunk)
    try:
        fused = _fused(head, hidden, targets)
    except Exception as err:
        _fused_verdict[key] = False
        warnings.warn(f"the fused unembedding kernel failed ({type(err).__name__}: {err}); "
                      "using the chunked computation", RuntimeWarning, stacklevel=2)
        return _chunked(transform, head, hidden, targets, rows_per_chunk)
    if verdict is None:
        n = min(hidden.shape[0], _CHECK_POSITIONS)
        plain = _chunked(transform, head, hidden[:n], targets[:n], rows_per_chunk)
        gap = float((fused[:n] - plain).abs().max())  # one host sync, once per head
        _fused_verdict[key] = gap <= _CHECK_TOLERANCE
        if not _fused_verdict[key]:
            warnings.warn(f"the fused unembedding kernel differs from the chunked computation by {gap:.2g} nats "
                          "per token on this device; using the chunked computation", RuntimeWarning, stacklevel=2)
            return _chunked(transform, head, hidden, targets, rows_per_chunk)
    return fused
