"""Stable text identifiers derived from text content.

Matrices scored in different runs align on these ids, so the same text always gets the
same id whatever file or order it came from.
"""

from __future__ import annotations

import hashlib

from ..errors import WrongTypeError

__all__ = ["text_id"]

_ID_HEX_DIGITS = 16


def text_id(text: str) -> str:
    """Return the stable id of ``text``: ``"t"`` + the first 16 hex digits of SHA-256(UTF-8).

    Parameters
    ----------
    text : str
        The text.

    Returns
    -------
    str
        An id such as ``"t3f2a..."``; 64 bits of hash, so collisions among even millions of
        texts are vanishingly unlikely.

    Examples
    --------
    >>> text_id("hello")
    't2cf24dba5fb0a30e'
    """
    if not isinstance(text, str):
        raise WrongTypeError(f"text_id expects str, got {type(text).__name__}; pass the text itself")
    return "t" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:_ID_HEX_DIGITS]
