"""Crash- and concurrency-safe file operations shared by saves and run stores (not public API).

Every writer works under a unique temporary name in the destination's folder
(``.<name>.<uuid>.partial``), flushes it to disk and only then renames it into place; a directory
being replaced is first renamed aside (``.<name>.<uuid>.old``) and deleted only after the new one
is in, so a kill at any point leaves either the old or the new data readable (see
:func:`recover`). Writers of one destination take its lock file ``.<name>.lock``
(:class:`PathLock`: an OS lock, released by the kernel when its holder dies; on POSIX the file
is deleted again on release, so lock files do not pile up beside saved paths).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

from ..errors import DataIntegrityWarning, LoglikMapError

__all__ = [
    "ASIDE",
    "PARTIAL",
    "READER_WAIT",
    "READ_ATTEMPTS",
    "PathLock",
    "acquire",
    "fsync_dir",
    "fsync_tree",
    "identity",
    "lock_file",
    "read_consistently",
    "recover",
    "recover_waiting",
    "remove_path",
    "remove_settled",
    "replace_aside",
    "save_overlapped",
    "siblings",
    "storage_error",
    "temp_sibling",
]

T = TypeVar("T")

PARTIAL = "partial"
ASIDE = "old"


def temp_sibling(path: Path, tag: str) -> Path:
    """A fresh name ``.<name>.<uuid>.<tag>`` beside ``path``, unique to this writer."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.{tag}")


def siblings(path: Path, tag: str) -> list[Path]:
    """The ``.<name>.<uuid>.<tag>`` entries beside ``path`` (other writers' temporaries or asides)."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[0-9a-f]{{32}}\.{re.escape(tag)}")
    try:
        entries = list(path.parent.iterdir())
    except FileNotFoundError:
        return []
    def age(p: Path) -> float:
        try:
            return p.stat().st_mtime
        except OSError:  # removed meanwhile by its writer
            return 0.0

    return sorted((p for p in entries if pattern.fullmatch(p.name)), key=age)


class PathLock:
    """An exclusive OS lock (``flock``) on a lock file that its holder deletes on release.

    Deleting a lock file is safe only if every locker checks, once it holds the lock, that the
    file it locked is still the one at the path (not deleted, nor replaced by a newer one); if
    not, it locks again. The holder deletes the file before unlocking it, so whoever was waiting
    on the old file finds it gone and starts over on a new one. Compatible with
    :class:`filelock.FileLock` holders of the same file (both use ``flock``). Without ``fcntl``
    (Windows) it is a :class:`filelock.FileLock`, whose Windows flavour deletes its file itself.

    Parameters
    ----------
    lock_file : path
    """

    def __init__(self, lock_file: str | os.PathLike[str]) -> None:
        self.lock_file = os.fspath(lock_file)
        self._fd: int | None = None
        self._fallback = FileLock(self.lock_file) if fcntl is None else None

    @property
    def is_locked(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None if self._fallback is None else self._fallback.is_locked

    def acquire(self, timeout: float = -1, poll_interval: float = 0.05) -> None:
        """Take the lock, waiting up to ``timeout`` seconds (-1: forever); :class:`filelock.Timeout` if not."""
        if self._fallback is not None:  # pragma: no cover - Windows
            self._fallback.acquire(timeout=timeout, poll_interval=poll_interval)
            return
        end = None if timeout < 0 else time.monotonic() + timeout
        while True:
            fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if end is not None and time.monotonic() >= end:
                    raise Timeout(self.lock_file) from None
                time.sleep(poll_interval)
                continue
            except BaseException:
                os.close(fd)
                raise
            try:
                here = os.stat(self.lock_file)
            except FileNotFoundError:
                here = None
            mine = os.fstat(fd)
            if here is not None and (here.st_dev, here.st_ino) == (mine.st_dev, mine.st_ino):
                self._fd = fd
                return
            os.close(fd)  # the file was deleted (or replaced) by its previous holder: lock the current one

    def release(self) -> None:
        """Delete the lock file and unlock it."""
        if self._fallback is not None:  # pragma: no cover - Windows
            self._fallback.release()
            return
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.unlink(self.lock_file)
        except OSError:
            pass  # e.g. a read-only folder: the file stays, which is harmless
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def __enter__(self) -> PathLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()


def lock_file(path: Path) -> PathLock:
    """The lock that writers of ``path`` hold (file ``.<name>.lock`` beside it while held)."""
    return PathLock(path.with_name(f".{path.name}.lock"))


def acquire(lock: PathLock | FileLock, timeout: float, busy_message: str) -> None:
    """Acquire ``lock`` within ``timeout`` seconds or raise :class:`LoglikMapError` with ``busy_message``."""
    try:
        lock.acquire(timeout=timeout)
    except Timeout:
        raise LoglikMapError(busy_message) from None
    except OSError as err:
        raise storage_error(err, Path(lock.lock_file).parent, "lock") from None


def remove_path(path: Path) -> None:
    """Delete a file or a directory tree; a missing path is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_settled(path: Path, quiet: float = 0.1, limit: float = 2.0) -> None:
    """Delete ``path`` and keep deleting it until it stays gone for ``quiet`` seconds (at most ``limit``).

    After a failed Zarr write, chunk writes already in flight on Zarr's I/O thread can still land
    (and recreate the folder) after the error reached us.
    """
    end = time.monotonic() + limit
    remove_path(path)
    while time.monotonic() < end:
        time.sleep(quiet)
        if not (path.exists() or path.is_symlink()):
            return
        remove_path(path)


def fsync_dir(path: Path) -> None:
    """Flush a directory's entries (renames, creations) to disk where the OS allows it."""
    if os.name != "posix":  # pragma: no cover - Windows cannot open directories
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(path: Path) -> None:
    """Flush a file, or every file and folder of a tree, to disk."""
    if path.is_file():
        with open(path, "rb") as fh:
            os.fsync(fh.fileno())
        return
    for root, _dirs, files in os.walk(path, topdown=False):
        for name in files:
            with open(os.path.join(root, name), "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(Path(root))


def replace_aside(tmp: Path, path: Path) -> None:
    """Replace the existing ``path`` by ``tmp``: the old data are renamed aside, the new renamed in,
    then the old deleted, so a kill at any point leaves old or new readable (see :func:`recover`)."""
    aside = temp_sibling(path, ASIDE)
    os.rename(path, aside)
    try:
        os.rename(tmp, path)
    except BaseException:
        os.rename(aside, path)
        raise
    fsync_dir(path.parent)
    remove_path(aside)


def recover(path: Path) -> None:
    """Finish or roll back an interrupted replacement of ``path``; call with its lock held.

    * ``path`` missing but an aside ``.<name>.<uuid>.old`` present: a save died between renaming
      the old data aside and renaming the new data in, so the old data are renamed back.
    * ``path`` present and asides left: a save died after the new data were in; the asides are
      stale copies of replaced data and are deleted.
    * ``.<name>.<uuid>.partial`` temporaries: writers that died before renaming (the lock proves
      no writer is alive); deleted.
    """
    asides = siblings(path, ASIDE)
    if asides and not path.exists():
        newest = asides.pop()
        os.rename(newest, path)
        fsync_dir(path.parent)
        warnings.warn(f"{str(path)!r}: a save that replaced it was interrupted; the previous data were restored "
                      f"from {newest.name}", DataIntegrityWarning, stacklevel=4)
    for stale in asides + siblings(path, PARTIAL):
        remove_path(stale)


#: Seconds a reader waits for a concurrent save of the same path to finish.
READER_WAIT = 120.0
#: Reads of a path that saves keep replacing, before its error is reported.
READ_ATTEMPTS = 5


def identity(path: Path) -> tuple[int, int, int] | None:
    """(device, inode, mtime) of ``path``: changes when a save replaces it; None if it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_mtime_ns


def save_overlapped(path: Path, before: tuple[int, int, int] | None) -> bool:
    """Whether a save of ``path`` ran (or runs) since :func:`identity` gave ``before``: it was
    replaced, or a saver's temporaries or lock are there."""
    if identity(path) != before or siblings(path, ASIDE) or siblings(path, PARTIAL):
        return True
    lock = lock_file(path)
    if not Path(lock.lock_file).exists():
        return False
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True  # held by a saver right now
    lock.release()
    return False


def recover_waiting(path: Path, wait: float = READER_WAIT) -> None:
    """:func:`recover` ``path`` under its lock, waiting up to ``wait`` seconds for a saver to finish."""
    lock = lock_file(path)
    acquire(lock, wait, f"{str(path)!r} is being saved by another process; try again when it has finished")
    try:
        recover(path)
    finally:
        lock.release()


def read_consistently(path: Path, read: Callable[[], T]) -> T:
    """``read()`` of ``path``, again once a save that overlapped it has finished.

    A read that fails (an unreadable chunk, a checksum that does not match) while a save
    replaced ``path`` or is replacing it, or a read during which ``path`` was replaced (possibly
    a mixture of old and new data, which ``verify=False`` would not notice), is repeated after
    waiting for the saver's lock, up to :data:`READ_ATTEMPTS` times. A failure no save explains
    is raised at once.
    """
    problem: BaseException | None = None
    for _ in range(READ_ATTEMPTS):
        before = identity(path)
        try:
            result = read()
        except Exception as err:
            problem = err
            if not save_overlapped(path, before):
                break
        else:
            if identity(path) == before:
                return result
            problem = LoglikMapError(f"{str(path)!r} kept being replaced by other processes' saves while it was "
                                     "read; try again when they have finished")
        recover_waiting(path)  # waits for the saver, then reads what it saved
    assert problem is not None
    raise problem


_HINTS = {
    errno.ENOSPC: "no space left on the device: free some space or choose another folder",
    errno.EDQUOT: "disk quota exceeded: free some space or choose another folder",
    errno.EFBIG: "the file is larger than this system or process allows (ulimit -f)",
    errno.EACCES: "permission denied: choose a folder you can write to",
    errno.EPERM: "operation not permitted: choose a folder you can write to",
    errno.EROFS: "the file system is read-only: choose another folder",
    errno.ENOENT: "a file or folder vanished while it was being written: check that nothing else deletes it",
}


def storage_error(err: BaseException, path: Path, action: str, *, nothing_replaced: bool = False) -> LoglikMapError:
    """A :class:`LoglikMapError` naming ``path``, what failed and what to do."""
    code = getattr(err, "errno", None)
    hint = _HINTS.get(code) if code is not None else None
    detail = f"{type(err).__name__}: {err}"
    if hint is None:
        hint = "check the folder is writable and has space, then try again"
    tail = " Nothing was replaced." if nothing_replaced else ""
    return LoglikMapError(f"could not {action} {str(path)!r} ({detail}); {hint}.{tail}")
