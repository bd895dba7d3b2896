"""Walking over pairs of row blocks of a map's coordinates, here or on a dask cluster (not public API).

The K rows of the scaled coordinates Q̃ are cut into blocks of ``block_size`` rows. A block-pair
task ``task(a, b, same, *args)`` gets two :class:`~loglik_map.core._kernels.blocks.RowBlock` s
(``same``: they are one block, a diagonal task) and returns something small (candidate
neighbours) or writes its result somewhere (a Zarr store) itself. Only the pairs ``I ≤ J`` are
visited: every result is symmetric.

* Here (``client=None``): Q̃ is held in memory (K × N float64; a dask-backed map is computed
  block by block into one array), and the tasks run one after another, each using every core
  through BLAS and numba.
* On a dask cluster (``client=`` a :class:`distributed.Client`): the row blocks are scattered
  (or, for a dask-backed map, computed) onto the workers once; every task is submitted and the
  results are handed back as they finish, so the caller's memory holds only what it keeps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import LoglikMapError, require_extra
from ._kernels.blocks import RowBlock, row_block
from ._lazy import is_dask

__all__ = [
    "DEFAULT_BLOCK_SIZE",
    "block_pairs",
    "check_block_size",
    "map_block_pairs",
    "materialise",
    "matrix_fingerprint",
    "row_ranges",
]

#: Rows per block: a block pair's temporaries are a few block² float64 arrays (32 MiB each at 2048).
DEFAULT_BLOCK_SIZE = 2048
_FINGERPRINT_ROWS = 4096

BlockTask = Callable[..., Any]


def check_block_size(block_size: Any) -> int:
    """``block_size`` as an int ≥ 2, or a :class:`~loglik_map.LoglikMapError` saying what to pass."""
    if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 2:
        raise LoglikMapError(f"block_size must be a whole number of rows ≥ 2, got {block_size!r} (the default, "
                             f"{DEFAULT_BLOCK_SIZE}, keeps a block pair's temporaries near 32 MiB each)")
    return int(block_size)


def row_ranges(n_rows: int, block_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), …]`` of consecutive blocks of ``block_size`` rows (the last may be shorter)."""
    return [(s, min(s + block_size, n_rows)) for s in range(0, n_rows, block_size)]


def block_pairs(n_blocks: int) -> list[tuple[int, int]]:
    """Every block pair ``(I, J)`` with ``I ≤ J``, row-major."""
    return [(i, j) for i in range(n_blocks) for j in range(i, n_blocks)]


def materialise(points: Any) -> np.ndarray:
    """``points`` as a float64 numpy array; a dask array is computed chunk by chunk into it (no second copy)."""
    if not is_dask(points):
        return np.ascontiguousarray(points, dtype=np.float64)
    da = require_extra("dask.array", "parallel", "dask-backed maps")
    out = np.empty(points.shape, dtype=np.float64)
    da.store(points.astype(np.float64), out, lock=False)
    return out


def _local_blocks(points: Any, ranges: Sequence[tuple[int, int]]) -> list[RowBlock]:
    X = materialise(points)
    return [row_block(X[s:e], s) for s, e in ranges]


def _cluster_blocks(points: Any, ranges: Sequence[tuple[int, int]], client: Any) -> list[Any]:
    """Futures of the row blocks on the cluster."""
    if is_dask(points):
        size = ranges[0][1] - ranges[0][0]
        chunks = points.astype(np.float64).rechunk((size, points.shape[1])).to_delayed().ravel().tolist()
        futures = client.compute(chunks)
        return [client.submit(row_block, f, s, pure=False) for f, (s, _) in zip(futures, ranges)]
    X = np.asarray(points, dtype=np.float64)
    return client.scatter([row_block(X[s:e], s) for s, e in ranges])


def map_block_pairs(task: BlockTask, points: Any, block_size: int, pairs: Sequence[tuple[int, int]],
                    args: tuple = (), client: Any = None) -> Iterator[tuple[int, int, Any]]:
    """Run ``task(a, b, I == J, *args)`` for every block pair ``(I, J)`` of ``pairs``; yield ``(I, J, result)``.

    Parameters
    ----------
    task : callable
        A module-level function (it is pickled for the workers).
    points : ndarray or dask array, shape (K, N)
        The scaled coordinates.
    block_size : int
        Rows per block.
    pairs : sequence of (int, int)
        Block pairs to run, ``I ≤ J``.
    client : distributed.Client, optional
        Run on this cluster; results are yielded in the order they finish.
    """
    ranges = row_ranges(points.shape[0], block_size)
    if not pairs:
        return
    if client is None:
        blocks = _local_blocks(points, ranges)
        for i, j in pairs:
            yield i, j, task(blocks[i], blocks[j], i == j, *args)
        return
    distributed = require_extra("distributed", "parallel", "running on a dask cluster")
    blocks = _cluster_blocks(points, ranges, client)
    futures = {client.submit(task, blocks[i], blocks[j], i == j, *args, pure=False): (i, j) for i, j in pairs}
    try:
        for future, result in distributed.as_completed(futures, with_results=True):
            i, j = futures[future]
            yield i, j, result
    finally:
        client.cancel(list(futures) + list(blocks))


def _digest(rows: np.ndarray) -> bytes:
    return hashlib.sha256(np.ascontiguousarray(rows, dtype="<f8").tobytes()).digest()


def matrix_fingerprint(values: Any, labels: Sequence[Sequence[str]], numbers: Sequence[float],
                       client: Any = None) -> str:
    """``"sha256:<hex>"`` of a K × N matrix (row block by row block), some label lists and numbers.

    Identifies the input of a stored result (a resumed run must continue the same computation);
    independent of how a dask-backed matrix is chunked.
    """
    K = values.shape[0]
    ranges = row_ranges(K, _FINGERPRINT_ROWS)
    if is_dask(values):
        dask = require_extra("dask", "parallel", "dask-backed maps")
        parts = [dask.delayed(_digest)(values[s:e]) for s, e in ranges]
        digests = client.gather(client.compute(parts)) if client is not None else dask.compute(*parts)
    else:
        X = np.asarray(values)
        digests = [_digest(X[s:e]) for s, e in ranges]
    h = hashlib.sha256()
    h.update(repr(tuple(values.shape)).encode())
    for d in digests:
        h.update(d)
    for group in labels:
        for label in group:
            b = str(label).encode("utf-8", "surrogatepass")
            h.update(len(b).to_bytes(8, "little") + b)
        h.update(b"\x00group")
    h.update(repr([float(x) for x in numbers]).encode())
    return "sha256:" + h.hexdigest()
