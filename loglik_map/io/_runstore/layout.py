"""A run store's layout: file names, the lock, the manifest, and reading one model's rows (not public API)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
from filelock import FileLock

from ...core._matrix import LogLikelihoodMatrix
from ...errors import LoglikMapError
from .. import _storage
from .._backends import load_zarr
from .._checksum import CHECKSUM_ATTR, FORMAT_ATTR
from .._format import check_format_version, normalise_strings, to_nats, verify_checksum

__all__ = ["LOCK", "LOCK_WAIT", "MANIFEST", "STORE_FORMAT", "DamagedManifest", "failure_path", "fingerprint_ids",
           "is_store", "load_row", "locked", "read_manifest", "row_dirs", "row_key", "row_path",
           "unfinished_store_error"]

MANIFEST = "loglik_map_store.json"
LOCK = "loglik_map_store.lock"
#: Run-store format this version writes and the newest it reads.
STORE_FORMAT = 1
#: Seconds to wait for the store lock (held for milliseconds at a time: manifest updates,
#: initialisation, moving a damaged row aside).
LOCK_WAIT = 300.0
INIT_NAMES = {LOCK, "texts.zarr", "models", "failures", "corrupt", "claims"}


# ---------------------------------------------------------------------- names
def row_key(label: str) -> str:
    """File-name key of a model label (safe characters plus a hash of the label).

    Leading dots become ``_`` (``.hidden`` -> ``_hidden-<hash>``): names starting with a dot
    are the store's temporaries, which readers skip.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", label)[:80]
    safe = "_" * (len(safe) - len(safe.lstrip("."))) + safe.lstrip(".")
    return f"{safe}-{hashlib.sha1(label.encode('utf-8')).hexdigest()[:10]}"


def row_path(store: Path, label: str) -> Path:
    """Where the finished rows of ``label`` live."""
    return store / "models" / f"{row_key(label)}.zarr"


def failure_path(store: Path, label: str) -> Path:
    """Where the failure record of ``label`` lives."""
    return store / "failures" / f"{row_key(label)}.json"


def fingerprint_ids(ids: Sequence[str] | np.ndarray) -> str:
    """Fingerprint of an ordered set of text ids (the store is bound to it)."""
    h = hashlib.sha256()
    for tid in ids:
        h.update(str(tid).encode("ascii"))
    return h.hexdigest()[:32]


# ---------------------------------------------------------------------- lock and manifest
@contextmanager
def locked(store: Path) -> Iterator[None]:
    lock = FileLock(store / LOCK)
    _storage.acquire(lock, LOCK_WAIT, f"run store {str(store)!r} stayed locked for {LOCK_WAIT:.0f} s by another process "
                                      f"(its lock file {LOCK}); wait for that process or stop it, then rerun")
    try:
        yield
    finally:
        lock.release()


def is_store(path: str | PathLike[str]) -> bool:
    """Whether ``path`` is a run store.

    Parameters
    ----------
    path : path
        A folder.

    Returns
    -------
    bool
        True when it holds a run store's manifest.
    """
    return (Path(path) / MANIFEST).is_file()


def _looks_unfinished(path: Path) -> bool:
    if not path.is_dir() or is_store(path):
        return False
    names = [p.name for p in path.iterdir()]
    ours = [n for n in names if n in INIT_NAMES or n.startswith(".texts.")]
    return bool(ours) and all(n in INIT_NAMES or n.startswith(".") for n in names)


def unfinished_store_error(path: str | PathLike[str]) -> LoglikMapError | None:
    """The error for a run store whose initialisation was interrupted, or None if ``path`` is not one."""
    path = Path(path)
    if _looks_unfinished(path):
        return LoglikMapError(f"{str(path)!r} is a run store whose set-up was interrupted (it has no {MANIFEST} yet) "
                              "and holds no results; rerun score_models (or loglik-map score) on it with the same "
                              "texts to complete it")
    return None


class DamagedManifest(LoglikMapError):
    pass


def read_manifest(store: Path) -> dict[str, Any]:
    path = store / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise LoglikMapError(f"cannot read {str(path)!r}: {err}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DamagedManifest(f"the run-store manifest {str(path)!r} is damaged ({err})") from None
    if not isinstance(manifest, dict):
        raise DamagedManifest(f"the run-store manifest {str(path)!r} is damaged (not a JSON object)")
    fmt = manifest.get("format")
    if isinstance(fmt, int) and not isinstance(fmt, bool) and fmt > STORE_FORMAT:
        raise LoglikMapError(f"run store {str(store)!r} was written by a newer loglik_map (store format {fmt}; this "
                             f"version reads up to {STORE_FORMAT}): upgrade loglik_map to use it")
    ok = (isinstance(fmt, int) and not isinstance(fmt, bool) and fmt >= 1
          and isinstance(manifest.get("texts_fingerprint"), str)
          and isinstance(manifest.get("models"), list) and all(isinstance(m, str) for m in manifest["models"]))
    if not ok:
        raise DamagedManifest(f"the run-store manifest {str(path)!r} is damaged (missing or invalid 'format', "
                               "'texts_fingerprint' or 'models')")
    return manifest


# ---------------------------------------------------------------------- rows
def row_dirs(store: Path) -> list[Path]:
    models = store / "models"
    if not models.is_dir():
        return []
    return sorted(p for p in models.iterdir() if p.suffix == ".zarr" and not p.name.startswith("."))


def load_row(path: Path, verify: bool) -> tuple[LogLikelihoodMatrix | None, str | None, str]:
    """(matrix, label, problem): the row's matrix and run label, or None and what is wrong with it."""
    try:
        ds = load_zarr(path)
    except Exception as err:
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
        return LogLikelihoodMatrix.from_dataarray(to_nats(normalise_strings(da), path)), label, ""
    except LoglikMapError as err:
        return None, label if isinstance(label, str) else None, str(err)

