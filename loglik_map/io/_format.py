"""The stored form of a matrix: one xarray Dataset with its format version and checksum (not public API).

Saved files and run-store rows share it; reading turns any backend's strings into ``str``,
checks the version and the checksum, and converts bits to nats.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._units import loglik_units_factor
from ..core._matrix import MODEL_DIM, TEXT_DIM, LogLikelihoodMatrix
from ..errors import LoglikMapError
from ._checksum import CHECKSUM_ATTR, FILE_FORMAT, FORMAT_ATTR, dataset_checksum

__all__ = ["check_format_version", "matrix_from_dataset", "normalise_strings", "stamped_dataset", "to_dataset",
           "to_nats", "verify_checksum"]

def to_dataset(matrix: LogLikelihoodMatrix) -> xr.Dataset:
    ds = matrix.data.to_dataset(name="log_likelihood", promote_attrs=True)
    ds["log_likelihood"].attrs = {}
    return ds


def stamped_dataset(matrix: LogLikelihoodMatrix, **attrs: Any) -> xr.Dataset:
    """The dataset a matrix is stored as, with ``attrs`` added and the format version and checksum set."""
    ds = to_dataset(matrix)
    ds.attrs.update(attrs)
    ds.attrs[FORMAT_ATTR] = FILE_FORMAT
    ds.attrs[CHECKSUM_ATTR] = dataset_checksum(ds)
    return ds

def normalise_strings(da: xr.DataArray) -> xr.DataArray:
    """Make every string coordinate an object array of ``str`` whatever the backend returned."""
    for name, coord in da.coords.items():
        if coord.dtype.kind in "USOT":
            values = np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in coord.values], dtype=object)
            da = da.assign_coords({name: (coord.dims, values, coord.attrs)})
    return da

def check_format_version(value: Any, path: Path) -> None:
    """Refuse data written in a storage format this version cannot read (``None``: written before
    format versions were recorded, read as format 1)."""
    if value is None:
        return
    try:
        version = int(value)
        ok = version == float(value)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise LoglikMapError(f"{str(path)!r}: unreadable storage format version {value!r}; the file is damaged or was "
                             "not written by loglik_map")
    if version > FILE_FORMAT:
        raise LoglikMapError(f"{str(path)!r} was written by a newer loglik_map (storage format {version}; this "
                             f"version reads up to {FILE_FORMAT}): upgrade loglik_map to open it")
    if version < 1:
        raise LoglikMapError(f"{str(path)!r}: invalid storage format version {version}")


def verify_checksum(ds: xr.Dataset, path: Path, what: str = "the file") -> None:
    """Check the format version and the checksum of a stored dataset, then remove both attributes."""
    version = ds.attrs.get(FORMAT_ATTR)
    check_format_version(version, path)
    expected = ds.attrs.get(CHECKSUM_ATTR)
    if expected is None and version is not None:
        raise LoglikMapError(f"{str(path)!r} has lost its checksum: {what} was changed after it was saved; restore "
                             "it from a backup, or pass verify=False to read it unchecked")
    if expected is not None and dataset_checksum(ds) != str(expected):
        raise LoglikMapError(f"{str(path)!r} is corrupt: its values, labels or attributes no longer match the checksum "
                             f"saved with them, so {what} was damaged or changed after saving. Restore it from a "
                             "backup or save it again; pass verify=False to read it anyway (e.g. after editing it "
                             "on purpose)")
    ds.attrs.pop(FORMAT_ATTR, None)
    ds.attrs.pop(CHECKSUM_ATTR, None)  # absent: written before checksums were recorded


def to_nats(da: xr.DataArray, path: Path) -> xr.DataArray:
    """Return log-likelihoods in nats: ``units`` nats as is, bits converted (× ln 2); others refused."""
    units = da.attrs.get("units")
    if units is None:
        raise LoglikMapError(f"{str(path)!r} has no 'units' attribute, so its log-likelihoods could be in nats or bits; "
                             "open it with xarray, set ds.attrs['units'] to 'nats' or 'bits', and use "
                             "LogLikelihoodMatrix.from_dataarray")
    try:
        factor = loglik_units_factor(units)
    except LoglikMapError as err:
        raise LoglikMapError(f"{str(path)!r}: {err}") from None
    if factor == 1.0:
        return da
    out = da * factor
    out.attrs = {**da.attrs, "units": "nats", "units_converted_from": str(units)}
    return out


def matrix_from_dataset(ds: xr.Dataset, path: Path, verify: bool) -> LogLikelihoodMatrix:
    if "log_likelihood" not in ds:
        raise LoglikMapError(f"{str(path)!r} holds no 'log_likelihood' variable; it is not a matrix saved by loglik_map")
    if verify:
        verify_checksum(ds, path)
    else:
        check_format_version(ds.attrs.pop(FORMAT_ATTR, None), path)
        ds.attrs.pop(CHECKSUM_ATTR, None)
    da = ds["log_likelihood"]
    da.attrs = dict(ds.attrs)
    da = normalise_strings(da)
    if set(da.dims) != {MODEL_DIM, TEXT_DIM}:
        raise LoglikMapError(f"{str(path)!r}: log_likelihood has dims {da.dims}, expected ('model', 'text')")
    da = to_nats(da, path)
    try:
        return LogLikelihoodMatrix.from_dataarray(da)
    except LoglikMapError as err:
        raise LoglikMapError(f"{str(path)!r}: {err}") from None
