"""The all-pairs store: K × K KL and SE written block by block into a Zarr store, resumable, checksummed.

Written by :meth:`loglik_map.ModelMap.all_pairs`, read by :func:`open_pairs`. Layout::

    pairs.zarr/
      kl, se        (K, K) float64 in bits/byte, one Zarr chunk per block pair (block_size²);
                    a block not yet computed reads NaN
      block_digest  (n_blocks, n_blocks, 4) uint64, one chunk per block pair: the SHA-256 of the
                    block pair's KL and SE (I ≤ J), written after both (I, J) and (J, I) are on
                    disk; all zeros until then
      model, model_ the model names
      attrs         loglik_map_pairs_format, fingerprint (SHA-256 of the map's log-likelihoods,
                    model names, text ids, byte lengths), n_models, block_size, n_texts,
                    mean_bytes, header_digest (SHA-256 of these and the model names)

Zarr writes every chunk under a temporary name and renames it in, so a killed run leaves whole
chunks; a block counts as done only once its digest is written, after its data. Every read
checks: the header digest when the store is opened or continued, each block's digest when the
block is read (:func:`open_pairs` is lazy; a damaged block raises an error naming the store and
the block when it is computed), and every finished block when a run continues — damaged blocks
are then computed again, with a :class:`~loglik_map.DataIntegrityWarning`.
A run holds the store's lock file (``.<name>.lock`` beside it, deleted when the run ends,
released by the OS if the run dies), so two runs never write one store. The store is created under a temporary name and
renamed in, so it is complete or absent; ``overwrite=True`` builds the new store under a
temporary name and swaps it in only when it is finished, so a killed run leaves the old one.
Resuming checks that the store belongs to the same map (the fingerprint) and block size;
anything else is refused, naming the difference.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._units import check_unit, nats_per_bit_per_byte
from ..core._matrix import MODEL_DIM
from ..core._modelmap import PAIR_DIM
from ..errors import DataIntegrityWarning, LoglikMapError, require_extra
from . import _storage
from ._pairblocks import DIGEST, HEADER_ATTR, block_digest, damaged_store_error, header_digest, read_block, read_names

__all__ = ["PAIRS_FORMAT", "PairStore", "open_pairs", "pair_store"]

#: Format version of the all-pairs store this version writes (and the newest it reads).
PAIRS_FORMAT = 2
_FORMAT_ATTR = "loglik_map_pairs_format"
_RECOMPUTE = "call ModelMap.all_pairs with the same store to recompute the damaged blocks"


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
        """Write block pair ``(i, j)`` (and its transpose ``(j, i)``) of KL and SE, then its digest (marks it done)."""
        zarr = require_extra("zarr", "io", "Zarr storage")
        b = self.block_size
        ri = slice(i * b, i * b + kl.shape[0])
        rj = slice(j * b, j * b + kl.shape[1])
        try:
            for name, block in (("kl", kl), ("se", se)):
                arr = zarr.open_array(Path(self.path) / name, mode="r+")
                arr[ri, rj] = block
                if i != j:
                    arr[rj, ri] = block.T
            zarr.open_array(Path(self.path) / DIGEST, mode="r+")[i, j] = block_digest(i, j, kl, se)
        except OSError as err:
            raise _storage.storage_error(err, Path(self.path), "write the all-pairs store") from err


def _check_path(path: Path) -> None:
    if path.suffix.lower() != ".zarr":
        raise LoglikMapError(f"an all-pairs store is a Zarr store: use a path ending in .zarr, not {str(path)!r}")
    if not path.parent.is_dir():
        raise LoglikMapError(f"cannot write {str(path)!r}: the folder {str(path.parent)!r} does not exist; create it first")


def _group_attrs(path: Path) -> dict[str, Any] | None:
    zarr = require_extra("zarr", "io", "Zarr storage")
    try:
        return dict(zarr.open_group(path, mode="r").attrs)
    except Exception:
        return None


def _is_ours(path: Path) -> bool:
    """Whether ``path`` is (or was, if its metadata are damaged) an all-pairs store, which overwrite may replace."""
    attrs = _group_attrs(path)
    if attrs is not None:
        return _FORMAT_ATTR in attrs
    return path.is_dir() and (path / "kl").is_dir() and (path / "se").is_dir() and not (path / "log_likelihood").exists()


def _not_ours_error(path: Path, attrs: dict[str, Any] | None) -> LoglikMapError:
    what = ("a matrix saved by loglik_map, not an all-pairs store" if attrs is not None and "loglik_map_format" in attrs
            else "not an all-pairs store written by loglik_map")
    return LoglikMapError(f"{str(path)!r} exists and is {what} (no {_FORMAT_ATTR!r} attribute); it is left alone "
                          "(overwrite=True replaces only all-pairs stores): choose another path for the store")


def _read_attrs(path: Path) -> dict[str, Any]:
    """The store's attributes, checked against the header digest (with the model names)."""
    attrs = _group_attrs(path)
    if attrs is None or _FORMAT_ATTR not in attrs:
        if attrs is None and _is_ours(path):
            raise damaged_store_error(path, "its attributes cannot be read", "compute it again with overwrite=True")
        raise _not_ours_error(path, attrs)
    version = attrs[_FORMAT_ATTR]
    if not isinstance(version, int) or version > PAIRS_FORMAT or version < 1:
        raise LoglikMapError(f"{str(path)!r} is an all-pairs store of format {version!r}, which this loglik_map "
                             f"cannot read (it reads up to {PAIRS_FORMAT}); upgrade loglik_map or use a new path")
    if version < PAIRS_FORMAT:
        raise LoglikMapError(f"{str(path)!r} was written by an earlier loglik_map without checksums (all-pairs "
                             f"format {version}); compute it again with overwrite=True")
    if attrs.get(HEADER_ATTR) != header_digest(attrs, read_names(path)):
        raise damaged_store_error(path, "its attributes (e.g. mean_bytes, n_texts) or model names no longer match "
                                  "their checksum", "compute it again with overwrite=True")
    return attrs


def _digests(path: Path, n_blocks: int) -> np.ndarray:
    """The (n_blocks, n_blocks, 4) block digests; an unreadable digest chunk reads as "not done"."""
    zarr = require_extra("zarr", "io", "Zarr storage")
    try:
        arr = zarr.open_array(path / DIGEST, mode="r")
    except Exception as err:
        raise damaged_store_error(path, f"its block index cannot be read ({type(err).__name__}: {err})",
                                  "compute it again with overwrite=True") from None
    try:
        out = np.asarray(arr[...], dtype=np.uint64)
    except Exception:  # a damaged chunk: read the others one by one
        out = np.zeros((n_blocks, n_blocks, 4), dtype=np.uint64)
        for i in range(n_blocks):
            for j in range(i, n_blocks):
                with contextlib.suppress(Exception):
                    out[i, j] = np.asarray(arr[i, j], dtype=np.uint64)
    if out.shape != (n_blocks, n_blocks, 4):
        raise damaged_store_error(path, f"its block index has shape {out.shape}, expected {(n_blocks, n_blocks, 4)}",
                                  "compute it again with overwrite=True")
    return out


def _n_blocks(attrs: dict[str, Any]) -> int:
    return -(-int(attrs["n_models"]) // int(attrs["block_size"]))


def _create(path: Path, models: np.ndarray, block_size: int, attrs: dict[str, Any]) -> None:
    """Create an empty store at ``path`` (under a temporary name, renamed in: complete or absent)."""
    dask_array = require_extra("dask.array", "parallel", "all-pairs stores")
    K = len(models)
    nb = -(-K // block_size)
    names = np.asarray(models, dtype=object)
    attrs = {_FORMAT_ATTR: PAIRS_FORMAT, **attrs, "block_size": block_size}
    attrs[HEADER_ATTR] = header_digest(attrs, names)
    ds = xr.Dataset(
        {
            "kl": ((MODEL_DIM, PAIR_DIM), dask_array.zeros((K, K), chunks=block_size), {"units": "bits/byte"}),
            "se": ((MODEL_DIM, PAIR_DIM), dask_array.zeros((K, K), chunks=block_size), {"units": "bits/byte"}),
            DIGEST: (("block", "block_", "word"), dask_array.zeros((nb, nb, 4), dtype=np.uint64, chunks=(1, 1, 4))),
        },
        coords={MODEL_DIM: names, PAIR_DIM: names},
        attrs=attrs,
    )
    encoding = {"kl": {"chunks": (block_size, block_size), "fill_value": np.nan},
                "se": {"chunks": (block_size, block_size), "fill_value": np.nan},
                DIGEST: {"chunks": (1, 1, 4), "fill_value": 0}}
    tmp = _storage.temp_sibling(path, _storage.PARTIAL)
    try:
        ds.to_zarr(tmp, mode="w-", compute=False, encoding=encoding, consolidated=False)
        _storage.fsync_tree(tmp)
        tmp.rename(path)
    except BaseException as err:
        _storage.remove_settled(tmp)
        if isinstance(err, OSError):
            raise _storage.storage_error(err, path, "create the all-pairs store") from err
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


def _repair(path: Path, attrs: dict[str, Any], digests: np.ndarray) -> np.ndarray:
    """Check every finished block pair (both halves); mark damaged ones not done, with a warning."""
    zarr = require_extra("zarr", "io", "Zarr storage")
    size, n = int(attrs["block_size"]), int(attrs["n_models"])
    damaged = []
    for i, j in zip(*np.nonzero(digests.any(axis=2)), strict=True):
        try:
            read_block(path, i, j, size, n, digests[i, j])
            if i != j:
                read_block(path, j, i, size, n, digests[i, j])
        except LoglikMapError:
            damaged.append((int(i), int(j)))
    if damaged:
        index = zarr.open_array(path / DIGEST, mode="r+")
        for i, j in damaged:
            index[i, j] = np.zeros(4, dtype=np.uint64)
            digests[i, j] = 0
        shown = ", ".join(map(str, damaged[:5])) + (f" and {len(damaged) - 5} more" if len(damaged) > 5 else "")
        warnings.warn(f"the all-pairs store {str(path)!r} had {len(damaged)} damaged block pairs ({shown}): they do "
                      "not match their checksums and are computed again", DataIntegrityWarning, stacklevel=4)
    return digests


def _done(digests: np.ndarray) -> np.ndarray:
    return np.asarray(digests.any(axis=2), dtype=bool)


@contextlib.contextmanager
def pair_store(path: str | PathLike[str], *, models: Sequence[str], n_texts: int, mean_bytes: float,
               fingerprint: str, block_size: int | None, default_block_size: int,
               overwrite: bool = False) -> Iterator[tuple[PairStore, np.ndarray]]:
    """Create or reopen the all-pairs store at ``path`` and hold its lock; yield ``(store, done)``.

    ``done`` is the (n_blocks, n_blocks) boolean array of the block pairs already on disk (upper
    triangle), each checked against its digest (damaged ones are not done). ``block_size=None``
    continues with the stored block size (or the default for a new store); a different explicit
    one is refused on resume. With ``overwrite`` an existing store is replaced only when the body
    finishes (the new one is built under a temporary name).
    """
    path = Path(path)
    _check_path(path)
    lock = _storage.lock_file(path)
    _storage.acquire(lock, 0, f"another run is writing the all-pairs store {str(path)!r} right now; wait for it "
                              "to finish (or stop it), then run again to continue where it stopped")
    try:
        _storage.recover(path)  # an interrupted swap, and temporaries of runs that died
        wanted = {"fingerprint": fingerprint, "n_models": len(models), "n_texts": int(n_texts),
                  "mean_bytes": float(mean_bytes)}
        names = np.asarray(models, dtype=object)
        exists = path.exists() or path.is_symlink()
        if exists and overwrite:
            if not _is_ours(path):
                raise _not_ours_error(path, _group_attrs(path))
            size = default_block_size if block_size is None else block_size
            target = _storage.temp_sibling(path, _storage.PARTIAL)
            _create(target, names, size, wanted)
            try:
                yield PairStore(str(target), size), np.zeros((_n_blocks({**wanted, "block_size": size}),) * 2, bool)
                _storage.replace_aside(target, path)
            finally:
                _storage.remove_path(target)
            return
        if exists:
            stored = _read_attrs(path)
            if stored.get("fingerprint") != fingerprint:
                raise LoglikMapError(_describe_mismatch(path, stored, wanted))
            size = int(stored["block_size"])
            if block_size is not None and block_size != size:
                raise LoglikMapError(f"{str(path)!r} was started with block_size={size}; continue it with that "
                                     f"block size (or block_size=None), or pass overwrite=True to start again "
                                     f"with {block_size}")
            digests = _repair(path, stored, _digests(path, _n_blocks(stored)))
        else:
            size = default_block_size if block_size is None else block_size
            _create(path, names, size, wanted)
            digests = _digests(path, _n_blocks({**wanted, "block_size": size}))
        yield PairStore(str(path), size), _done(digests)
    finally:
        lock.release()


def _verified(path: Path, variable: int, size: int, n: int, digests: np.ndarray) -> Any:
    """A dask array of ``kl`` (variable 0) or ``se`` (1), each block checked against its digest when read."""
    dask_array = require_extra("dask.array", "parallel", "all-pairs stores")
    bounds = tuple(min(size, n - s) for s in range(0, n, size))

    def block(block_id: tuple[int, int] | None = None) -> np.ndarray:
        assert block_id is not None
        bi, bj = block_id
        digest = digests[min(bi, bj), max(bi, bj)]
        if not digest.any():  # not computed (an incomplete store opened on purpose)
            return np.full((bounds[bi], bounds[bj]), np.nan)
        return read_block(path, bi, bj, size, n, digest)[variable]

    return dask_array.map_blocks(block, chunks=(bounds, bounds), dtype=np.float64, meta=np.empty((0, 0)))


def open_pairs(path: str | PathLike[str], *, unit: str = "bits/byte", allow_incomplete: bool = False) -> xr.Dataset:
    """Open an all-pairs store written by :meth:`ModelMap.all_pairs <loglik_map.ModelMap.all_pairs>`, lazily.

    The store's attributes and model names are checked against their checksum now; each block
    against its own when it is computed (a damaged block raises a
    :class:`~loglik_map.LoglikMapError` naming the store and the block; calling
    :meth:`~loglik_map.ModelMap.all_pairs` with the same store recomputes it).

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
    n, size = int(attrs["n_models"]), int(attrs["block_size"])
    digests = _digests(path, _n_blocks(attrs))
    done = _done(digests)
    upper = np.triu(np.ones_like(done, dtype=bool))
    n_done, n_total = int(done[upper].sum()), int(upper.sum())
    if n_done < n_total and not allow_incomplete:
        raise LoglikMapError(f"{str(path)!r} is incomplete: {n_total - n_done} of {n_total} block pairs are missing "
                             "(the run was stopped). Finish it by calling ModelMap.all_pairs with the same store, or "
                             "pass allow_incomplete=True to read it with NaN for the missing blocks")
    names = read_names(path)
    dims = (MODEL_DIM, PAIR_DIM)
    ds = xr.Dataset({name: (dims, _verified(path, k, size, n, digests)) for k, name in enumerate(("kl", "se"))},
                    coords={MODEL_DIM: names, PAIR_DIM: names.copy()})
    scale = 1.0 if unit == "bits/byte" else nats_per_bit_per_byte(float(attrs["mean_bytes"]))
    if scale != 1.0:
        ds = ds * scale
    for name in ("kl", "se"):
        ds[name].attrs = {"units": unit}
    ds.attrs = {"units": unit, "n_texts": int(attrs["n_texts"]), "mean_bytes": float(attrs["mean_bytes"]),
                "block_size": size, "blocks_done": n_done, "blocks_total": n_total}
    return ds
