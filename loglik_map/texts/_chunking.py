"""Texts from files and documents: UTF-8-safe chunking and the reference JSONL format."""

from __future__ import annotations

import json
from os import PathLike
from typing import Any

from ..errors import LoglikMapError

__all__ = ["read_jsonl_records", "split_utf8"]


def split_utf8(text: str, max_bytes: int = 1024) -> list[str]:
    """Split ``text`` into consecutive chunks of at most ``max_bytes`` UTF-8 bytes.

    A chunk ends at ``max_bytes`` unless that would split a multi-byte character, in which case
    it ends before that character (:ref:`method-loglik`; the procedure of shimo-lab/modelmap's
    ``make-texts-10k-pile``). Joining the chunks gives back ``text``.

    Parameters
    ----------
    text : str
        The text.
    max_bytes : int, default 1024
        Longest chunk in bytes (at least 4).

    Returns
    -------
    list of str
        The chunks, each valid UTF-8 of at most ``max_bytes`` bytes.
    """
    if max_bytes < 4:
        raise LoglikMapError("max_bytes must be at least 4 (one UTF-8 character)")
    data = text.encode("utf-8")
    chunks = []
    start = 0
    while len(data) - start > max_bytes:
        end = start + max_bytes
        while data[end] & 0xC0 == 0x80:  # continuation byte: back off to the character start
            end -= 1
        chunks.append(data[start:end].decode("utf-8"))
        start = end
    if start < len(data):
        chunks.append(data[start:].decode("utf-8"))
    return chunks


def read_jsonl_records(path: str | PathLike[str]) -> list[dict[str, Any]]:
    """Read a reference-format JSONL file: one JSON object with a string ``text`` per line.

    Errors name the file and line (invalid UTF-8, invalid JSON, missing ``text``); blank lines are
    skipped; an empty file is an error.

    Parameters
    ----------
    path : path
        The JSONL file.

    Returns
    -------
    list of dict
        One record per non-blank line, in order.
    """
    records = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise LoglikMapError(f"{path}:{lineno}: not valid UTF-8") from None
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as err:
                raise LoglikMapError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
            if not isinstance(rec, dict) or not isinstance(rec.get("text"), str):
                raise LoglikMapError(f"{path}:{lineno}: each line needs a string field 'text'")
            records.append(rec)
    if not records:
        raise LoglikMapError(f"{path}: no texts")
    return records
