"""Saving and opening matrices: netCDF, Zarr and run stores, complete or absent, checksummed.

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
from os import PathLike
from pathlib import Path

from ..core._matrix import LogLikelihoodMatrix
from ..errors import LoglikMapError
from . import _storage
from ._backends import damaged_error, format_of, netcdf_engine, read_dataset, require_zarr, write_netcdf, write_zarr
from ._checksum import CHECKSUM_ATTR, dataset_checksum
from ._format import matrix_from_dataset, stamped_dataset
from ._lazy import open_lazy_zarr
from ._runstore import is_store, open_store, unfinished_store_error

__all__ = ["open_matrix", "save_matrix"]


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
        _storage.replace_aside(tmp, path)
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
        The matrix to save.
    path : path
        Ends in ``.nc`` or ``.zarr``. A hidden lock file ``.<name>.lock`` is beside it while the
        save runs.
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
    fmt = format_of(path)
    if fmt == "zarr":
        require_zarr()
    else:
        netcdf_engine()
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
                write_netcdf(ds, tmp)
            else:
                write_zarr(ds, tmp)
            back = read_dataset(tmp, fmt, ours=True)
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

def _open_with_recovery(path: Path, fmt: str, verify: bool) -> LogLikelihoodMatrix:
    """Read, check and validate ``path``, first finishing an interrupted save of it; a read that a
    concurrent save overlapped (its checksum fails, or the read fails) is retried once the save is done."""
    if not path.exists() and _storage.siblings(path, _storage.ASIDE):
        _storage.recover_waiting(path)
    if not path.exists():
        raise LoglikMapError(f"no such file or store: {str(path)!r}")

    def read() -> LogLikelihoodMatrix:
        try:
            return matrix_from_dataset(read_dataset(path, fmt), path, verify)
        except LoglikMapError:
            raise
        except Exception as err:
            raise damaged_error(path, err) from err

    return _storage.read_consistently(path, read)


def open_matrix(path: str | PathLike[str], *, verify: bool = True, chunks: int | dict[str, int] | None = None
                ) -> LogLikelihoodMatrix:
    """Open a matrix saved with :meth:`LogLikelihoodMatrix.save`, or the finished rows of a run store.

    A matrix file is ``.nc`` or ``.zarr``; a run store is what :func:`loglik_map.score_models`
    writes.

    The data are loaded into memory, checked and validated: the storage format version (a file
    from a newer loglik_map is refused), the checksum saved with the data (a changed or damaged
    file is refused, naming it), and the ``units`` attribute (bits are converted to nats, other
    units refused). An interrupted save of ``path`` is rolled back first. In a run store a damaged
    row is skipped with a :class:`~loglik_map.errors.DataIntegrityWarning` naming the model, and
    rescored by the next :func:`~loglik_map.score_models` run.

    Parameters
    ----------
    path : path
        A ``.nc`` file, a ``.zarr`` store or a run-store folder.
    verify : bool, default True
        Check the checksums. ``False`` reads data whose checksum no longer matches (e.g. a file
        you edited on purpose with another tool); save it again to give it a new checksum.
    chunks : int or dict, optional
        Open a ``.zarr`` store or a run store as a **dask-backed** matrix, never loaded whole
        (needs the ``parallel`` extra; :ref:`guide-large-maps`): an int is the number of models
        per chunk (all texts in each), a dict gives ``{"model": rows, "text": columns}`` (-1 for
        a whole axis). Checksums and validation then run block by block as the data stream past.

    Returns
    -------
    LogLikelihoodMatrix
        In nats.
    """
    path = Path(path)
    if is_store(path):
        return open_store(path, verify=verify, chunks=chunks)
    unfinished = unfinished_store_error(path)
    if unfinished is not None:
        raise unfinished
    fmt = format_of(path)
    if fmt == "zarr":
        require_zarr()
        if chunks is not None:
            return open_lazy_zarr(path, verify, chunks)
    elif chunks is not None:
        raise LoglikMapError(f"chunks= opens Zarr stores and run stores lazily; {str(path)!r} is netCDF. Open it "
                             "without chunks= and save it as .zarr once (matrix.save('name.zarr'))")
    return _open_with_recovery(path, fmt, verify)
