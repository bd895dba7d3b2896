"""Plain-numpy direct evaluation of the KL and SE formulas (:ref:`method-map`): the reference implementation.

All functions take *scaled coordinates* ``X`` (K × N): rows of the double-centred matrix divided
by ``sqrt(2 N c)``, so that for a pair of rows with difference ``d``

* ``KL = Σ_k d_k²`` and
* ``SE = sqrt(Σ_k d_k⁴ − KL²/N) = sqrt(Σ_k (d_k² − KL/N)²)``,

in whatever unit ``c`` sets (``c = 1`` nats per text, ``c = B̄ ln 2`` bits/byte). The second,
two-pass form of SE is used here: it is algebraically identical and never cancels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ...errors import LoglikMapError

__all__ = ["NonFiniteKLError", "pair_kl_se", "pairs_kl_se_numpy", "pairwise_kl_se_numpy"]

_OVERFLOW = ("is not finite (inf or NaN): the log-likelihoods are too large in magnitude for float64 arithmetic "
             "(their squared differences overflow). No real text has such a log-likelihood (a 1 kB text is of "
             "the order of 1e3 nats); check the matrix's values and units")


class NonFiniteKLError(LoglikMapError):
    """A KL or SE came out inf or NaN; ``rows`` are the two rows of the coordinates involved (None
    when the caller passed the two rows themselves)."""

    def __init__(self, rows: tuple[int, int] | None) -> None:
        self.rows = None if rows is None else (int(rows[0]), int(rows[1]))
        self.reason = _OVERFLOW
        where = "of a pair of models" if rows is None else f"between rows {rows[0]} and {rows[1]}"
        super().__init__(f"KL {where} {_OVERFLOW}")

    def __reduce__(self):  # pickled across dask workers: rebuild from the rows, not the message
        return type(self), (self.rows,)


def require_finite(kl: np.ndarray, se: np.ndarray, rows_a: np.ndarray | None = None,
                   rows_b: np.ndarray | None = None) -> None:
    """Raise :class:`NonFiniteKLError` for the first pair whose KL or SE is not finite.

    ``rows_a``/``rows_b``: the rows of listed pairs; without them ``kl`` and ``se`` are (K, K).
    """
    bad = ~(np.isfinite(kl) & np.isfinite(se))
    if not bad.any():
        return
    first = np.argwhere(bad)[0]
    if rows_a is None or rows_b is None:
        raise NonFiniteKLError((first[0], first[1]))
    raise NonFiniteKLError((rows_a[first[0]], rows_b[first[0]]))

_ROW_CHUNK = 128


def pair_kl_se(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """KL and SE between two coordinate rows ``x`` and ``y`` (length N), direct evaluation."""
    with np.errstate(over="ignore", invalid="ignore"):
        d2 = np.subtract(x, y, dtype=np.float64)
        d2 *= d2
        kl = float(d2.sum())
        d2 -= kl / d2.size
        se = float(np.sqrt(np.dot(d2, d2)))
    if not (math.isfinite(kl) and math.isfinite(se)):
        raise NonFiniteKLError(None)
    return kl, se


def pairs_kl_se_numpy(X: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KL and SE for the listed pairs ``(rows_a[p], rows_b[p])``, direct evaluation."""
    kl = np.empty(len(rows_a))
    se = np.empty(len(rows_a))
    for p, (i, j) in enumerate(zip(rows_a, rows_b)):
        kl[p], se[p] = pair_kl_se(X[i], X[j])
    return kl, se


def refine_and_fill(X: np.ndarray, iu: tuple[np.ndarray, np.ndarray], kl_u: np.ndarray, se2_u: np.ndarray,
                    redo: np.ndarray,
                    refine: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]],
                    ) -> tuple[np.ndarray, np.ndarray]:
    """The common end of the fast all-pairs kernels: redo the flagged pairs directly, fill both triangles.

    Parameters
    ----------
    X : ndarray, shape (K, N)
        Scaled coordinates.
    iu : tuple of ndarray
        ``np.triu_indices(K, 1)`` (passed in: at K = 1,000 it is as large as a tenth of X).
    kl_u, se2_u : ndarray
        KL and SE² of the upper-triangle pairs in ``iu`` order, modified in place.
    redo : ndarray of int
        Positions in ``kl_u`` whose fast result cannot be trusted.
    refine : callable
        ``refine(X, rows_a, rows_b) -> (kl, se)``, a direct evaluation for listed pairs.

    Returns
    -------
    kl, se : ndarray, shape (K, K)
        Symmetric, exact zeros on the diagonal.
    """
    K = X.shape[0]
    if redo.size:
        kl_r, se_r = refine(X, iu[0][redo], iu[1][redo])
        kl_u[redo] = kl_r
        se2_u[redo] = se_r * se_r
    kl = np.zeros((K, K))
    se = np.zeros((K, K))
    kl[iu] = kl.T[iu] = kl_u
    se[iu] = se.T[iu] = np.sqrt(se2_u)
    return kl, se


def pairwise_kl_se_numpy(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All-pairs KL and SE by direct evaluation with numpy; temporaries of at most 128 × N.

    Returns
    -------
    kl, se : ndarray, shape (K, K)
        Symmetric, exact zeros on the diagonal.
    """
    X = np.asarray(X, dtype=np.float64)
    K, N = X.shape
    kl = np.zeros((K, K))
    se = np.zeros((K, K))
    for i in range(K - 1):
        for j0 in range(i + 1, K, _ROW_CHUNK):
            j1 = min(j0 + _ROW_CHUNK, K)
            D = X[j0:j1] - X[i]
            D *= D
            s2 = D.sum(axis=1)
            D -= (s2 / N)[:, None]
            kl[i, j0:j1] = s2
            se[i, j0:j1] = np.sqrt(np.einsum("ij,ij->i", D, D))
    iu = np.triu_indices(K, 1)
    kl.T[iu] = kl[iu]
    se.T[iu] = se[iu]
    return kl, se
