"""Numba kernels: tiled, parallel, direct evaluation of all-pairs KL and SE (no K×K×N temporaries).

Imported lazily (compiling takes a few seconds the first time; results are cached on disk).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._direct import refine_and_fill

__all__ = ["cross_pairs_kl_se_numba", "pairs_kl_se_numba", "pairwise_kl_se_numba"]

# Reassociation lets LLVM vectorise the reductions; it does not lose accuracy here (the sums are
# of non-negative terms, and multiple accumulators only shorten the summation chains).
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
_TILE_ROWS = 64
_TILE_COLS = 2048
# one-pass Σd⁴ − (Σd²)²/N loses digits when all |d_k| are nearly equal; such pairs are redone two-pass
_ONE_PASS_MIN_RATIO = 1e-6


@njit(fastmath=_FASTMATH, inline="always", cache=True)
def _sums_1x1(x, y, k0, k1):
    a = 0.0
    b = 0.0
    for k in range(k0, k1):
        d = x[k] - y[k]
        e = d * d
        a += e
        b += e * e
    return a, b


@njit(fastmath=_FASTMATH, inline="always", cache=True)
def _sums_4x2(x0, x1, x2, x3, y0, y1, k0, k1):
    a00 = a10 = a20 = a30 = a01 = a11 = a21 = a31 = 0.0
    b00 = b10 = b20 = b30 = b01 = b11 = b21 = b31 = 0.0
    for k in range(k0, k1):
        u = y0[k]
        v = y1[k]
        p0 = x0[k]
        p1 = x1[k]
        p2 = x2[k]
        p3 = x3[k]
        d = p0 - u
        e = d * d
        a00 += e
        b00 += e * e
        d = p1 - u
        e = d * d
        a10 += e
        b10 += e * e
        d = p2 - u
        e = d * d
        a20 += e
        b20 += e * e
        d = p3 - u
        e = d * d
        a30 += e
        b30 += e * e
        d = p0 - v
        e = d * d
        a01 += e
        b01 += e * e
        d = p1 - v
        e = d * d
        a11 += e
        b11 += e * e
        d = p2 - v
        e = d * d
        a21 += e
        b21 += e * e
        d = p3 - v
        e = d * d
        a31 += e
        b31 += e * e
    return (a00, a10, a20, a30, a01, a11, a21, a31, b00, b10, b20, b30, b01, b11, b21, b31)


@njit(fastmath=_FASTMATH, cache=True)
def _pair_two_pass(x, y):
    n = x.shape[0]
    s2 = 0.0
    for k in range(n):
        d = x[k] - y[k]
        s2 += d * d
    m = s2 / n
    v = 0.0
    for k in range(n):
        d = x[k] - y[k]
        e = d * d - m
        v += e * e
    return s2, np.sqrt(v)


@njit(parallel=True, cache=True)
def cross_pairs_kl_se_numba(A, B, rows_a, rows_b):
    """KL and SE of the pairs ``(A[rows_a[p]], B[rows_b[p]])`` (direct, two-pass), in parallel over pairs."""
    P = rows_a.shape[0]
    kl = np.empty(P)
    se = np.empty(P)
    for p in prange(P):
        kl[p], se[p] = _pair_two_pass(A[rows_a[p]], B[rows_b[p]])
    return kl, se


def pairs_kl_se_numba(X, rows_a, rows_b):
    """KL and SE for the listed pairs of rows of ``X`` (direct, two-pass), in parallel over pairs."""
    return cross_pairs_kl_se_numba(X, X, rows_a, rows_b)


@njit(parallel=True, fastmath=_FASTMATH, cache=True)
def _pairwise_sums(X, tile_rows, tile_cols):
    K, N = X.shape
    s2 = np.zeros((K, K))
    s4 = np.zeros((K, K))
    nb = (K + tile_rows - 1) // tile_rows
    ntiles = nb * (nb + 1) // 2
    tile_i = np.empty(ntiles, np.int64)
    tile_j = np.empty(ntiles, np.int64)
    t = 0
    for bi in range(nb):
        for bj in range(bi, nb):
            tile_i[t] = bi
            tile_j[t] = bj
            t += 1
    for t in prange(ntiles):
        i0 = tile_i[t] * tile_rows
        i1 = min(i0 + tile_rows, K)
        j0 = tile_j[t] * tile_rows
        j1 = min(j0 + tile_rows, K)
        for k0 in range(0, N, tile_cols):
            k1 = min(k0 + tile_cols, N)
            i = i0
            while i + 4 <= i1:
                x0 = X[i]
                x1 = X[i + 1]
                x2 = X[i + 2]
                x3 = X[i + 3]
                j = j0
                while j + 2 <= j1:
                    r = _sums_4x2(x0, x1, x2, x3, X[j], X[j + 1], k0, k1)
                    for m in range(4):
                        s2[i + m, j] += r[m]
                        s2[i + m, j + 1] += r[4 + m]
                        s4[i + m, j] += r[8 + m]
                        s4[i + m, j + 1] += r[12 + m]
                    j += 2
                while j < j1:
                    for m in range(4):
                        a, b = _sums_1x1(X[i + m], X[j], k0, k1)
                        s2[i + m, j] += a
                        s4[i + m, j] += b
                    j += 1
                i += 4
            while i < i1:
                for j in range(j0, j1):
                    a, b = _sums_1x1(X[i], X[j], k0, k1)
                    s2[i, j] += a
                    s4[i, j] += b
                i += 1
    return s2, s4


def pairwise_kl_se_numba(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All-pairs KL and SE, direct evaluation in a tiled parallel numba kernel.

    Returns symmetric (K, K) arrays with exact zeros on the diagonal.
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    K, N = X.shape
    s2, s4 = _pairwise_sums(X, _TILE_ROWS, _TILE_COLS)
    # Tiles on the block diagonal were computed in full; keep the upper triangle only.
    iu = np.triu_indices(K, 1)
    kl_u = s2[iu]
    s4_u = s4[iu]
    se2_u = s4_u - kl_u * kl_u / N
    redo = np.flatnonzero(~(se2_u > _ONE_PASS_MIN_RATIO * s4_u))
    return refine_and_fill(X, iu, kl_u, se2_u, redo, pairs_kl_se_numba)
