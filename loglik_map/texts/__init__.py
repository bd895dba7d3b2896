"""Texts: the ordered text set a map is scored on, stable text ids, and the built-in texts.

Torch-free and independent of the rest of the package (it imports only :mod:`loglik_map.errors`).
"""

from __future__ import annotations

from ._builtin import DOMAINS, licenses, load_texts
from ._chunking import read_jsonl_records, split_utf8
from ._ids import text_id
from ._textset import TextSet

__all__ = ["DOMAINS", "TextSet", "licenses", "load_texts", "read_jsonl_records", "split_utf8", "text_id"]
