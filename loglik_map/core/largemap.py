"""The :class:`~loglik_map.ModelMap` methods for maps too large for K × K arrays: k nearest
neighbours and all pairs written block by block to a Zarr store (:ref:`guide-large-maps`)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from os import PathLike
from typing import Any

import numpy as np
import xarray as xr

from ..errors import LoglikMapError
from ..options import resolve_progress
from ._pair_queries import _non_finite
from .blocked import DEFAULT_BLOCK_SIZE, block_pairs, check_block_size, map_block_pairs, matrix_fingerprint, row_ranges
from .kernels import NonFiniteKLError, resolve_backend
from .kernels.blocks import RowBlock, block_kl_se
from .matrix import MODEL_DIM, _storage
from .neighbours import exact_neighbours

__all__ = ["BlockedPairsMixin"]

Progress = Callable[[int, int], None]


@contextmanager
def _progress_callback(progress: bool | Progress | None, desc: str) -> Iterator[Progress | None]:
    """``progress`` itself if it is a callable ``progress(done, total)``; else a tqdm bar over block pairs
    when ``progress`` (or, for None, the ``progress`` option) is true and tqdm is installed."""
    if callable(progress):
        yield progress
        return
    if not resolve_progress(progress) or importlib.util.find_spec("tqdm") is None:
        yield None
        return
    from tqdm.auto import tqdm

    bars: list[Any] = []  # made on the first report: a resumed store with nothing left shows none

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc=desc, unit="block pair"))
        bars[0].update(done - bars[0].n)

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()


def _block_to_store(a: RowBlock, b: RowBlock, same: bool, store: Any, block_size: int, backend: str) -> int:
    """Block-pair task: KL and SE of the pair, written to ``store``; returns how many pairs went direct."""
    kl, se, n_direct = block_kl_se(a, b, same=same, backend=backend)
    store.write(a.start // block_size, b.start // block_size, kl, se)
    return n_direct


class BlockedPairsMixin:
    """Every model's k nearest neighbours and blocked all-pairs for :class:`~loglik_map.ModelMap`."""

    __slots__ = ()

    def _direct_backend(self) -> str:
        return "numpy" if resolve_backend(self._backend) == "numpy" else "numba"  # type: ignore[attr-defined]

    def _raise_non_finite(self, err: NonFiniteKLError) -> None:
        raise _non_finite(err, self.models) from None  # type: ignore[attr-defined]

    def _neighbour_table(self, k: int, unit: str, block_size: int, client: Any,
                         progress: bool | Progress | None) -> xr.Dataset:
        """The ``k`` closest models to every model, exact, block by block (:meth:`ModelMap.nearest` with no model).

        Every pair is considered (no index, no approximation): the KLs of each pair of row
        blocks come from one BLAS product with the accuracy guard of the dense kernels
        (near-identical pairs are evaluated directly), the k smallest per model are kept, and
        their KL and SE are evaluated directly. Memory: the coordinates (K × N float64) plus
        O(K·k + block_size²) — never K × K. Results equal the dense :meth:`kl` / :meth:`kl_se`
        to the kernels' accuracy; ties are ordered by model position, as a stable sort would.
        """
        K = len(self)  # type: ignore[arg-type]
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < K:
            raise LoglikMapError(f"k must be a whole number with 1 ≤ k < {K} (the number of other models on this "
                                 f"map of {K}), got {k!r}; ask for fewer neighbours")
        block_size = check_block_size(block_size)
        scale = self._scale(unit)  # type: ignore[attr-defined]
        self._check_texts(with_se=True)  # type: ignore[attr-defined]
        try:
            with _progress_callback(progress, "neighbours") as report:
                table = exact_neighbours(self._coords.data, int(k), block_size=block_size,  # type: ignore[attr-defined]
                                        backend=self._direct_backend(), client=client, progress=report)
        except NonFiniteKLError as err:
            self._raise_non_finite(err)
        coords = {n: c for n, c in self._coords.coords.items() if c.dims == (MODEL_DIM,)}  # type: ignore[attr-defined]
        coords["rank"] = np.arange(1, int(k) + 1)
        dims = (MODEL_DIM, "rank")
        return xr.Dataset(
            {
                "neighbour": (dims, self.models[table.index]),  # type: ignore[attr-defined]
                "kl": (dims, table.kl * scale, {"units": unit}),
                "se": (dims, table.se * scale, {"units": unit}),
            },
            coords=coords,
            attrs={"units": unit, "method": "exact", "n_texts": self.n_texts,  # type: ignore[attr-defined]
                   "block_size": block_size, "pairs_evaluated_directly": table.n_direct},
        )

    def all_pairs(self, store: str | PathLike[str], *, unit: str = "bits/byte", block_size: int | None = None,
                  client: Any = None, overwrite: bool = False,
                  progress: bool | Progress | None = None) -> xr.Dataset:
        """KL and SE of every pair, written block by block into a Zarr store; resumable.

        The K × K results never sit in memory: each pair of row blocks is computed with the
        dense ``blas`` kernel's formulas and accuracy guard (near-identical pairs evaluated
        directly) and written to its own Zarr chunks, here or on a dask cluster's workers
        (which must see ``store`` on a shared file system). A run that was killed is continued
        by calling this again with the same store: only the missing block pairs are computed.
        A store is tied to its map: another map's store is refused.

        Parameters
        ----------
        store : path
            A ``.zarr`` path; created if missing, continued if it holds this map's run.
        unit : {"bits/byte", "nats"}
            Unit of the returned arrays (the store holds bits/byte).
        block_size : int, optional
            Rows per block (and the store's chunk size); default 2048 for a new store, the
            stored one when continuing.
        client : distributed.Client, optional
            Run the block pairs on this dask cluster.
        overwrite : bool, default False
            Delete whatever is at ``store`` and start again.
        progress : bool or callable, optional
            A tqdm bar over block pairs (default: the ``progress`` option, when tqdm is
            installed), or a callable called as ``progress(done, total)`` after each block pair
            computed in this run.

        Returns
        -------
        xarray.Dataset
            Dask-backed ``kl`` and ``se``, dims ``("model", "model_")``, read from the store
            (see :func:`loglik_map.open_pairs`).
        """
        if block_size is not None:
            block_size = check_block_size(block_size)
        self._check_texts(with_se=True)  # type: ignore[attr-defined]
        self._scale(unit)  # type: ignore[attr-defined]  # a bad unit is refused before any work
        matrix = self._matrix  # type: ignore[attr-defined]
        fingerprint = matrix_fingerprint(matrix.data.data, [matrix.models, matrix.texts, matrix.n_bytes.astype(str)],
                                         [matrix.n_texts, matrix.mean_bytes], client)
        opened = _storage("pair_store")(store, models=self.models, n_texts=self.n_texts,  # type: ignore[attr-defined]
                                       mean_bytes=self.mean_bytes, fingerprint=fingerprint,  # type: ignore[attr-defined]
                                       block_size=block_size, default_block_size=DEFAULT_BLOCK_SIZE,
                                       overwrite=overwrite)
        with opened as (sink, done):
            todo = [(i, j) for i, j in block_pairs(len(row_ranges(len(self), sink.block_size)))  # type: ignore[arg-type]
                    if not done[i, j]]
            args = (sink, sink.block_size, self._direct_backend())
            try:
                with _progress_callback(progress, "all pairs") as report:
                    for n, _ in enumerate(map_block_pairs(_block_to_store, self._coords.data,  # type: ignore[attr-defined]
                                                          sink.block_size, todo, args, client), start=1):
                        if report is not None:
                            report(n, len(todo))
            except NonFiniteKLError as err:
                self._raise_non_finite(err)
        return _storage("open_pairs")(store, unit=unit)
