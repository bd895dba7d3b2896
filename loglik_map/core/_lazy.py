"""Dask-backed matrices: double-centring and the exact clip quantile without loading the matrix (not public API).

A :class:`~loglik_map.LogLikelihoodMatrix` opened with ``chunks=`` (:func:`loglik_map.open_matrix`)
holds a dask array. Its model means and text means take one pass over the chunks (K + N numbers
in memory); the centred and scaled coordinates Q̃ stay lazy, computed chunk by chunk when used.

The clip threshold is the **exact** quantile, equal to ``numpy.quantile(values, q)`` (linear
interpolation) bit for bit: the one or two order statistics it needs are found by a radix
selection on the float64 bit patterns (each pass counts the entries under a 16-bit prefix in
every chunk; once at most 2²⁰ candidates remain they are gathered and sorted), so 2–4 passes
over the data and O(chunk + 2²⁰) memory, whatever the distribution or the number of ties.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import LoglikMapError, require_extra

__all__ = ["double_center_lazy", "exact_quantile", "is_dask", "order_statistic"]

_SIGN = np.uint64(1 << 63)
_DIGIT_BITS = 16
_GATHER_LIMIT = 1 << 20


def is_dask(array: Any) -> bool:
    """True if ``array`` is a dask array (without importing dask when it is not installed)."""
    return type(array).__module__.split(".")[0] == "dask"


def _dask() -> Any:
    return require_extra("dask", "parallel", "dask-backed matrices")


def double_center_lazy(values: Any) -> tuple[Any, np.ndarray, np.ndarray]:
    """``(Q, model_means, text_means)`` of a dask array: Q lazy, the means computed in one pass (nats)."""
    dask = _dask()
    L = values.astype(np.float64)
    if L.ndim != 2 or 0 in L.shape:
        raise LoglikMapError(f"expected a non-empty two-dimensional array, got shape {L.shape}")
    model_means, column_means = dask.compute(L.mean(axis=1), L.mean(axis=0))
    text_means = column_means - model_means.mean()  # = mean over models of the row-centred matrix
    return L - model_means[:, None] - text_means[None, :], model_means, text_means


def _keys(block: np.ndarray) -> np.ndarray:
    """uint64 keys whose unsigned order is the float64 order of the (finite) values."""
    bits = np.ascontiguousarray(block, dtype=np.float64).view(np.uint64).ravel()
    return np.where(bits >= _SIGN, ~bits, bits | _SIGN)


def _value(key: int) -> float:
    key = np.uint64(key)
    bits = key ^ _SIGN if key >= _SIGN else ~key
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])


def _under(keys: np.ndarray, prefix: int, prefix_bits: int) -> np.ndarray:
    if prefix_bits == 0:
        return keys
    return keys[(keys >> np.uint64(64 - prefix_bits)) == np.uint64(prefix)]


def _digit_counts(block: np.ndarray, prefix: int, prefix_bits: int) -> np.ndarray:
    keys = _under(_keys(block), prefix, prefix_bits)
    digits = (keys >> np.uint64(64 - prefix_bits - _DIGIT_BITS)) & np.uint64((1 << _DIGIT_BITS) - 1)
    return np.bincount(digits.astype(np.int64), minlength=1 << _DIGIT_BITS)


def _gather(block: np.ndarray, prefix: int, prefix_bits: int) -> np.ndarray:
    return _under(_keys(block), prefix, prefix_bits)


def order_statistic(values: Any, rank: int) -> float:
    """The ``rank``-th smallest entry (0-based) of a dask array, exactly (radix selection)."""
    dask = _dask()
    blocks = values.to_delayed().ravel().tolist()
    prefix, prefix_bits, remaining = 0, 0, int(values.size)
    while prefix_bits < 64:
        if remaining <= _GATHER_LIMIT:
            parts = dask.compute(*[dask.delayed(_gather)(b, prefix, prefix_bits) for b in blocks])
            return _value(int(np.sort(np.concatenate(parts))[rank]))
        counts = sum(dask.compute(*[dask.delayed(_digit_counts)(b, prefix, prefix_bits) for b in blocks]))
        cumulative = np.cumsum(counts)
        digit = int(np.searchsorted(cumulative, rank, side="right"))
        rank -= int(cumulative[digit - 1]) if digit else 0
        remaining = int(counts[digit])
        prefix = (prefix << _DIGIT_BITS) | digit
        prefix_bits += _DIGIT_BITS
    return _value(prefix)


def exact_quantile(values: Any, q: float) -> float:
    """``numpy.quantile(values, q)`` (linear interpolation) of a dask array, exactly, without loading it."""
    n = int(values.size)
    virtual = (n - 1) * float(q)
    below = int(np.floor(virtual))
    t = virtual - below
    a = order_statistic(values, below)
    if t == 0.0 or below + 1 >= n:
        return a
    b = order_statistic(values, below + 1)
    diff = b - a
    return b - diff * (1.0 - t) if t >= 0.5 else a + diff * t  # numpy's _lerp, so the result is identical
