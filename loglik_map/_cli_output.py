"""Where the command line writes, and what it lets through to a terminal or a spreadsheet (not public API).

* ``--out`` never replaces the input, never replaces an existing file without ``--overwrite``
  and is written under a temporary name, then renamed in (complete or absent).
* Labels are data: control characters in them (an escape sequence can recolour, move the
  cursor or retitle a terminal) are printed escaped (``\\x1b``), and CSV cells that a spreadsheet
  would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return)
  are prefixed with ``'``, as OWASP recommends against CSV injection.
"""

from __future__ import annotations

import os
import unicodedata
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from .errors import LoglikMapError

__all__ = ["check_out", "csv_safe", "json_safe", "table_safe", "terminal_safe", "write_output"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _unsafe(ch: str) -> bool:
    """Control (Cc) and format (Cf: bidirectional overrides, zero-width) characters."""
    return unicodedata.category(ch) in ("Cc", "Cf")


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def terminal_safe(text: str, *, keep_newlines: bool = True) -> str:
    """``text`` with every control or format character written as an escape (``\\x1b``); newlines kept."""
    return "".join(_escape(ch) if _unsafe(ch) and not (keep_newlines and ch == "\n") else ch for ch in text)


def json_safe(text: str) -> str:
    """JSON text with control and format characters as ``\\uXXXX`` escapes (still the same JSON)."""
    def esc(ch: str) -> str:
        code = ord(ch)
        if code < 0x10000:
            return f"\\u{code:04x}"
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"

    return "".join(esc(ch) if _unsafe(ch) and ch != "\n" else ch for ch in text)


def _text_cells(df: pd.DataFrame, change: Callable[[str], str]) -> pd.DataFrame:
    def cell(value: object) -> object:
        return change(value) if isinstance(value, str) else value

    return df.apply(lambda col: col.map(cell) if col.dtype == object or pd.api.types.is_string_dtype(col) else col)


def table_safe(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells have their control characters escaped (for a terminal)."""
    return _text_cells(df, lambda v: terminal_safe(v, keep_newlines=False))


def csv_safe(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` whose text cells cannot run as spreadsheet formulas or terminal escapes."""
    def cell(value: str) -> str:
        value = terminal_safe(value, keep_newlines=False)
        return "'" + value if value.startswith(_FORMULA_START) else value

    return _text_cells(df, cell)


def check_out(out: str, source: str, overwrite: bool) -> Path:
    """The ``--out`` path, refused if it is (or is inside) the input, exists without ``--overwrite``, or
    its folder does not exist."""
    path = Path(out)
    src = Path(source)
    try:
        same = path.exists() and src.exists() and os.path.samefile(path, src)
    except OSError:
        same = False
    inside = src.is_dir() and path.resolve().is_relative_to(src.resolve())
    if same or inside:
        raise LoglikMapError(f"--out {out!r} is the input {source!r}{' (or inside it)' if inside else ''}; writing "
                             "there would destroy it: choose another file")
    if path.is_dir():
        raise LoglikMapError(f"--out {out!r} is a folder; give a file name")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise LoglikMapError(f"--out {out!r} exists; pass --overwrite to replace it, or choose another file")
    if not path.parent.is_dir():
        raise LoglikMapError(f"cannot write --out {out!r}: the folder {str(path.parent)!r} does not exist; create it "
                             "first")
    return path


def write_output(path: Path, write: Callable[[Path], object]) -> None:
    """Call ``write(tmp)`` on a temporary beside ``path``, then rename it to ``path`` (complete or absent)."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        raise LoglikMapError(f"could not write {str(path)!r} ({type(err).__name__}: {err.strerror or err}); check "
                             "that the folder is writable and has space") from None
    finally:
        tmp.unlink(missing_ok=True)
