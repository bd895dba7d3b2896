"""Reading and writing log-likelihood matrices: netCDF, Zarr, and the shimo-lab/modelmap data."""

from __future__ import annotations

import pickle
import shutil
import warnings
from os import PathLike
from pathlib import Path

import numpy as np
import xarray as xr

from .errors import LoglikMapError
from .matrix import MODEL_DIM, TEXT_DIM, LogLikelihoodMatrix
from .textids import text_id
from .texts import read_jsonl_records

__all__ = ["open_matrix", "save_matrix", "read_modelmap"]

_FORMATS = {".nc": "netcdf", ".zarr": "zarr"}


def _format_of(path: Path) -> str:
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise LoglikMapError(f"unknown format for {str(path)!r}: use a path ending in .nc (netCDF) or .zarr (Zarr)")
    return fmt


def _netcdf_engine() -> str:
    for module, engine in (("h5netcdf", "h5netcdf"), ("netCDF4", "netcdf4")):
        try:
            __import__(module)
            return engine
        except ImportError:
            continue
    raise LoglikMapError("saving netCDF needs h5netcdf (with h5py) or netCDF4: pip install 'loglik_map[io]'")


def _require_zarr() -> None:
    try:
        import zarr  # noqa: F401
    except ImportError:
        raise LoglikMapError("Zarr storage needs zarr: pip install 'loglik_map[io]'") from None


def _to_dataset(matrix: LogLikelihoodMatrix) -> xr.Dataset:
    ds = matrix.data.to_dataset(name="log_likelihood", promote_attrs=True)
    ds["log_likelihood"].attrs = {}
    return ds


def save_matrix(matrix: LogLikelihoodMatrix, path: str | PathLike[str], *, overwrite: bool = False) -> None:
    """Write ``matrix`` to ``path`` (``.nc`` netCDF-4 or ``.zarr`` store), keeping every value, coordinate and attr.

    Parameters
    ----------
    matrix : LogLikelihoodMatrix
    path : path
        Ends in ``.nc`` or ``.zarr``.
    overwrite : bool, default False
        If False an existing file or store is an error, so no data is replaced by accident.
    """
    path = Path(path)
    fmt = _format_of(path)
    if path.exists():
        if not overwrite:
            raise LoglikMapError(f"{str(path)!r} exists; pass overwrite=True to replace it")
    ds = _to_dataset(matrix)
    tmp = path.with_name(path.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    # Write beside the target and rename, so an interrupted save never leaves a half file at `path`.
    if fmt == "netcdf":
        ds.to_netcdf(tmp, engine=_netcdf_engine())
    else:
        _require_zarr()
        ds.to_zarr(tmp, mode="w", consolidated=False)
    if path.exists():
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    tmp.rename(path)


def _normalise_strings(da: xr.DataArray) -> xr.DataArray:
    """Make every string coordinate an object array of ``str`` whatever the backend returned."""
    for name, coord in da.coords.items():
        if coord.dtype.kind in "USOT":
            values = np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in coord.values], dtype=object)
            da = da.assign_coords({name: (coord.dims, values, coord.attrs)})
    return da


def _open_zarr(path: Path) -> xr.Dataset:
    # Stores written here are not consolidated (Zarr v3 has no consolidated metadata in its
    # spec); stores written elsewhere may be. Try the fast path first, quietly.
    try:
        with xr.open_zarr(path, consolidated=True) as ds:
            return ds.load()
    except (KeyError, FileNotFoundError, ValueError):
        with xr.open_zarr(path, consolidated=False) as ds:
            return ds.load()


def open_matrix(path: str | PathLike[str]) -> LogLikelihoodMatrix:
    """Open a matrix saved with :meth:`LogLikelihoodMatrix.save` (``.nc`` or ``.zarr``), or the
    finished rows of a run store written by :func:`loglik_map.score_models`.

    The data are loaded into memory and validated.
    """
    path = Path(path)
    from .scoring.runs import is_store, open_store

    if is_store(path):
        return open_store(path)
    fmt = _format_of(path)
    if not path.exists():
        raise LoglikMapError(f"no such file or store: {str(path)!r}")
    if fmt == "netcdf":
        with xr.open_dataset(path, engine=_netcdf_engine()) as ds:
            ds = ds.load()
    else:
        _require_zarr()
        ds = _open_zarr(path)
    if "log_likelihood" not in ds:
        raise LoglikMapError(f"{str(path)!r} holds no 'log_likelihood' variable")
    da = ds["log_likelihood"]
    da.attrs = dict(ds.attrs)
    da = _normalise_strings(da)
    if set(da.dims) != {MODEL_DIM, TEXT_DIM}:
        raise LoglikMapError(f"{str(path)!r}: log_likelihood has dims {da.dims}, expected ('model', 'text')")
    return LogLikelihoodMatrix.from_dataarray(da)


def read_modelmap(pickle_path: str | PathLike[str], texts_path: str | PathLike[str]) -> LogLikelihoodMatrix:
    """Import shimo-lab/modelmap's published log-likelihoods; see :meth:`LogLikelihoodMatrix.from_modelmap`.

    **Unpickling runs arbitrary code: open only files you trust.**
    """
    texts_path = Path(texts_path)
    records = read_jsonl_records(texts_path)
    with open(pickle_path, "rb") as fh:
        data = pickle.load(fh)  # noqa: S301 - documented: trusted files only
    if not isinstance(data, dict) or not data:
        raise LoglikMapError(f"{pickle_path}: expected a non-empty dict {{model_name: vector}}, got {type(data).__name__}")
    n = len(records)
    rows = []
    for name, vec in data.items():
        arr = np.asarray(vec, dtype=np.float64).reshape(-1)
        if arr.shape != (n,):
            raise LoglikMapError(f"{pickle_path}: model {name!r} has {arr.size} values but {texts_path} has {n} texts")
        rows.append(arr)

    ids = [text_id(r["text"]) for r in records]
    counts: dict[str, int] = {}
    unique_ids = []
    for tid in ids:
        c = counts.get(tid, 0)
        counts[tid] = c + 1
        unique_ids.append(tid if c == 0 else f"{tid}#{c}")
    n_dup = sum(c - 1 for c in counts.values())
    if n_dup:
        warnings.warn(f"{texts_path}: {n_dup} texts repeat an earlier text; their ids get a '#k' suffix", stacklevel=3)
    text_coords: dict[str, object] = {
        "domain": np.array([str(r.get("pile_set_name", "")) for r in records], dtype=object),
        "position": np.arange(n),
    }
    for key in ("pile_idx", "chunk_idx"):
        if all(isinstance(r.get(key), (int, np.integer)) for r in records):
            text_coords[key] = np.array([r[key] for r in records], dtype=np.int64)
    return LogLikelihoodMatrix(
        np.vstack(rows),
        models=[str(k) for k in data],
        texts=unique_ids,
        n_bytes=[len(r["text"].encode("utf-8")) for r in records],
        text_coords=text_coords,
        attrs={
            "source": "shimo-lab/modelmap",
            "source_files": [Path(pickle_path).name, texts_path.name],
            "convention": "reference",
        },
    )
