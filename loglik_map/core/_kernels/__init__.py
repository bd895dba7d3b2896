"""All-pairs KL and SE kernels behind one switch (``backend=`` or :func:`loglik_map.set_options`).

* ``"numpy"``: direct evaluation in plain numpy — the reference the others are tested against.
* ``"numba"``: direct evaluation in a tiled, parallel numba kernel.
* ``"blas"``: Gram-matrix formulation (three BLAS products) with a per-pair error bound; pairs
  it cannot vouch for are recomputed directly (with numba where available).
* ``"auto"``: ``"blas"`` — the fastest measured on the published data's shape
  (``benchmarks/RESULTS.md``).

Every backend takes scaled coordinates (K × N) and returns symmetric K × K arrays of KL and SE
with exact zeros on the diagonal; see :mod:`loglik_map.core._kernels._direct` for the formulas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import LoglikMapError
from ...options import KERNEL_BACKENDS, get_options
from ._direct import NonFiniteKLError, pair_kl_se, pairwise_kl_se_numpy, require_finite
from .blocks import cross_pairs_kl_se

__all__ = ["NonFiniteKLError", "PairwiseKL", "pair_kl_se", "pairs_kl_se", "pairwise_kl_se", "resolve_backend"]


@dataclass(frozen=True)
class PairwiseKL:
    """All-pairs KL and its standard error, both (K, K), in the unit of the coordinates used."""

    kl: np.ndarray
    se: np.ndarray
    backend: str


def resolve_backend(backend: str | None) -> str:
    """The concrete backend for ``backend`` (``None`` → the ``kernel_backend`` option)."""
    backend = get_options()["kernel_backend"] if backend is None else backend
    if backend not in KERNEL_BACKENDS:
        raise LoglikMapError(f"unknown kernel backend {backend!r}; use one of {KERNEL_BACKENDS}")
    return "blas" if backend == "auto" else backend


def pairs_kl_se(X: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray, backend: str | None = None,
                other: np.ndarray | None = None):
    """KL and SE for listed pairs ``(X[rows_a[p]], other[rows_b[p]])``, direct evaluation.

    ``other`` defaults to ``X`` (pairs of rows of one array); given, the rows of two arrays
    (a map's points and new models, one row and a block of rows) are paired without copying
    either. Numba evaluates, unless ``backend="numpy"``; every pair is evaluated alone, so its
    result does not depend on the other pairs listed. Raises :class:`NonFiniteKLError` (a
    :class:`~loglik_map.LoglikMapError`) naming ``(rows_a[p], rows_b[p])`` if a result overflows.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    other = X if other is None else np.ascontiguousarray(other, dtype=np.float64)
    rows_a = np.asarray(rows_a, dtype=np.int64)
    rows_b = np.asarray(rows_b, dtype=np.int64)
    kl, se = cross_pairs_kl_se(X, other, rows_a, rows_b, "numpy" if resolve_backend(backend) == "numpy" else "numba")
    require_finite(kl, se, rows_a, rows_b)
    return kl, se


def pairwise_kl_se(X: np.ndarray, backend: str | None = None) -> PairwiseKL:
    """All-pairs KL and SE of the rows of the scaled coordinates ``X`` (K × N).

    Parameters
    ----------
    X : array_like, shape (K, N)
        Scaled double-centred coordinates (see :mod:`loglik_map.core._kernels._direct`).
    backend : {"auto", "blas", "numba", "numpy"}, optional
        Defaults to the ``kernel_backend`` option.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise LoglikMapError(f"coordinates must be two-dimensional, got shape {X.shape}")
    name = resolve_backend(backend)
    if not np.isfinite(X).all():
        k = int(np.argwhere(~np.isfinite(X))[0][0])
        raise NonFiniteKLError((k, 0 if k else min(1, X.shape[0] - 1)))
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "numpy":
            kl, se = pairwise_kl_se_numpy(X)
        elif name == "numba":
            from ._numba import pairwise_kl_se_numba

            kl, se = pairwise_kl_se_numba(X)
        else:
            from ._blas import pairwise_kl_se_blas

            kl, se = pairwise_kl_se_blas(X, lambda X_, a, b: cross_pairs_kl_se(X_, X_, a, b, "numba"))
    require_finite(kl, se)
    return PairwiseKL(kl=kl, se=se, backend=name)

