"""The netCDF and Zarr backends: choosing one by suffix, writing a dataset to disk, reading it back (not public API)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import xarray as xr

from ..errors import LoglikMapError, MissingExtraError, require_extra
from . import _storage

__all__ = ["FORMATS", "damaged_error", "format_of", "load_zarr", "netcdf_engine", "open_zarr", "read_dataset", "require_zarr",
           "write_netcdf", "write_zarr"]

FORMATS = {".nc": "netcdf", ".zarr": "zarr"}

def format_of(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LoglikMapError(f"unknown format for {str(path)!r}: use a path ending in .nc (netCDF) or .zarr (Zarr)")
    return fmt


def netcdf_engine() -> str:
    """The xarray engine for netCDF: ``"h5netcdf"`` (the ``io`` extra), else ``"netcdf4"`` if installed."""
    try:
        require_extra("h5netcdf", "io", "netCDF storage")
        return "h5netcdf"
    except MissingExtraError:
        try:
            require_extra("netCDF4", "io", "netCDF storage")
        except MissingExtraError:
            pass
        else:
            return "netcdf4"
        raise


def require_zarr() -> None:
    """Raise :class:`~loglik_map.errors.MissingExtraError` unless zarr is installed."""
    require_extra("zarr", "io", "Zarr storage")


def write_netcdf(ds: xr.Dataset, tmp: Path) -> None:
    engine = netcdf_engine()
    if engine == "h5netcdf":
        # Build the file in memory and write the bytes ourselves: HDF5 then never meets a disk
        # error (h5py can crash the interpreter after a failed write, e.g. on a full disk), and a
        # full disk is an ordinary OSError.
        data = ds.to_netcdf(engine="h5netcdf")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        return
    # netCDF4 writes to disk itself: refuse up front what cannot fit rather than meet a full disk
    needed = sum(int(v.nbytes) for v in ds.variables.values()) + 2**20  # pragma: no cover - only without h5netcdf
    free = shutil.disk_usage(tmp.parent).free  # pragma: no cover
    if free < needed:  # pragma: no cover
        raise LoglikMapError(f"not enough free space in {str(tmp.parent)!r} to save {needed} bytes ({free} free): free "
                             "some space or choose another folder")
    ds.to_netcdf(tmp, engine=engine)  # type: ignore[call-overload]  # pragma: no cover
    _storage.fsync_tree(tmp)  # pragma: no cover


def write_zarr(ds: xr.Dataset, tmp: Path) -> None:
    """Write ``ds`` to a new Zarr store ``tmp`` (which must not exist) and flush it to disk."""
    require_zarr()
    ds.to_zarr(tmp, mode="w-", consolidated=False)
    _storage.fsync_tree(tmp)


def read_dataset(path: Path, fmt: str, *, ours: bool = False) -> xr.Dataset:
    """Load a dataset; ``ours``: written by this library (Zarr not consolidated)."""
    if fmt == "netcdf":
        with xr.open_dataset(path, engine=netcdf_engine()) as ds:
            return ds.load()
    if ours:
        return load_zarr(path)
    return open_zarr(path)


def load_zarr(path: Path, *, consolidated: bool = False) -> xr.Dataset:
    """Read a whole Zarr store into memory without dask.

    Opened with ``chunks=None`` (xarray's own lazy arrays, read by Zarr directly), so no dask
    scheduler runs: a process forked after this one read a store (e.g. a
    ``ProcessPoolExecutor`` worker on Linux) can read stores too, which dask's threaded
    scheduler, whose thread pool does not survive a fork, would hang.
    """
    with xr.open_zarr(path, consolidated=consolidated, chunks=None) as ds:
        return ds.load()


def open_zarr(path: Path) -> xr.Dataset:
    # Stores written here are not consolidated (Zarr v3 has no consolidated metadata in its
    # spec); stores written elsewhere may be. Try the fast path first, quietly.
    try:
        return load_zarr(path, consolidated=True)
    except (KeyError, FileNotFoundError, ValueError):
        return load_zarr(path)


def damaged_error(path: Path, err: BaseException, what: str = "the file") -> LoglikMapError:
    """The error for a file a backend could not read: names it and says what to do."""
    return LoglikMapError(
        f"cannot read {str(path)!r} ({type(err).__name__}: {err}): {what} is damaged (e.g. truncated or changed "
        "by another program) or was not written by loglik_map; restore it from a backup or save/score it again"
    )
