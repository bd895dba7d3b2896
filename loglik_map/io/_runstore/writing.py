"""Writing a run store: set-up, claims, finished rows, damaged rows moved aside (not public API)."""

from __future__ import annotations

import os
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import xarray as xr
from filelock import FileLock, Timeout

from ..._util import write_json_atomic
from ...core._groups import ordered_unique
from ...core._matrix import LogLikelihoodMatrix
from ...errors import DataIntegrityWarning, LoglikMapError
from ...texts import TextSet
from .. import _storage
from .._backends import read_dataset, require_zarr, write_zarr
from .._checksum import CHECKSUM_ATTR, dataset_checksum
from .._format import stamped_dataset
from .layout import (
    INIT_NAMES,
    MANIFEST,
    STORE_FORMAT,
    DamagedManifest,
    failure_path,
    fingerprint_ids,
    is_store,
    load_row,
    locked,
    read_manifest,
    row_dirs,
    row_key,
    row_path,
)

__all__ = ["claim", "init_store", "remove_stale_partials", "row_is_finished", "write_result"]


def _quarantine(store: Path, row: Path) -> Path:
    dest_dir = store / "corrupt"
    dest_dir.mkdir(exist_ok=True)
    dest = dest_dir / f"{row.stem}.{uuid.uuid4().hex[:12]}.zarr"
    os.rename(row, dest)
    return dest


def _checked_row(store: Path, row: Path) -> tuple[LogLikelihoodMatrix | None, str]:
    """The row's matrix, or None and its problem: damaged, or scored on texts other than the store's."""
    matrix, _, problem = load_row(row, verify=True)
    if matrix is None:
        return None, problem
    try:
        expected = read_manifest(store)["texts_fingerprint"]
    except LoglikMapError:
        return matrix, ""
    if fingerprint_ids(matrix.texts) != expected:
        return None, f"scored on another set of texts ({matrix.n_texts} texts), e.g. copied from another store"
    return matrix, ""


def row_is_finished(store: Path, label: str) -> bool:
    """True if the rows of ``label`` are in the store, intact and of the store's texts. Other rows
    are moved to ``corrupt/`` (with a warning) so that the model is scored again."""
    row = row_path(store, label)
    if not row.is_dir():
        return False
    matrix, problem = _checked_row(store, row)
    if matrix is not None:
        return True
    with locked(store):
        if not row.is_dir():  # another run moved it aside meanwhile
            return False
        matrix, problem = _checked_row(store, row)
        if matrix is not None:  # another run rescored it meanwhile
            return True
        dest = _quarantine(store, row)
    warnings.warn(f"run store {str(store)!r}: the rows of model {label!r} were damaged ({problem}); moved to "
                  f"{str(dest)!r} and scored again", DataIntegrityWarning, stacklevel=3)
    return False


@contextmanager
def claim(store: Path, label: str) -> Iterator[bool]:
    """Hold the right to score ``label``: yields True if this process holds it, False if another
    live process does (two workers or two runs never score one model at the same time).

    The claim is an OS lock on ``claims/<key>.lock``, released when its holder exits or dies, so
    a killed worker's models are free again at once. The lock files stay (removing a lock file
    another process may be opening would let two processes hold "the same" lock).
    """
    folder = store / "claims"
    folder.mkdir(exist_ok=True)
    lock = FileLock(folder / f"{row_key(label)}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


def _partial_lock(partial: Path) -> FileLock:
    return FileLock(partial.with_name(partial.name + ".lock"))


def write_result(store: Path, label: str, matrix: LogLikelihoodMatrix) -> None:
    """Write a finished model's rows: to a temporary beside the final place (under its own lock,
    so cleaners leave it alone), flushed and checked, then renamed in atomically."""
    final = row_path(store, label)
    ds = stamped_dataset(matrix, run_label=label)
    tmp = _storage.temp_sibling(final, _storage.PARTIAL)
    lock = _partial_lock(tmp)
    lock.acquire(timeout=0)  # a fresh name: never held by anyone else
    try:
        write_zarr(ds, tmp)
        if dataset_checksum(read_dataset(tmp, "zarr", ours=True)) != ds.attrs[CHECKSUM_ATTR]:
            raise LoglikMapError(f"writing the rows of {label!r} to {str(store)!r}: the data read back from disk differ "
                                 "from the data written (faulty disk or file system?)")
        try:
            os.rename(tmp, final)  # atomic: the rows are complete or absent
        except OSError:
            if not final.is_dir():
                raise
            # another worker finished the same model first; its rows stand
        _storage.fsync_dir(final.parent)
    except OSError as err:
        _storage.remove_settled(tmp)
        raise _storage.storage_error(err, final, "write") from err
    finally:
        _storage.remove_path(tmp)
        lock.release()
        Path(lock.lock_file).unlink(missing_ok=True)
    failure_path(store, label).unlink(missing_ok=True)


def remove_stale_partials(store: Path) -> None:
    """Delete the temporaries of writers that died (a live writer holds its temporary's lock)."""
    models = store / "models"
    if not models.is_dir():
        return
    for entry in list(models.iterdir()):
        if not entry.name.startswith("."):
            continue
        if entry.name.endswith(".partial"):
            partial, lock = entry, _partial_lock(entry)
        elif entry.name.endswith(".partial.lock"):
            partial, lock = entry.with_name(entry.name[: -len(".lock")]), FileLock(entry)
        else:
            continue
        try:
            lock.acquire(timeout=0)
        except Timeout:
            continue  # its writer is alive
        try:
            _storage.remove_path(partial)
        finally:
            lock.release()
            Path(lock.lock_file).unlink(missing_ok=True)


# ---------------------------------------------------------------------- initialisation
def _texts_dataset(texts: TextSet) -> xr.Dataset:
    return xr.Dataset(coords={"text": ("text", texts.ids), "n_bytes": ("text", texts.n_bytes),
                              **{k: ("text", v) for k, v in texts.text_coords().items()}})


def _fingerprint_of(path: Path) -> str | None:
    try:
        with xr.open_zarr(path, consolidated=False, chunks=None) as ds:  # no dask: see load_zarr
            return fingerprint_ids([str(t) for t in ds["text"].values])
    except Exception:
        return None


def _fingerprint_on_disk(store: Path) -> str | None:
    """The text-set fingerprint recorded by the store's files (texts.zarr, else any readable row)."""
    for path in [store / "texts.zarr", *row_dirs(store)]:
        fingerprint = _fingerprint_of(path)
        if fingerprint is not None:
            return fingerprint
    return None


def _different_texts(store: Path, n_texts: Any) -> LoglikMapError:
    return LoglikMapError(f"{str(store)!r} was started with a different text set ({n_texts} texts); use a new store "
                          "for new texts")


def _row_labels(store: Path) -> list[str]:
    labels = []
    for row in row_dirs(store):
        try:
            with xr.open_zarr(row, consolidated=False, chunks=None) as ds:
                label = ds.attrs.get("run_label")
        except Exception:
            continue
        if isinstance(label, str):
            labels.append(label)
    return labels


def init_store(store: Path, texts: TextSet, labels: Sequence[str]) -> None:
    """Create the store, complete one whose set-up was interrupted, or check an existing one
    against ``texts`` and add ``labels`` to its model order — all under the store's lock."""
    require_zarr()  # rows and texts are Zarr: say which extra is missing before anything is written
    if store.exists() and not store.is_dir():
        raise LoglikMapError(f"{str(store)!r} is a file; a run store is a folder: choose another path")
    if store.is_dir() and not is_store(store):
        foreign = [p.name for p in store.iterdir() if p.name not in INIT_NAMES and not p.name.startswith(".")]
        if foreign:
            raise LoglikMapError(f"{str(store)!r} exists and is not a loglik_map run store (it holds {foreign[:3]}); "
                                 "choose a new folder")
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _storage.storage_error(err, store, "create the run store") from err
    fingerprint = fingerprint_ids(texts.ids)
    try:
        with locked(store):
            _initlocked(store, texts, labels, fingerprint)
    except OSError as err:
        raise _storage.storage_error(err, store, "set up the run store") from err


def _initlocked(store: Path, texts: TextSet, labels: Sequence[str], fingerprint: str) -> None:
    """The set-up of :func:`init_store`, with the store's lock held."""
    manifest = None
    if is_store(store):
        try:
            manifest = read_manifest(store)
        except DamagedManifest as err:
            warnings.warn(f"{err}; rebuilt from the store's files", DataIntegrityWarning, stacklevel=3)
    if manifest is not None:
        if manifest["texts_fingerprint"] != fingerprint:
            raise _different_texts(store, manifest.get("n_texts"))
        order = list(manifest["models"])
        order += [lab for lab in labels if lab not in order]
        if order != manifest["models"]:
            manifest["models"] = order
            write_json_atomic(store / MANIFEST, manifest)
        return
    # new, half-initialised (killed during set-up) or with a damaged manifest: (re)build it
    on_disk = _fingerprint_on_disk(store)
    if on_disk is not None and on_disk != fingerprint:
        raise _different_texts(store, "another set of")
    for leftover in store.iterdir():
        if leftover.name.startswith((".texts.", f".{MANIFEST}.")):
            _storage.remove_path(leftover)  # temporaries of a set-up that was killed
    if _fingerprint_of(store / "texts.zarr") != fingerprint:
        _storage.remove_path(store / "texts.zarr")
        tmp = store / f".texts.{os.urandom(16).hex()}.zarr"
        write_zarr(_texts_dataset(texts), tmp)
        os.replace(tmp, store / "texts.zarr")
    (store / "models").mkdir(exist_ok=True)
    (store / "failures").mkdir(exist_ok=True)
    manifest = {"format": STORE_FORMAT, "texts_fingerprint": fingerprint, "n_texts": len(texts),
                "models": ordered_unique([*_row_labels(store), *labels])}
    write_json_atomic(store / MANIFEST, manifest)  # last: its presence marks a complete set-up
    _storage.fsync_dir(store)

