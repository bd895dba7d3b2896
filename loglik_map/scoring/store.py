"""The run store on disk: layout, manifest, locking and integrity (used by :func:`~loglik_map.score_models`).

A *run store* is a directory::

    store/
      loglik_map_store.json      manifest: format version, text-set fingerprint, model order
      loglik_map_store.lock      lock file (an OS lock, released when its holder dies)
      texts.zarr                 text ids, byte lengths, domains
      models/<key>.zarr          one finished model's rows, with a checksum (written elsewhere, renamed in)
      failures/<key>.json        the error of a model that failed (removed when it later succeeds)
      corrupt/<key>.<id>.zarr    damaged rows moved aside (kept for inspection; the model is rescored)
      claims/<key>.lock          held (an OS lock) by the process scoring that model: no model is
                                 scored by two workers or two runs at once

A model's rows appear by an atomic rename, so they are complete or absent, and they are found
from their own files: the manifest only orders them, so a row can never be lost from it. The
manifest and the initialisation are changed only under the store's lock; a store whose
initialisation was killed is completed by the next run. Every row carries the storage format
version and a SHA-256 checksum of its values and coordinates; a row that fails the check is
skipped with a warning when the store is opened and moved aside and rescored by the next run.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import Any

import xarray as xr
from filelock import FileLock, Timeout

from .. import _storage
from .._util import write_json_atomic
from ..errors import DataIntegrityWarning, LoglikMapError
from ..matrix import LogLikelihoodMatrix
from ..texts import TextSet

__all__ = ["is_store", "open_store", "store_failures", "unfinished_store_error", "init_store", "write_result",
           "row_is_finished", "remove_stale_partials", "row_key", "row_path", "failure_path", "claim"]

MANIFEST = "loglik_map_store.json"
LOCK = "loglik_map_store.lock"
#: Run-store format this version writes and the newest it reads.
STORE_FORMAT = 1
#: Seconds to wait for the store lock (held for milliseconds at a time: manifest updates,
#: initialisation, moving a damaged row aside).
LOCK_WAIT = 300.0
_INIT_NAMES = {LOCK, "texts.zarr", "models", "failures", "corrupt", "claims"}


# ---------------------------------------------------------------------- names
def row_key(label: str) -> str:
    """File-name key of a model label (safe characters plus a hash of the label)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", label)[:80]
    return f"{safe}-{hashlib.sha1(label.encode('utf-8')).hexdigest()[:10]}"


def row_path(store: Path, label: str) -> Path:
    """Where the finished rows of ``label`` live."""
    return store / "models" / f"{row_key(label)}.zarr"


def failure_path(store: Path, label: str) -> Path:
    """Where the failure record of ``label`` lives."""
    return store / "failures" / f"{row_key(label)}.json"


def fingerprint_ids(ids: Sequence[str]) -> str:
    """Fingerprint of an ordered set of text ids (the store is bound to it)."""
    h = hashlib.sha256()
    for tid in ids:
        h.update(str(tid).encode("ascii"))
    return h.hexdigest()[:32]


# ---------------------------------------------------------------------- lock and manifest
@contextmanager
def _locked(store: Path) -> Iterator[None]:
    lock = FileLock(store / LOCK)
    _storage.acquire(lock, LOCK_WAIT, f"run store {str(store)!r} stayed locked for {LOCK_WAIT:.0f} s by another process "
                                      f"(its lock file {LOCK}); wait for that process or stop it, then rerun")
    try:
        yield
    finally:
        lock.release()


def is_store(path: str | PathLike[str]) -> bool:
    """True if ``path`` is a run store."""
    return (Path(path) / MANIFEST).is_file()


def _looks_unfinished(path: Path) -> bool:
    if not path.is_dir() or is_store(path):
        return False
    names = [p.name for p in path.iterdir()]
    ours = [n for n in names if n in _INIT_NAMES or n.startswith(".texts.")]
    return bool(ours) and all(n in _INIT_NAMES or n.startswith(".") for n in names)


def unfinished_store_error(path: str | PathLike[str]) -> LoglikMapError | None:
    """The error for a run store whose initialisation was interrupted, or None if ``path`` is not one."""
    path = Path(path)
    if _looks_unfinished(path):
        return LoglikMapError(f"{str(path)!r} is a run store whose set-up was interrupted (it has no {MANIFEST} yet) "
                              "and holds no results; rerun score_models (or loglik-map score) on it with the same "
                              "texts to complete it")
    return None


class _DamagedManifest(LoglikMapError):
    pass


def _read_manifest(store: Path) -> dict[str, Any]:
    path = store / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise LoglikMapError(f"cannot read {str(path)!r}: {err}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _DamagedManifest(f"the run-store manifest {str(path)!r} is damaged ({err})") from None
    if not isinstance(manifest, dict):
        raise _DamagedManifest(f"the run-store manifest {str(path)!r} is damaged (not a JSON object)")
    fmt = manifest.get("format")
    if isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > STORE_FORMAT:
        raise LoglikMapError(f"run store {str(store)!r} was written by a newer loglik_map (store format {fmt}; this "
                             f"version reads up to {STORE_FORMAT}): upgrade loglik_map to use it")
    ok = (isinstance(fmt, int) and not isinstance(fmt, bool) and fmt >= 1
          and isinstance(manifest.get("texts_fingerprint"), str)
          and isinstance(manifest.get("models"), list) and all(isinstance(m, str) for m in manifest["models"]))
    if not ok:
        raise _DamagedManifest(f"the run-store manifest {str(path)!r} is damaged (missing or invalid 'format', "
                               "'texts_fingerprint' or 'models')")
    return manifest


# ---------------------------------------------------------------------- rows
def _row_dirs(store: Path) -> list[Path]:
    models = store / "models"
    if not models.is_dir():
        return []
    return sorted(p for p in models.iterdir() if p.suffix == ".zarr" and not p.name.startswith("."))


def _load_row(path: Path, verify: bool) -> tuple[LogLikelihoodMatrix | None, str | None, str]:
    """(matrix, label, problem): the row's matrix and run label, or None and what is wrong with it."""
    from ..io import _normalise_strings, check_format_version, to_nats, verify_checksum
    from .._checksum import CHECKSUM_ATTR, FORMAT_ATTR

    try:
        with xr.open_zarr(path, consolidated=False) as ds:
            ds = ds.load()
    except Exception as err:  # noqa: BLE001 - any backend error means the row cannot be read
        return None, None, f"{type(err).__name__}: {err}"
    label = ds.attrs.get("run_label")
    check_format_version(ds.attrs.get(FORMAT_ATTR), path)  # a newer format is refused, not skipped
    try:
        if "log_likelihood" not in ds:
            raise LoglikMapError("no 'log_likelihood' variable")
        if verify:
            verify_checksum(ds, path, what="the row")
        else:
            ds.attrs.pop(FORMAT_ATTR, None)
            ds.attrs.pop(CHECKSUM_ATTR, None)
        ds.attrs.pop("run_label", None)
        da = ds["log_likelihood"]
        da.attrs = dict(ds.attrs)
        return LogLikelihoodMatrix.from_dataarray(to_nats(_normalise_strings(da), path)), label, ""
    except LoglikMapError as err:
        return None, label if isinstance(label, str) else None, str(err)


def _quarantine(store: Path, row: Path) -> Path:
    dest_dir = store / "corrupt"
    dest_dir.mkdir(exist_ok=True)
    dest = dest_dir / f"{row.stem}.{uuid.uuid4().hex[:12]}.zarr"
    os.rename(row, dest)
    return dest


def row_is_finished(store: Path, label: str) -> bool:
    """True if the rows of ``label`` are in the store and intact. Damaged rows are moved to
    ``corrupt/`` (with a warning) so that the model is scored again."""
    row = row_path(store, label)
    if not row.is_dir():
        return False
    matrix, _, problem = _load_row(row, verify=True)
    if matrix is not None:
        return True
    with _locked(store):
        if not row.is_dir():  # another run moved it aside meanwhile
            return False
        matrix, _, problem = _load_row(row, verify=True)
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
    from ..io import _read_dataset, stamped_dataset, write_zarr
    from .._checksum import CHECKSUM_ATTR, dataset_checksum

    final = row_path(store, label)
    ds = stamped_dataset(matrix, run_label=label)
    tmp = _storage.temp_sibling(final, _storage.PARTIAL)
    lock = _partial_lock(tmp)
    lock.acquire(timeout=0)  # a fresh name: never held by anyone else
    try:
        write_zarr(ds, tmp)
        if dataset_checksum(_read_dataset(tmp, "zarr", ours=True)) != ds.attrs[CHECKSUM_ATTR]:
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
        with xr.open_zarr(path, consolidated=False) as ds:
            return fingerprint_ids([str(t) for t in ds["text"].values])
    except Exception:  # noqa: BLE001 - missing or unreadable
        return None


def _fingerprint_on_disk(store: Path) -> str | None:
    """The text-set fingerprint recorded by the store's files (texts.zarr, else any readable row)."""
    for path in [store / "texts.zarr", *_row_dirs(store)]:
        fingerprint = _fingerprint_of(path)
        if fingerprint is not None:
            return fingerprint
    return None


def _different_texts(store: Path, n_texts: Any) -> LoglikMapError:
    return LoglikMapError(f"{str(store)!r} was started with a different text set ({n_texts} texts); use a new store "
                          "for new texts")


def _row_labels(store: Path) -> list[str]:
    labels = []
    for row in _row_dirs(store):
        try:
            with xr.open_zarr(row, consolidated=False) as ds:
                label = ds.attrs.get("run_label")
        except Exception:  # noqa: BLE001 - damaged rows are dealt with when they are used
            continue
        if isinstance(label, str):
            labels.append(label)
    return labels


def init_store(store: Path, texts: TextSet, labels: Sequence[str]) -> None:
    """Create the store, complete one whose set-up was interrupted, or check an existing one
    against ``texts`` and add ``labels`` to its model order — all under the store's lock."""
    if store.exists() and not store.is_dir():
        raise LoglikMapError(f"{str(store)!r} is a file; a run store is a folder: choose another path")
    if store.is_dir() and not is_store(store):
        foreign = [p.name for p in store.iterdir() if p.name not in _INIT_NAMES and not p.name.startswith(".")]
        if foreign:
            raise LoglikMapError(f"{str(store)!r} exists and is not a loglik_map run store (it holds {foreign[:3]}); "
                                 "choose a new folder")
    try:
        store.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _storage.storage_error(err, store, "create the run store") from err
    fingerprint = fingerprint_ids(texts.ids)
    try:
        with _locked(store):
            _init_locked(store, texts, labels, fingerprint)
    except OSError as err:
        raise _storage.storage_error(err, store, "set up the run store") from err


def _init_locked(store: Path, texts: TextSet, labels: Sequence[str], fingerprint: str) -> None:
    """The set-up of :func:`init_store`, with the store's lock held."""
    manifest = None
    if is_store(store):
        try:
            manifest = _read_manifest(store)
        except _DamagedManifest as err:
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
        from ..io import write_zarr

        write_zarr(_texts_dataset(texts), tmp)
        os.replace(tmp, store / "texts.zarr")
    (store / "models").mkdir(exist_ok=True)
    (store / "failures").mkdir(exist_ok=True)
    manifest = {"format": STORE_FORMAT, "texts_fingerprint": fingerprint, "n_texts": len(texts),
                "models": list(dict.fromkeys([*_row_labels(store), *labels]))}
    write_json_atomic(store / MANIFEST, manifest)  # last: its presence marks a complete set-up
    _storage.fsync_dir(store)


# ---------------------------------------------------------------------- reading
def store_failures(store: str | PathLike[str]) -> dict[str, dict[str, Any]]:
    """The failure records of a run store, by model name (an unreadable record is skipped with a warning)."""
    out = {}
    for f in sorted((Path(store) / "failures").glob("*.json")):
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
            out[rec["model"]] = rec
        except (OSError, ValueError, KeyError, TypeError) as err:
            warnings.warn(f"failure record {str(f)!r} is unreadable ({err}); skipped", DataIntegrityWarning,
                          stacklevel=2)
    return out


def open_store(store: str | PathLike[str], *, verify: bool = True) -> LogLikelihoodMatrix:
    """The finished rows of a run store as one matrix, in the run's model order.

    Rows are found from their own files (the manifest orders them). A damaged row — one that
    cannot be read or fails its checksum — is skipped with a
    :class:`~loglik_map.DataIntegrityWarning` naming the model and file, listed in the
    result's ``damaged_models_skipped`` attribute, and rescored by the next
    :func:`~loglik_map.score_models` run on the store. ``verify=False`` skips the checksums.
    """
    path = Path(store)
    if not is_store(path):
        raise unfinished_store_error(path) or LoglikMapError(f"{str(path)!r} is not a loglik_map run store")
    try:
        order = list(_read_manifest(path)["models"])
    except _DamagedManifest as err:
        warnings.warn(f"{err}; rows are listed by name (rerun score_models on the store to rebuild the manifest)",
                      DataIntegrityWarning, stacklevel=2)
        order = []
    label_of_key = {row_key(lab): lab for lab in order}
    found: list[tuple[int, str, LogLikelihoodMatrix]] = []
    damaged = []
    for row in _row_dirs(path):
        matrix, label, problem = _load_row(row, verify)
        if matrix is None:
            if not row.exists():
                continue  # moved aside by a run that is rescoring it
            name = label or label_of_key.get(row.stem, row.stem)
            damaged.append(name)
            warnings.warn(f"run store {str(path)!r}: the rows of model {name!r} ({str(row)!r}) are damaged and were "
                          f"skipped ({problem}); the next score_models run on this store scores them again",
                          DataIntegrityWarning, stacklevel=2)
            continue
        label = label or label_of_key.get(row.stem, row.stem)
        rank = order.index(label) if label in order else len(order)
        found.append((rank, label, matrix))
    if not found:
        extra = f" ({len(damaged)} damaged rows skipped)" if damaged else ""
        raise LoglikMapError(f"{str(path)!r} holds no finished model yet{extra}")
    found.sort(key=lambda item: (item[0], item[1]))
    out = LogLikelihoodMatrix.concat([m for _, _, m in found])
    if damaged:
        out.data.attrs["damaged_models_skipped"] = damaged
    return out
