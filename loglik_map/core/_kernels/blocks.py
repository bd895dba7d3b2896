"""KL (and SE) between two blocks of rows of the scaled coordinates, with the dense kernels' guard.

The blocked all-pairs paths (:meth:`~loglik_map.ModelMap.all_pairs`,
:meth:`~loglik_map.ModelMap.nearest`) never hold a K × K array: they walk over pairs of row
blocks ``(A, B)``. Each block pair uses the Gram formulation of :mod:`._blas` (BLAS products of
the blocks and of their elementwise powers) and the same per-pair worst-case rounding bound:
every pair whose bound exceeds a tenth of the required accuracy (1e-8 relative for KL, 1e-5 for
SE) — in practice the near-identical pairs — is evaluated directly, in two passes. So a block
result equals the dense result to the kernels' stated accuracy, whatever the block size.

Units: whatever the coordinates carry (``Q̃`` gives bits/byte). Shapes: ``A`` is (a, N), ``B``
is (b, N); results are (a, b).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._blas import _U, KL_REL_BOUND, SE2_REL_BOUND
from ._direct import NonFiniteKLError, pair_kl_se

__all__ = ["RowBlock", "block_kl", "block_kl_se", "cross_pairs_kl_se", "row_block"]

_BLOCK_COLS = 4096


@dataclass(frozen=True)
class RowBlock:
    """Rows ``start .. start + len(rows)`` of the scaled coordinates, with their power sums.

    Attributes
    ----------
    start : int
        Index of the first row in the whole map.
    rows : ndarray, shape (b, N)
        The coordinates (float64, C order).
    n2, n4 : ndarray, shape (b,)
        Σ_k x_k² and Σ_k x_k⁴ of every row.
    """

    start: int
    rows: np.ndarray
    n2: np.ndarray
    n4: np.ndarray

    @property
    def stop(self) -> int:
        return self.start + self.rows.shape[0]


def row_block(rows: np.ndarray, start: int) -> RowBlock:
    """A :class:`RowBlock` of ``rows`` (copied to float64 C order if needed) starting at row ``start``."""
    X = np.ascontiguousarray(rows, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        sq = X * X
        n2 = sq.sum(axis=1)
        n4 = np.einsum("ij,ij->i", sq, sq)
    return RowBlock(start=int(start), rows=X, n2=n2, n4=n4)


def cross_pairs_kl_se(A: np.ndarray, B: np.ndarray, ia: np.ndarray, ib: np.ndarray,
                      backend: str = "numba") -> tuple[np.ndarray, np.ndarray]:
    """Direct (two-pass) KL and SE of the pairs ``(A[ia[p]], B[ib[p]])``; NaN where a result overflows.

    ``backend="numpy"`` uses the plain numpy reference, anything else the numba kernel.
    """
    ia = np.asarray(ia, dtype=np.int64)
    ib = np.asarray(ib, dtype=np.int64)
    if ia.size == 0:
        return np.zeros(0), np.zeros(0)
    if backend != "numpy":
        from ._numba import cross_pairs_kl_se_numba

        return cross_pairs_kl_se_numba(A, B, ia, ib)
    kl, se = np.empty(ia.size), np.empty(ia.size)
    for p, (i, j) in enumerate(zip(ia, ib)):
        try:
            kl[p], se[p] = pair_kl_se(A[i], B[j])
        except NonFiniteKLError:
            kl[p] = se[p] = np.nan
    return kl, se


def _gamma(n: int) -> float:
    return n * _U / (1.0 - n * _U)


def _flagged(redo: np.ndarray, same: bool) -> tuple[np.ndarray, np.ndarray]:
    """Pairs to evaluate directly; on a diagonal block only those above the diagonal."""
    ia, ib = np.nonzero(redo)
    if same:
        upper = ia < ib
        ia, ib = ia[upper], ib[upper]
    return ia, ib


def _symmetrise(M: np.ndarray) -> np.ndarray:
    """The upper triangle of ``M`` mirrored below it, exact zeros on the diagonal."""
    U = np.triu(M, 1)
    U += U.T
    return U


def _check_finite(a: RowBlock, b: RowBlock, *arrays: np.ndarray) -> None:
    for M in arrays:
        bad = ~np.isfinite(M)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise NonFiniteKLError((a.start + i, b.start + j))


def block_kl(a: RowBlock, b: RowBlock, *, same: bool = False, backend: str = "numba") -> tuple[np.ndarray, int]:
    """KL between every row of ``a`` and every row of ``b``: one BLAS product plus the guard.

    Parameters
    ----------
    a, b : RowBlock
    same : bool
        ``a`` and ``b`` are the same block: the result is symmetric with exact zeros on the diagonal.
    backend : str
        Direct evaluation of the flagged pairs: ``"numpy"`` or numba (anything else).

    Returns
    -------
    kl : ndarray, shape (len(a.rows), len(b.rows))
    n_direct : int
        How many pairs the guard sent to direct evaluation.
    """
    N = a.rows.shape[1]
    with np.errstate(over="ignore", invalid="ignore"):
        kl = a.rows @ b.rows.T
        kl *= -2.0
        kl += a.n2[:, None]
        kl += b.n2[None, :]
        # guard: |error| ≤ 4γ(n2_i + n2_j) must be ≤ KL_REL_BOUND·KL. Only pairs with a KL below
        # c·max(n2_i + n2_j) can fail it, so the full test runs on those few (or on non-finite KLs).
        c = 4.0 * _gamma(N) / KL_REL_BOUND
        ia, ib = np.nonzero(~(kl >= c * (a.n2.max(initial=0.0) + b.n2.max(initial=0.0))))
        fail = ~(c * (a.n2[ia] + b.n2[ib]) <= kl[ia, ib])
        ia, ib = ia[fail], ib[fail]
    if same:
        upper = ia < ib
        ia, ib = ia[upper], ib[upper]
    if ia.size:
        kl[ia, ib] = cross_pairs_kl_se(a.rows, b.rows, ia, ib, backend)[0]
    if same:
        kl = _symmetrise(kl)
    _check_finite(a, b, kl)
    return kl, int(ia.size)


def block_kl_se(a: RowBlock, b: RowBlock, *, same: bool = False,
                backend: str = "numba") -> tuple[np.ndarray, np.ndarray, int]:
    """KL and SE between every row of ``a`` and every row of ``b``, guarded as the dense ``blas`` kernel.

    With ``d = a_i − b_j``: ``KL = Σd²`` and ``SE = sqrt(Σd⁴ − KL²/N)``, where
    ``Σd⁴ = Σa⁴ + Σb⁴ − 4(Σa³b + Σab³) + 6Σa²b²`` comes from three more BLAS products of
    elementwise powers (column-blocked, so the extra memory is a few (a + b) × 4096 arrays).
    Same parameters as :func:`block_kl`; returns ``(kl, se, n_direct)``.
    """
    N = a.rows.shape[1]
    A, B = a.rows, b.rows
    with np.errstate(over="ignore", invalid="ignore"):
        kl = A @ B.T
        s31 = np.zeros_like(kl)
        s13 = np.zeros_like(kl)
        s22 = np.zeros_like(kl)
        for k0 in range(0, N, _BLOCK_COLS):
            Ac, Bc = A[:, k0:k0 + _BLOCK_COLS], B[:, k0:k0 + _BLOCK_COLS]
            A2, B2 = Ac * Ac, Bc * Bc
            s22 += A2 @ B2.T
            A2 *= Ac
            B2 *= Bc
            s31 += A2 @ Bc.T
            s13 += Ac @ B2.T
        del A2, B2
        kl *= -2.0
        kl += a.n2[:, None]
        kl += b.n2[None, :]
        s4 = s31
        s4 += s13
        del s13
        s4 *= -4.0
        s22 *= 6.0
        s4 += s22
        del s22
        s4 += a.n4[:, None]
        s4 += b.n4[None, :]
        gamma = _gamma(N)
        err_kl = a.n2[:, None] + b.n2[None, :]
        err_kl *= 4.0 * gamma
        se2 = kl * kl
        se2 /= -N
        se2 += s4
        # the error bound of SE²: that of Σd⁴ plus what KL's error does to KL²/N (as in ._blas)
        err_se2 = a.n4[:, None] + b.n4[None, :]
        err_se2 *= 16.0 * gamma
        err_se2 += (2.0 * np.abs(kl) * err_kl + err_kl * err_kl) / N
        redo = ~((err_kl <= KL_REL_BOUND * kl) & (err_se2 <= SE2_REL_BOUND * se2))
    del s4, err_kl, err_se2
    ia, ib = _flagged(redo, same)
    if ia.size:
        kl_r, se_r = cross_pairs_kl_se(A, B, ia, ib, backend)
        kl[ia, ib] = kl_r
        se2[ia, ib] = se_r * se_r
    with np.errstate(invalid="ignore"):
        se = np.sqrt(se2, out=se2)
    if same:
        kl, se = _symmetrise(kl), _symmetrise(se)
    _check_finite(a, b, kl, se)
    return kl, se, int(ia.size)
