"""Model and text labels: validation as text, and errors that suggest the closest known label."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .errors import LoglikMapError

__all__ = ["check_text", "unknown_labels_error", "closest"]

_SHOWN = 3  # bad labels named in one message


def check_text(value: Any, what: str) -> str:
    """``value`` as a ``str`` that can be stored and compared reliably, or a :class:`LoglikMapError`.

    Bytes must be valid UTF-8; strings must not contain NUL or lone surrogates (netCDF, Zarr and
    JSON cannot store them, and two such labels may print alike but differ).
    """
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError as err:
            raise LoglikMapError(f"{what} is not valid UTF-8 ({err.reason} at byte {err.start}): {value!r}") from None
    if not isinstance(value, (str, np.str_)):
        raise LoglikMapError(f"{what} must be a string, got {value!r} ({type(value).__name__})")
    value = str(value)
    if "\x00" in value:
        raise LoglikMapError(f"{what} contains a NUL character: {value!r}; remove it")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise LoglikMapError(f"{what} contains a lone surrogate at position {err.start} ({value!r}), which is "
                             "not text; decode the bytes it came from as UTF-8 first") from None
    return value


def closest(label: str, known: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` known labels closest to ``label`` (:func:`difflib.get_close_matches`)."""
    return difflib.get_close_matches(str(label), [str(k) for k in known], n=n, cutoff=0.5)


def unknown_labels_error(bad: Sequence[Any], known: Sequence[Any], what: str, where: str = "in the matrix") -> LoglikMapError:
    """The error for labels that do not exist: names them and suggests the closest known ones.

    Parameters
    ----------
    bad : sequence
        The labels not found.
    known : sequence
        Every valid label.
    what : str
        Singular noun, e.g. ``"model"``, ``"text"``, ``"model coordinate"``.
    where : str
        Where they were looked for, e.g. ``"on the map"``.
    """
    bad = [str(b) for b in bad]
    known = [str(k) for k in known]
    shown = ", ".join(repr(b) for b in bad[:_SHOWN]) + (f" and {len(bad) - _SHOWN} more" if len(bad) > _SHOWN else "")
    noun = what if len(bad) == 1 else f"{what}s"
    verb = "is" if len(bad) == 1 else "are"
    hints = []
    for b in bad[:_SHOWN]:
        near = closest(b, known)
        if near:
            hints.append(f"{b!r}: did you mean {', '.join(repr(x) for x in near)}?")
    if hints:
        tail = " " + " ".join(hints)
    else:
        listed = ", ".join(repr(k) for k in known[:8]) + (f", … ({len(known)} in all)" if len(known) > 8 else "")
        tail = f" Known {what}s: {listed}." if known else f" There are no {what}s."
    return LoglikMapError(f"{noun} {shown} {verb} not {where}.{tail}")
