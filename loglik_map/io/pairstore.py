"""The all-pairs store: K × K KL and SE written block by block into a Zarr store, resumable.

Written by :meth:`loglik_map.ModelMap.all_pairs`, read by :func:`open_pairs`. Layout::

    pairs.zarr/
      kl, se        (K, K) float64 in bits/byte, one Zarr chunk per block pair (block_size²);
                    a block not yet computed reads NaN
      block_done    (n_blocks, n_blocks) uint8, one chunk per entry: 1 once both (I, J) and
                    (J, I) of kl and se are on disk
      model, model_ the model names
      attrs         loglik_map_pairs_format, fingerprint (SHA-256 of the map's log-likelihoods,
                    model names, text ids, byte lengths), block_size, n_texts, mean_bytes

Zarr writes every chunk under a temporary name and renames it in, so a killed run leaves whole
chunks; a block counts as done only once its ``block_done`` entry is written, after its data.
A run holds the store's lock file (``.<name>.lock`` beside it, released by the OS if the run
dies), so two runs never write one store. The store is created under a temporary name and
renamed in, so it is complete or absent. Resuming checks that the store belongs to the same
map (the fingerprint) and block size; anything else is refused, naming the difference.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from ..core.matrix import MODEL_DIM
from ..core.modelmap import PAIR_DIM
from ..errors import LoglikMapError, require_extra
from ..units import check_unit, nats_per_bit_per_byte
from . import _storage

__all__ = ["PAIRS_FORMAT", "PairStore", "open_pairs", "pair_store"]

#: Format version of the all-pairs store this version writes (and the newest it reads).
PAIRS_FORMAT = 1
_FORMAT_ATTR = "loglik_map_pairs_format"


@dataclass(frozen=True)
class PairStore:
    """Where the workers write block pairs (picklable: a path and a block size).

    Attributes
    ----------
    path : str
    block_size : int
    """

    path: str
    block_size: int

    def write(self, i: int, j: int, kl: np.ndarray, se: np.ndarray) -> None:
        """Write block pair ``(i, j)`` (and its transpose ``(j, i)``) of KL and SE, then mark it done."""
        zarr = require_extra("zarr", "io", "Zarr storage")
        b = self.block_size
        ri = slice(i * b, i * b + kl.shape[0])
        rj = slice(j * b, j * b + kl.shape[1])
        for name, block in (("kl", kl), ("se", se)):
            arr = zarr.open_array(Path(self.path) / name, mode="r+")
            arr[ri, rj] = block
            if i != j:
                arr[rj, ri] = block.T
        zarr.open_array(Path(self.path) / "block_done", mode="r+")[i, j] = 1


def _check_path(path: Path) -> None:
    if path.suffix.lower() != ".zarr":
        raise LoglikMapError(f"an all-pairs store is a Zarr store: use a path ending in .zarr, not {str(path)!r}")
    if not path.parent.is_dir():
        raise LoglikMapError(f"cannot write {str(path)!r}: the folder {str(path.parent)!r} does not exist; create it first")


def _read_attrs(path: Path) -> dict[str, Any]:
    """The store's attributes, or an error saying that ``path`` is not an all-pairs store."""
    zarr = require_extra("zarr", "io", "Zarr storage")
    try:
        attrs = dict(zarr.open_group(path, mode="r").attrs)
    except Exception as err:
        attrs = {"_error": f"{type(err).__name__}: {err}"}
    if _FORMAT_ATTR not in attrs:
        raise LoglikMapError(f"{str(path)!r} exists and is not an all-pairs store written by loglik_map (no "
                             f"{_FORMAT_ATTR!r} attribute); choose a new path, or pass overwrite=True to replace it")
    version = attrs[_FORMAT_ATTR]
    if not isinstance(version, int) or version > PAIRS_FORMAT or version < 1:
        raise LoglikMapError(f"{str(path)!r} is an all-pairs store of format {version!r}, which this loglik_map "
                             f"cannot read (it reads up to {PAIRS_FORMAT}); upgrade loglik_map or use a new path")
    return attrs


def _done(path: Path) -> np.ndarray:
    zarr = require_extra("zarr", "io", "Zarr storage")
    return np.asarray(zarr.open_array(path / "block_done", mode="r")[...], dtype=bool)


def _create(path: Path, models: np.ndarray, block_size: int, attrs: dict[str, Any]) -> None:
    """Create an empty store at ``path`` (under a temporary name, renamed in: complete or absent)."""
    dask_array = require_extra("dask.array", "parallel", "all-pairs stores")
    K = len(models)
    nb = -(-K // block_size)
    names = np.asarray(models, dtype=object)
    ds = xr.Dataset(
        {
            "kl": ((MODEL_DIM, PAIR_DIM), dask_array.zeros((K, K), chunks=block_size), {"units": "bits/byte"}),
            "se": ((MODEL_DIM, PAIR_DIM), dask_array.zeros((K, K), chunks=block_size), {"units": "bits/byte"}),
            "block_done": (("block", "block_"), dask_array.zeros((nb, nb), dtype=np.uint8, chunks=1)),
        },
        coords={MODEL_DIM: names, PAIR_DIM: names},
        attrs={_FORMAT_ATTR: PAIRS_FORMAT, **attrs, "block_size": block_size},
    )
    encoding = {"kl": {"chunks": (block_size, block_size), "fill_value": np.nan},
                "se": {"chunks": (block_size, block_size), "fill_value": np.nan},
                "block_done": {"chunks": (1, 1), "fill_value": 0}}
    tmp = _storage.temp_sibling(path, _storage.PARTIAL)
    try:
        ds.to_zarr(tmp, mode="w-", compute=False, encoding=encoding, consolidated=False)
        _storage.fsync_tree(tmp)
        tmp.rename(path)
    except BaseException:
        _storage.remove_path(tmp)
        raise
    _storage.fsync_dir(path.parent)


def _describe_mismatch(path: Path, stored: dict[str, Any], wanted: dict[str, Any]) -> str:
    what = []
    if stored.get("n_models") != wanted["n_models"]:
        what.append(f"{stored.get('n_models')} models there, {wanted['n_models']} on this map")
    if stored.get("n_texts") != wanted["n_texts"]:
        what.append(f"{stored.get('n_texts')} texts there, {wanted['n_texts']} here")
    if not what:
        what.append("the same shape, but different models, texts or log-likelihoods")
    return (f"{str(path)!r} holds the all-pairs results of a different map ({'; '.join(what)}), so its finished "
            "blocks cannot be continued; pass a new path, or overwrite=True to start it again")


@contextlib.contextmanager
def pair_store(path: str | PathLike[str], *, models: Sequence[str], n_texts: int, mean_bytes: float,
               fingerprint: str, block_size: int | None, default_block_size: int,
               overwrite: bool = False) -> Iterator[tuple[PairStore, np.ndarray]]:
    """Create or reopen the all-pairs store at ``path`` and hold its lock; yield ``(store, done)``.

    ``done`` is the (n_blocks, n_blocks) boolean array of the block pairs already on disk (upper
    triangle). ``block_size=None`` continues with the stored block size (or the default for a new
    store); a different explicit one is refused on resume.
    """
    path = Path(path)
    _check_path(path)
    lock = _storage.lock_file(path)
    _storage.acquire(lock, 0, f"another run is writing the all-pairs store {str(path)!r} right now; wait for it "
                              "to finish (or stop it), then run again to continue where it stopped")
    try:
        for stale in _storage.siblings(path, _storage.PARTIAL):
            _storage.remove_path(stale)
        wanted = {"fingerprint": fingerprint, "n_models": len(models), "n_texts": int(n_texts),
                  "mean_bytes": float(mean_bytes)}
        if (path.exists() or path.is_symlink()) and overwrite:
            _storage.remove_path(path)
        if path.exists():
            stored = _read_attrs(path)
            if stored.get("fingerprint") != fingerprint:
                raise LoglikMapError(_describe_mismatch(path, stored, wanted))
            size = int(stored["block_size"])
            if block_size is not None and block_size != size:
                raise LoglikMapError(f"{str(path)!r} was started with block_size={size}; continue it with that "
                                     f"block size (or block_size=None), or pass overwrite=True to start again "
                                     f"with {block_size}")
        else:
            size = default_block_size if block_size is None else block_size
            _create(path, np.asarray(models, dtype=object), size, wanted)
        yield PairStore(str(path), size), _done(path)
    finally:
        lock.release()


def open_pairs(path: str | PathLike[str], *, unit: str = "bits/byte", allow_incomplete: bool = False) -> xr.Dataset:
    """Open an all-pairs store written by :meth:`ModelMap.all_pairs <loglik_map.ModelMap.all_pairs>`, lazily.

    Parameters
    ----------
    path : path
        The ``.zarr`` store.
    unit : {"bits/byte", "nats"}
        Unit of the returned KLs and SEs (nats per text = bits/byte × B̄ ln 2).
    allow_incomplete : bool, default False
        Open a store whose run has not finished: the missing blocks read NaN. Refused by default.

    Returns
    -------
    xarray.Dataset
        Dask-backed variables ``kl`` and ``se``, dims ``("model", "model_")``, symmetric with
        zeros on the diagonal; attrs ``units``, ``n_texts``, ``mean_bytes``, ``block_size``,
        ``blocks_done`` and ``blocks_total``.
    """
    check_unit(unit)
    path = Path(path)
    if not path.exists():
        raise LoglikMapError(f"no such all-pairs store: {str(path)!r}")
    attrs = _read_attrs(path)
    done = _done(path)
    upper = np.triu(np.ones_like(done, dtype=bool))
    n_done, n_total = int(done[upper].sum()), int(upper.sum())
    if n_done < n_total and not allow_incomplete:
        raise LoglikMapError(f"{str(path)!r} is incomplete: {n_total - n_done} of {n_total} block pairs are missing "
                             "(the run was stopped). Finish it by calling ModelMap.all_pairs with the same store, or "
                             "pass allow_incomplete=True to read it with NaN for the missing blocks")
    ds = xr.open_zarr(path, consolidated=False)[["kl", "se"]]
    names = {dim: np.array([str(v) for v in ds[dim].values], dtype=object) for dim in (MODEL_DIM, PAIR_DIM)}
    ds = ds.assign_coords(names)
    scale = 1.0 if unit == "bits/byte" else nats_per_bit_per_byte(float(attrs["mean_bytes"]))
    if scale != 1.0:
        ds = ds * scale
    for name in ("kl", "se"):
        ds[name].attrs = {"units": unit}
    ds.attrs = {"units": unit, "n_texts": int(attrs["n_texts"]), "mean_bytes": float(attrs["mean_bytes"]),
                "block_size": int(attrs["block_size"]), "blocks_done": n_done, "blocks_total": n_total}
    return ds
