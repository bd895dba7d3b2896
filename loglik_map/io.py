"""Reading and writing log-likelihood matrices: netCDF, Zarr, and the shimo-lab/modelmap data.

Saves never lose data and never report success for data that are not on disk: each writer works
under its own temporary name beside the destination (created exclusively), the result is flushed
to disk and read back against its checksum before it is renamed into place, and a Zarr store
being replaced is renamed aside first and deleted only once the new one is in (an interrupted
replacement is rolled back by the next save or open). Concurrent savers of one path: exactly one
wins, the others get a :class:`~loglik_map.LoglikMapError`. Every saved matrix carries its format
version and a SHA-256 checksum of its values and coordinates, both checked on open.
"""

from __future__ import annotations

import os
import pickle
import shutil
import warnings
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from . import _storage
from ._checksum import CHECKSUM_ATTR, FILE_FORMAT, FORMAT_ATTR, dataset_checksum
from .errors import LoglikMapError
from .matrix import MODEL_DIM, TEXT_DIM, LogLikelihoodMatrix
from .textids import text_id
from .texts import read_jsonl_records
from .units import LN2

__all__ = ["open_matrix", "save_matrix", "read_modelmap", "convert_modelmap_pickle"]

_FORMATS = {".nc": "netcdf", ".zarr": "zarr"}
#: How long an open waits for a save in progress to finish before giving up (seconds).
_READER_WAIT = 120.0


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


def stamped_dataset(matrix: LogLikelihoodMatrix, **attrs: Any) -> xr.Dataset:
    """The dataset a matrix is stored as, with ``attrs`` added and the format version and checksum set."""
    ds = _to_dataset(matrix)
    ds.attrs.update(attrs)
    ds.attrs[FORMAT_ATTR] = FILE_FORMAT
    ds.attrs[CHECKSUM_ATTR] = dataset_checksum(ds)
    return ds


# ---------------------------------------------------------------------- writing
def _write_netcdf(ds: xr.Dataset, tmp: Path) -> None:
    engine = _netcdf_engine()
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
    ds.to_netcdf(tmp, engine=engine)  # pragma: no cover
    _storage.fsync_tree(tmp)  # pragma: no cover


def write_zarr(ds: xr.Dataset, tmp: Path) -> None:
    """Write ``ds`` to a new Zarr store ``tmp`` (which must not exist) and flush it to disk."""
    ds.to_zarr(tmp, mode="w-", consolidated=False)
    _storage.fsync_tree(tmp)


def _read_dataset(path: Path, fmt: str, *, ours: bool = False) -> xr.Dataset:
    """Load a dataset; ``ours``: written by this library (Zarr not consolidated)."""
    if fmt == "netcdf":
        with xr.open_dataset(path, engine=_netcdf_engine()) as ds:
            return ds.load()
    if ours:
        with xr.open_zarr(path, consolidated=False) as ds:
            return ds.load()
    return _open_zarr(path)


def _commit(tmp: Path, path: Path, fmt: str, overwrite: bool) -> None:
    """Move the finished temporary ``tmp`` to ``path``; old data stay readable at every instant."""
    if fmt == "netcdf":
        if overwrite:
            os.replace(tmp, path)  # atomic
        else:
            try:
                os.link(tmp, path)  # atomic and exclusive: fails if anything created `path` meanwhile
            except FileExistsError:
                raise LoglikMapError(f"{str(path)!r} was created by another program while saving; pass "
                                     "overwrite=True to replace it") from None
            except OSError:  # no hard links on this file system: the lock keeps loglik_map writers out
                if path.exists():
                    raise LoglikMapError(f"{str(path)!r} exists; pass overwrite=True to replace it") from None
                os.rename(tmp, path)
            else:
                tmp.unlink()
    elif path.exists() or path.is_symlink():
        aside = _storage.temp_sibling(path, _storage.ASIDE)
        os.rename(path, aside)
        try:
            os.rename(tmp, path)
        except BaseException:
            os.rename(aside, path)
            raise
        _storage.fsync_dir(path.parent)
        _storage.remove_path(aside)
    else:
        try:
            os.rename(tmp, path)  # fails if a non-empty store appeared meanwhile
        except OSError:
            if path.exists():
                raise LoglikMapError(f"{str(path)!r} was created by another program while saving; pass "
                                     "overwrite=True to replace it") from None
            raise
    _storage.fsync_dir(path.parent)


def save_matrix(matrix: LogLikelihoodMatrix, path: str | PathLike[str], *, overwrite: bool = False) -> None:
    """Write ``matrix`` to ``path`` (``.nc`` netCDF-4 or ``.zarr`` store), keeping every value, coordinate and attr.

    The data are written under a temporary name beside ``path``, flushed to disk, read back and
    checked against their SHA-256 checksum, and only then renamed to ``path``; the checksum and
    the storage format version are saved with the data and verified by :func:`open_matrix`.
    A killed save leaves the previous contents of ``path`` (or nothing) — never a mixture.

    Parameters
    ----------
    matrix : LogLikelihoodMatrix
    path : path
        Ends in ``.nc`` or ``.zarr``. A hidden lock file ``.<name>.lock`` is kept beside it.
    overwrite : bool, default False
        If False an existing file or store is an error, so no data is replaced by accident.

    Raises
    ------
    LoglikMapError
        ``path`` exists (and ``overwrite`` is False); another process is saving to ``path`` at the
        same time (one of several concurrent savers wins, the others get this error); or the
        write failed (full disk, no permission, …) — then nothing was replaced.
    """
    path = Path(path)
    fmt = _format_of(path)
    if fmt == "zarr":
        _require_zarr()
    else:
        _netcdf_engine()
    if not path.parent.is_dir():
        raise LoglikMapError(f"cannot save to {str(path)!r}: the folder {str(path.parent)!r} does not exist; create it first")
    ds = stamped_dataset(matrix)
    lock = _storage.lock_file(path)
    _storage.acquire(lock, 0, f"another process is saving to {str(path)!r} right now; wait until it has finished "
                              "and save again (with overwrite=True to replace what it saved)")
    try:
        _storage.recover(path)
        if (path.exists() or path.is_symlink()) and not overwrite:
            raise LoglikMapError(f"{str(path)!r} exists; pass overwrite=True to replace it")
        tmp = _storage.temp_sibling(path, _storage.PARTIAL)
        try:
            if fmt == "netcdf":
                _write_netcdf(ds, tmp)
            else:
                write_zarr(ds, tmp)
            back = _read_dataset(tmp, fmt, ours=True)
            if dataset_checksum(back) != ds.attrs[CHECKSUM_ATTR]:
                raise LoglikMapError(f"saving {str(path)!r}: the data read back from disk differ from the data "
                                     "written (faulty disk or file system?); nothing was replaced")
            _commit(tmp, path, fmt, overwrite)
        except BaseException as err:
            (_storage.remove_settled if fmt == "zarr" else _storage.remove_path)(tmp)
            if isinstance(err, OSError):
                raise _storage.storage_error(err, path, "save", nothing_replaced=True) from err
            if isinstance(err, Exception) and not isinstance(err, LoglikMapError):
                raise LoglikMapError(f"could not save {str(path)!r} ({type(err).__name__}: {err}); nothing was "
                                     "replaced. Check that every label, coordinate and attribute is valid text "
                                     "(no NUL characters or lone surrogates) or a number") from err
            raise
    finally:
        lock.release()


# ---------------------------------------------------------------------- reading
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


def damaged_error(path: Path, err: BaseException, what: str = "the file") -> LoglikMapError:
    """The error for a file a backend could not read: names it and says what to do."""
    return LoglikMapError(
        f"cannot read {str(path)!r} ({type(err).__name__}: {err}): {what} is damaged (e.g. truncated or changed "
        "by another program) or was not written by loglik_map; restore it from a backup or save/score it again"
    )


def _read_with_recovery(path: Path, fmt: str) -> xr.Dataset:
    """Read ``path``, first finishing an interrupted save of it, and retrying once if a concurrent
    save replaced it during the read."""

    def recover() -> None:
        lock = _storage.lock_file(path)
        _storage.acquire(lock, _READER_WAIT, f"{str(path)!r} is being saved by another process; try again when "
                                             "it has finished")
        try:
            _storage.recover(path)
        finally:
            lock.release()

    if not path.exists() and _storage.siblings(path, _storage.ASIDE):
        recover()
    if not path.exists():
        raise LoglikMapError(f"no such file or store: {str(path)!r}")
    try:
        return _read_dataset(path, fmt)
    except Exception as err:  # noqa: BLE001 - every backend error is reported with the file's name
        first = err
    if not path.exists() or _storage.siblings(path, _storage.ASIDE) or _storage.siblings(path, _storage.PARTIAL):
        recover()  # a save was replacing it while we read
        try:
            return _read_dataset(path, fmt)
        except Exception as err:  # noqa: BLE001
            first = err
    raise damaged_error(path, first) from first


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


_NATS = {"nats", "nat", "nats per text"}
_BITS = {"bits", "bit", "bits per text"}


def to_nats(da: xr.DataArray, path: Path) -> xr.DataArray:
    """Return log-likelihoods in nats: ``units`` nats as is, bits converted (× ln 2); others refused."""
    units = da.attrs.get("units")
    if units is None:
        raise LoglikMapError(f"{str(path)!r} has no 'units' attribute, so its log-likelihoods could be in nats or bits; "
                             "open it with xarray, set ds.attrs['units'] to 'nats' or 'bits', and use "
                             "LogLikelihoodMatrix.from_dataarray")
    key = str(units).strip().lower()
    if key in _NATS:
        return da
    if key in _BITS:
        out = da * LN2
        out.attrs = {**da.attrs, "units": "nats", "units_converted_from": str(units)}
        return out
    raise LoglikMapError(f"{str(path)!r} holds log-likelihoods in units {units!r}; loglik_map reads 'nats' or "
                         "'bits' (per text). Convert the values to nats per text and set units='nats'")


def _matrix_from_dataset(ds: xr.Dataset, path: Path, verify: bool) -> LogLikelihoodMatrix:
    if "log_likelihood" not in ds:
        raise LoglikMapError(f"{str(path)!r} holds no 'log_likelihood' variable; it is not a matrix saved by loglik_map")
    if verify:
        verify_checksum(ds, path)
    else:
        check_format_version(ds.attrs.pop(FORMAT_ATTR, None), path)
        ds.attrs.pop(CHECKSUM_ATTR, None)
    da = ds["log_likelihood"]
    da.attrs = dict(ds.attrs)
    da = _normalise_strings(da)
    if set(da.dims) != {MODEL_DIM, TEXT_DIM}:
        raise LoglikMapError(f"{str(path)!r}: log_likelihood has dims {da.dims}, expected ('model', 'text')")
    da = to_nats(da, path)
    try:
        return LogLikelihoodMatrix.from_dataarray(da)
    except LoglikMapError as err:
        raise LoglikMapError(f"{str(path)!r}: {err}") from None


def open_matrix(path: str | PathLike[str], *, verify: bool = True) -> LogLikelihoodMatrix:
    """Open a matrix saved with :meth:`LogLikelihoodMatrix.save` (``.nc`` or ``.zarr``), or the
    finished rows of a run store written by :func:`loglik_map.score_models`.

    The data are loaded into memory, checked and validated: the storage format version (a file
    from a newer loglik_map is refused), the checksum saved with the data (a changed or damaged
    file is refused, naming it), and the ``units`` attribute (bits are converted to nats, other
    units refused). An interrupted save of ``path`` is rolled back first. In a run store a damaged
    row is skipped with a :class:`~loglik_map.DataIntegrityWarning` naming the model, and
    rescored by the next :func:`~loglik_map.score_models` run.

    Parameters
    ----------
    path : path
        A ``.nc`` file, a ``.zarr`` store or a run-store folder.
    verify : bool, default True
        Check the checksums. ``False`` reads data whose checksum no longer matches (e.g. a file
        you edited on purpose with another tool); save it again to give it a new checksum.

    Returns
    -------
    LogLikelihoodMatrix
        In nats.
    """
    path = Path(path)
    from .scoring.store import is_store, open_store, unfinished_store_error

    if is_store(path):
        return open_store(path, verify=verify)
    unfinished = unfinished_store_error(path)
    if unfinished is not None:
        raise unfinished
    fmt = _format_of(path)
    if fmt == "zarr":
        _require_zarr()
    ds = _read_with_recovery(path, fmt)
    return _matrix_from_dataset(ds, path, verify)


# ---------------------------------------------------------------------- shimo-lab/modelmap data
_SAFE_MODELMAP_SUFFIXES = (".npz", ".csv")


def _pickle_refusal(path: Path) -> LoglikMapError:
    return LoglikMapError(
        f"{str(path)!r} is read as a pickle, and unpickling runs whatever code the file contains, so loglik_map does "
        "not unpickle files unless asked: pass trust_pickle=True only for a file you trust (e.g. the authors' "
        "log-likelihood_1018.pkl that you downloaded yourself). Better, convert it once, e.g. in a throwaway "
        "environment: loglik_map.io.convert_modelmap_pickle(pkl, 'modelmap.npz', trust_pickle=True), and read the "
        ".npz from then on (no code runs when it is read)"
    )


def _load_pickle(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = pickle.load(fh)  # noqa: S301 - only with trust_pickle=True
    except OSError as err:
        raise LoglikMapError(f"cannot read {str(path)!r}: {err}") from None
    except Exception as err:  # noqa: BLE001 - any unpickling error
        raise damaged_error(path, err) from err
    if not isinstance(data, dict) or not data:
        raise LoglikMapError(f"{path}: expected a non-empty dict {{model_name: vector}}, got {type(data).__name__}")
    return {str(k): v for k, v in data.items()}


def _load_npz(path: Path) -> dict[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            if {"models", "log_likelihood"} <= files:
                names = [str(n) for n in np.asarray(z["models"]).reshape(-1)]
                values = np.asarray(z["log_likelihood"], dtype=np.float64)
                if values.ndim != 2 or values.shape[0] != len(names):
                    raise LoglikMapError(f"{path}: 'log_likelihood' must be (models × texts) with one row per entry of "
                                         f"'models' ({len(names)}), got shape {values.shape}")
                return dict(zip(names, values))
            return {name: z[name] for name in z.files}
    except LoglikMapError:
        raise
    except OSError as err:
        raise LoglikMapError(f"cannot read {str(path)!r}: {err}") from None
    except Exception as err:  # noqa: BLE001 - zip/npy errors, object arrays refused without pickle
        raise damaged_error(path, err) from err


def _load_csv(path: Path) -> dict[str, Any]:
    import pandas as pd

    try:
        df = pd.read_csv(path, index_col=0, dtype={0: str})
        values = df.to_numpy(dtype=np.float64)
    except OSError as err:
        raise LoglikMapError(f"cannot read {str(path)!r}: {err}") from None
    except Exception as err:  # noqa: BLE001 - parser errors, non-numeric cells
        raise LoglikMapError(f"cannot read {str(path)!r} as CSV with one row per model (model name, then one "
                             f"log-likelihood per text): {type(err).__name__}: {err}") from err
    return {str(name): row for name, row in zip(df.index, values)}


def _modelmap_vectors(path: Path, trust_pickle: bool) -> dict[str, Any]:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path)
    if suffix == ".csv":
        return _load_csv(path)
    if not trust_pickle:
        raise _pickle_refusal(path)
    return _load_pickle(path)


def convert_modelmap_pickle(pickle_path: str | PathLike[str], npz_path: str | PathLike[str], *,
                            trust_pickle: bool = False) -> None:
    """Convert shimo-lab/modelmap's pickled log-likelihoods once to a ``.npz`` that is safe to read.

    The ``.npz`` holds ``models`` (K names) and ``log_likelihood`` (K × N, nats) and is read
    without unpickling by :meth:`LogLikelihoodMatrix.from_modelmap`. Run this once, ideally in a
    throwaway environment, since the pickle can run code when it is loaded.

    Parameters
    ----------
    pickle_path : path
        ``log-likelihood_1018.pkl``: a pickled dict ``{model_name: vector of N log-likelihoods}``.
    npz_path : path
        Where to write the ``.npz`` (must not exist).
    trust_pickle : bool
        Must be True: you state that you trust the pickle.
    """
    pickle_path, npz_path = Path(pickle_path), Path(npz_path)
    if not trust_pickle:
        raise _pickle_refusal(pickle_path)
    if npz_path.suffix.lower() != ".npz":
        raise LoglikMapError(f"write the converted data to a path ending in .npz, not {str(npz_path)!r}")
    if npz_path.exists():
        raise LoglikMapError(f"{str(npz_path)!r} exists; remove it or choose another name")
    data = _load_pickle(pickle_path)
    names = list(data)
    try:
        values = np.vstack([np.asarray(data[n], dtype=np.float64).reshape(-1) for n in names])
    except ValueError as err:
        raise LoglikMapError(f"{pickle_path}: the vectors differ in length or are not numeric ({err})") from None
    tmp = _storage.temp_sibling(npz_path, _storage.PARTIAL)
    try:
        with open(tmp, "xb") as fh:
            np.savez(fh, models=np.array(names, dtype=str), log_likelihood=values)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, npz_path)
    except FileExistsError:
        raise LoglikMapError(f"{str(npz_path)!r} exists; remove it or choose another name") from None
    except OSError as err:
        raise _storage.storage_error(err, npz_path, "write") from err
    finally:
        _storage.remove_path(tmp)


def read_modelmap(loglik_path: str | PathLike[str], texts_path: str | PathLike[str], *,
                  trust_pickle: bool = False) -> LogLikelihoodMatrix:
    """Import shimo-lab/modelmap's published log-likelihoods; see :meth:`LogLikelihoodMatrix.from_modelmap`."""
    loglik_path, texts_path = Path(loglik_path), Path(texts_path)
    if loglik_path.suffix.lower() not in _SAFE_MODELMAP_SUFFIXES and not trust_pickle:
        raise _pickle_refusal(loglik_path)  # before reading anything
    records = read_jsonl_records(texts_path)
    data = _modelmap_vectors(loglik_path, trust_pickle)
    if not data:
        raise LoglikMapError(f"{loglik_path}: no models in the file")
    n = len(records)
    rows = []
    for name, vec in data.items():
        try:
            arr = np.asarray(vec, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise LoglikMapError(f"{loglik_path}: model {name!r} has non-numeric log-likelihoods") from None
        if arr.shape != (n,):
            raise LoglikMapError(f"{loglik_path}: model {name!r} has {arr.size} values but {texts_path} has {n} texts")
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
        models=list(data),
        texts=unique_ids,
        n_bytes=[len(r["text"].encode("utf-8")) for r in records],
        text_coords=text_coords,
        attrs={
            "source": "shimo-lab/modelmap",
            "source_files": [loglik_path.name, texts_path.name],
            "convention": "reference",
        },
    )
