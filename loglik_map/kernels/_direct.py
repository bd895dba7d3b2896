"""Plain-numpy direct evaluation of the KL and SE formulas (SPEC §2): the reference implementation.

All functions take *scaled coordinates* ``X`` (K × N): rows of the double-centred matrix divided
by ``sqrt(2 N c)``, so that for a pair of rows with difference ``d``

* ``KL = Σ_k d_k²`` and
* ``SE = sqrt(Σ_k d_k⁴ − KL²/N) = sqrt(Σ_k (d_k² − KL/N)²)``,

in whatever unit ``c`` sets (``c = 1`` nats per text, ``c = B̄ ln 2`` bits/byte). The second,
two-pass form of SE is used here: it is algebraically identical and never cancels.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pair_kl_se", "pairwise_kl_se_numpy", "pairs_kl_se_numpy"]

_ROW_CHUNK = 128


def pair_kl_se(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """KL and SE between two coordinate rows ``x`` and ``y`` (length N), direct evaluation."""
    d2 = np.subtract(x, y, dtype=np.float64)
    d2 *= d2
    kl = float(d2.sum())
    d2 -= kl / d2.size
    return kl, float(np.sqrt(np.dot(d2, d2)))


def pairs_kl_se_numpy(X: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KL and SE for the listed pairs ``(rows_a[p], rows_b[p])``, direct evaluation."""
    kl = np.empty(len(rows_a))
    se = np.empty(len(rows_a))
    for p, (i, j) in enumerate(zip(rows_a, rows_b)):
        kl[p], se[p] = pair_kl_se(X[i], X[j])
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
