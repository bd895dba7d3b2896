"""Exact k nearest neighbours of every model on the map, block by block (not public API; see
:meth:`loglik_map.ModelMap.nearest`).

KL on the map is squared Euclidean distance between rows of Q̃, so the k models closest to each
model are found by walking over the block pairs ``(I, J)``, ``I ≤ J``: each block pair computes
its block of KLs (one BLAS product, with the dense kernels' guard: near-identical pairs are
evaluated directly), keeps the k smallest per row of ``I`` and per row of ``J``, and evaluates
those candidates directly (KL and SE, two-pass). The caller merges the candidates into a K × k
table, ordering by KL and then by model index (as a stable sort of a dense KL row would).
Memory: the coordinates (K × N), the K × k table and a few block² arrays — never K × K.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._blocked import block_pairs, map_block_pairs, row_ranges
from ._kernels._blas import KL_REL_BOUND
from ._kernels.blocks import RowBlock, block_kl, cross_pairs_kl_se

__all__ = ["NeighbourTable", "exact_neighbours"]


@dataclass(frozen=True)
class NeighbourTable:
    """The k nearest neighbours of every row: ``index``, ``kl`` and ``se``, each (K, k), nearest first.

    ``kl`` and ``se`` are in the coordinates' unit (bits/byte for Q̃); ``n_direct`` counts the
    pairs the accuracy guard evaluated directly.
    """

    index: np.ndarray
    kl: np.ndarray
    se: np.ndarray
    n_direct: int


def _smallest(kl: np.ndarray, k: int, limit: int) -> np.ndarray:
    """Column indices of the ``k`` smallest entries of every row of ``kl``, and of every entry
    that may tie with the ``k``-th (unordered; as many columns for every row).

    ``kl`` is guarded to a relative error of ``KL_REL_BOUND``, so an entry within twice that of
    the ``k``-th smallest may equal it exactly (a duplicated model) and is kept too: the direct
    evaluation and the caller's ordering by (KL, model position) then settle ties as a stable
    sort of a dense row would. ``np.argpartition`` alone keeps an arbitrary one of tied entries.
    At most ``limit`` columns are kept (``kl.shape[1] − 1`` when the diagonal is set to inf).
    """
    if k >= kl.shape[1]:
        return np.broadcast_to(np.arange(kl.shape[1]), kl.shape).copy()
    kth = np.partition(kl, k - 1, axis=1)[:, k - 1:k]
    with np.errstate(invalid="ignore"):
        reach = kth + 4.0 * KL_REL_BOUND * np.abs(kth) + 4.0 * np.spacing(np.abs(kth))
    width = min(limit, max(k, int((kl <= reach).sum(axis=1).max(initial=0))))
    if width >= kl.shape[1]:
        return np.broadcast_to(np.arange(kl.shape[1]), kl.shape).copy()
    return np.argpartition(kl, width - 1, axis=1)[:, :width]


def _candidates(a: RowBlock, b: RowBlock, same: bool, k: int, backend: str):
    """Block-pair task: the k closest rows of ``b`` to every row of ``a`` and (unless ``same``) vice versa.

    Returns ``[(start, index, kl, se), …]``: for rows ``start …`` of the map, the global indices of
    their candidates and the candidates' direct KL and SE.
    """
    kl, n_direct = block_kl(a, b, same=same, backend=backend)
    if same:
        np.fill_diagonal(kl, np.inf)
    out = []
    sides = [(a, b, kl)] if same else [(a, b, kl), (b, a, kl.T)]
    for rows, cols, M in sides:
        limit = M.shape[1] - (1 if same else 0)
        take = _smallest(M, min(k, limit), limit)
        ia = np.repeat(np.arange(M.shape[0]), take.shape[1])
        kl_c, se_c = cross_pairs_kl_se(rows.rows, cols.rows, ia, take.ravel(), backend)
        shape = take.shape
        out.append((rows.start, take + cols.start, kl_c.reshape(shape), se_c.reshape(shape)))
    return out, n_direct


def _merge(best: list[np.ndarray], start: int, index: np.ndarray, kl: np.ndarray, se: np.ndarray, k: int) -> None:
    """Fold candidates for rows ``start …`` into the running table ``best = [index, kl, se]``, in place."""
    stop = start + index.shape[0]
    idx = np.concatenate([best[0][start:stop], index], axis=1)
    dist = np.concatenate([best[1][start:stop], kl], axis=1)
    err = np.concatenate([best[2][start:stop], se], axis=1)
    order = np.lexsort((idx, dist), axis=-1)[:, :k]
    best[0][start:stop] = np.take_along_axis(idx, order, axis=1)
    best[1][start:stop] = np.take_along_axis(dist, order, axis=1)
    best[2][start:stop] = np.take_along_axis(err, order, axis=1)


def exact_neighbours(points: Any, k: int, *, block_size: int, backend: str = "numba", client: Any = None,
                    progress: Callable[[int, int], None] | None = None) -> NeighbourTable:
    """The ``k`` nearest rows of every row of ``points`` (itself excluded), exact, block by block.

    Parameters
    ----------
    points : ndarray or dask array, shape (K, N)
        Scaled coordinates; squared distance is the KL.
    k : int
        1 ≤ k < K (checked by the caller).
    block_size : int
        Rows per block.
    backend : str
        Direct evaluation: ``"numpy"`` or numba (anything else).
    client : distributed.Client, optional
        Run the block pairs on this dask cluster.
    progress : callable, optional
        Called as ``progress(done, total)`` after every block pair.
    """
    K = points.shape[0]
    best = [np.full((K, k), K, dtype=np.int64), np.full((K, k), np.inf), np.full((K, k), np.nan)]
    pairs = block_pairs(len(row_ranges(K, block_size)))
    n_direct = 0
    for done, (_, _, (parts, n)) in enumerate(map_block_pairs(_candidates, points, block_size, pairs,
                                                              (k, backend), client), start=1):
        n_direct += n
        for start, index, kl, se in parts:
            _merge(best, start, index, kl, se, k)
        if progress is not None:
            progress(done, len(pairs))
    return NeighbourTable(index=best[0], kl=best[1], se=best[2], n_direct=n_direct)
