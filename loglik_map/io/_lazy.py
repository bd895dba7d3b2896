"""Opening a Zarr store or run store as a dask-backed matrix (``open_matrix(..., chunks=)``; not public API).

Nothing is loaded whole: the checksum is computed over row blocks streamed in order (the same
SHA-256 as :func:`~loglik_map.io._checksum.dataset_checksum`, which hashes the values row-major),
and every row block is validated as the constructor validates a matrix, in the same pass; then
the matrix is wrapped around a dask array. Memory: one row block (about 64 MiB) at a time.

The dask array reads the store again whenever it is computed, so each block read is guarded:
the store's identity (its folder's inode and the checksum in its metadata) is compared with the
one seen when it was opened, before and after the read. A save that replaced the store since
(``save(overwrite=True)`` renames a new folder in) makes the computation fail with an error
saying so, instead of mixing old and new values.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._units import LN2
from ..core._matrix import MODEL_DIM, TEXT_DIM, LogLikelihoodMatrix
from ..core._validation import first_duplicate
from ..errors import LoglikMapError, require_extra
from . import _storage
from ._checksum import CHECKSUM_ATTR, FORMAT_ATTR, _canonical_attr, _canonical_bytes, _feed
from ._format import check_format_version, normalise_strings, to_nats

__all__ = ["lazy_row", "normalise_chunks", "open_lazy_zarr"]

_BLOCK_BYTES = 64 * 2**20


def normalise_chunks(chunks: Any) -> dict[str, int]:
    """``chunks=`` as ``{"model": rows, "text": columns}`` (-1: the whole axis), or an error saying what to pass."""
    if isinstance(chunks, (int, np.integer)) and not isinstance(chunks, bool):
        out = {MODEL_DIM: int(chunks), TEXT_DIM: -1}
    elif isinstance(chunks, dict) and set(chunks) <= {MODEL_DIM, TEXT_DIM}:
        out = {MODEL_DIM: -1, TEXT_DIM: -1, **{k: int(v) for k, v in chunks.items()}}
    else:
        raise LoglikMapError(f"chunks must be a number of models per chunk (e.g. chunks=4096) or a dict like "
                             f"{{'model': 4096, 'text': -1}}, got {chunks!r}")
    if any(v == 0 or v < -1 for v in out.values()):
        raise LoglikMapError(f"chunk sizes must be positive (or -1 for a whole axis), got {chunks!r}")
    return out


def _rows_per_block(n_texts: int) -> int:
    return max(1, _BLOCK_BYTES // (8 * max(n_texts, 1)))


def _stream_checksum_and_validate(ds: xr.Dataset, path: Path, verify: bool) -> dict[str, Any]:
    """One pass over the row blocks: the checksum (if ``verify``) and the validation of every block.

    Returns the attrs of a validated block (defaults filled in), for the whole matrix.
    """
    h = hashlib.sha256()
    for key in sorted(str(k) for k in ds.attrs if k != CHECKSUM_ATTR):
        _feed(h, "attr", key.encode("utf-8", "surrogatepass"))
        _feed(h, "value", _canonical_attr(ds.attrs[key]))
    names = ["log_likelihood"] + sorted(str(n) for n in ds.coords)
    K, N = ds["log_likelihood"].shape
    step = _rows_per_block(N)
    attrs: dict[str, Any] = {}
    for name in names:
        da = ds[name]
        _feed(h, "name", name.encode("utf-8", "surrogatepass"))
        _feed(h, "dims", ",".join(map(str, da.dims)).encode("utf-8"))
        _feed(h, "shape", repr(tuple(int(s) for s in da.shape)).encode("ascii"))
        if da.ndim < 2:
            tag, data = _canonical_bytes(np.asarray(da.values))
            _feed(h, tag, data)
            continue
        tag = "f8" if np.dtype(da.dtype).kind == "f" else "i8"
        h.update(tag.encode("ascii"))
        h.update((int(da.size) * 8).to_bytes(8, "little"))
        for s in range(0, K, step):
            piece = da.isel({MODEL_DIM: slice(s, s + step)})
            h.update(_canonical_bytes(np.asarray(piece.values))[1])
            if name == "log_likelihood":
                attrs = _validate_block(ds, piece.load(), path)
    if verify:
        expected = ds.attrs.get(CHECKSUM_ATTR)
        if expected is None and ds.attrs.get(FORMAT_ATTR) is not None:
            raise LoglikMapError(f"{str(path)!r} has lost its checksum: the store was changed after it was saved; "
                                 "restore it from a backup, or pass verify=False to read it unchecked")
        if expected is not None and "sha256:" + h.hexdigest() != str(expected):
            raise LoglikMapError(f"{str(path)!r} is corrupt: its values, labels or attributes no longer match the "
                                 "checksum saved with them. Restore it from a backup or save it again; pass "
                                 "verify=False to read it anyway")
    return attrs


def _validate_block(ds: xr.Dataset, piece: xr.DataArray, path: Path) -> dict[str, Any]:
    da = piece.copy()
    da.attrs = {k: v for k, v in ds.attrs.items() if k not in (CHECKSUM_ATTR, FORMAT_ATTR)}
    da = to_nats(normalise_strings(da), path)
    try:
        return dict(LogLikelihoodMatrix.from_dataarray(da).attrs)
    except LoglikMapError as err:
        raise LoglikMapError(f"{str(path)!r}: {err}") from None


def _identity(path: Path) -> tuple[int, int, str] | None:
    """(device, inode, checksum in the metadata) of a Zarr store, or None if it cannot be read."""
    try:
        st = os.stat(path)
        meta = path / "zarr.json"
        attrs = json.loads(meta.read_text("utf-8")).get("attributes", {}) if meta.exists() else json.loads(
            (path / ".zattrs").read_text("utf-8"))
    except (OSError, ValueError, AttributeError):
        return None
    return st.st_dev, st.st_ino, str(attrs.get(CHECKSUM_ATTR))


def _guarded(path: Path, name: str, chunks: tuple[tuple[int, ...], ...], transposed: bool,
             seen: tuple[int, int, str] | None) -> Any:
    """A dask array of the 2-D variable ``name`` of the store at ``path`` (model × text), whose
    every block read fails if the store's identity is no longer ``seen``."""
    dask_array = require_extra("dask.array", "parallel", "dask-backed matrices (chunks=)")
    zarr = require_extra("zarr", "io", "Zarr storage")
    starts = [np.concatenate([[0], np.cumsum(c)]) for c in chunks]
    dtype = np.dtype(zarr.open_array(path / name, mode="r").dtype)

    def changed() -> LoglikMapError:
        return LoglikMapError(f"{str(path)!r} was replaced or removed after it was opened with chunks= (e.g. saved "
                              "again with overwrite=True): its blocks would mix old and new data. Open it again to "
                              "read what is there now")

    def block(block_id: tuple[int, int] | None = None) -> np.ndarray:
        assert block_id is not None
        rows = slice(int(starts[0][block_id[0]]), int(starts[0][block_id[0] + 1]))
        cols = slice(int(starts[1][block_id[1]]), int(starts[1][block_id[1] + 1]))
        if _identity(path) != seen:
            raise changed()
        try:
            arr = zarr.open_array(path / name, mode="r")
            values = np.asarray(arr[cols, rows]).T if transposed else np.asarray(arr[rows, cols])
        except Exception as err:
            if _identity(path) != seen:
                raise changed() from None
            raise LoglikMapError(f"cannot read {str(path)!r} ({type(err).__name__}: {err}): the store is damaged; "
                                 "restore it from a backup or save it again") from None
        if _identity(path) != seen:
            raise changed()
        return values

    return dask_array.map_blocks(block, chunks=chunks, dtype=dtype, meta=np.empty((0, 0), dtype=dtype))


def _chunk_tuple(n: int, size: int) -> tuple[int, ...]:
    size = n if size == -1 else size
    return tuple(min(size, n - s) for s in range(0, n, size)) or (0,)


def guarded_dataarray(path: Path, da: xr.DataArray, stored: xr.Dataset, sizes: dict[str, int],
                      seen: tuple[int, int, str] | None) -> xr.DataArray:
    """``da`` (a validated model × text matrix read from ``path`` while its identity was ``seen``)
    with its values and cell coordinates replaced by guarded dask arrays of the store, chunked as ``sizes``."""
    K, N = da.shape
    chunks = (_chunk_tuple(K, sizes[MODEL_DIM]), _chunk_tuple(N, sizes[TEXT_DIM]))

    def lazy(name: str, dtype: Any) -> Any:
        transposed = stored[name].dims != (MODEL_DIM, TEXT_DIM)
        return _guarded(path, name, chunks, transposed, seen).astype(dtype)

    values = lazy("log_likelihood", np.float64)
    if "units_converted_from" in da.attrs:
        values = values * LN2  # stored in bits, as to_nats converted the validated copy
    cells = {str(n): (c.dims, lazy(str(n), c.dtype)) for n, c in da.coords.items() if c.ndim == 2}
    return da.copy(data=values).assign_coords(cells)


def open_lazy_zarr(path: Path, verify: bool, chunks: Any) -> LogLikelihoodMatrix:
    """A matrix saved as ``.zarr``, dask-backed, checked and validated block by block (read again
    if a save replaced the store meanwhile)."""
    require_extra("dask.array", "parallel", "dask-backed matrices (chunks=)")
    sizes = normalise_chunks(chunks)
    if not path.exists() and _storage.siblings(path, _storage.ASIDE):
        _storage.recover_waiting(path)
    if not path.exists():
        raise LoglikMapError(f"no such file or store: {str(path)!r}")
    return _storage.read_consistently(path, lambda: _open_lazy_once(path, verify, sizes))


def _open_lazy_once(path: Path, verify: bool, sizes: dict[str, int]) -> LogLikelihoodMatrix:
    seen = _identity(path)
    try:  # chunks=None: read by Zarr directly, no dask (see _backends.load_zarr)
        stored = xr.open_zarr(path, consolidated=False, chunks=None)
    except Exception as err:
        raise LoglikMapError(f"cannot read {str(path)!r} ({type(err).__name__}: {err}); it is damaged or not a "
                             "Zarr store written by loglik_map") from err
    if "log_likelihood" not in stored:
        raise LoglikMapError(f"{str(path)!r} holds no 'log_likelihood' variable; it is not a matrix saved by loglik_map")
    ds = stored
    check_format_version(ds.attrs.get(FORMAT_ATTR), path)
    if set(ds["log_likelihood"].dims) != {MODEL_DIM, TEXT_DIM}:
        raise LoglikMapError(f"{str(path)!r}: log_likelihood has dims {ds['log_likelihood'].dims}, expected "
                             "('model', 'text')")
    ds = ds.transpose(MODEL_DIM, TEXT_DIM)
    dup = first_duplicate(np.asarray(normalise_strings(ds[MODEL_DIM]).values))
    if dup is not None:
        raise LoglikMapError(f"{str(path)!r}: model {dup[0]!r} appears twice (positions {dup[1]} and {dup[2]})")
    attrs = _stream_checksum_and_validate(ds, path, verify)
    da = ds["log_likelihood"]
    da.attrs = {k: v for k, v in ds.attrs.items() if k not in (CHECKSUM_ATTR, FORMAT_ATTR)}
    da = to_nats(normalise_strings(da), path)
    da = da.assign_coords(n_bytes=(TEXT_DIM, np.asarray(da["n_bytes"].values, dtype=np.int64)))
    da.attrs = attrs
    if _identity(path) != seen:
        raise LoglikMapError(f"{str(path)!r} was replaced while it was opened")  # read_consistently reads it again
    return LogLikelihoodMatrix._wrap(guarded_dataarray(path, da, stored, sizes, seen))


def lazy_row(path: Path, matrix: LogLikelihoodMatrix) -> LogLikelihoodMatrix:
    """The validated run-store row ``matrix`` (read from ``path``) with its values and cell coordinates lazy."""
    stored = xr.open_zarr(path, consolidated=False, chunks=None)
    seen = _identity(path)
    return LogLikelihoodMatrix._wrap(guarded_dataarray(path, matrix.data, stored, {MODEL_DIM: -1, TEXT_DIM: -1}, seen))
