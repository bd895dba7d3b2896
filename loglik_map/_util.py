"""Small helpers shared by several modules (not public API)."""

from __future__ import annotations

import json
import os
import textwrap
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


def fill_doc(**blocks: str) -> Callable[[F], F]:
    """Decorator: replace each line ``{name}`` of a docstring by the shared block ``blocks[name]``.

    Parameter blocks that several functions share are written once; the placeholder line's
    indentation is given to every line of the block.
    """

    def decorate(func: F) -> F:
        doc = func.__doc__ or ""
        for name, text in blocks.items():
            placeholder = "{" + name + "}"
            lines = doc.split("\n")
            for k, line in enumerate(lines):
                if line.strip() == placeholder:
                    indent = line[: len(line) - len(line.lstrip())]
                    lines[k] = textwrap.indent(textwrap.dedent(text).strip("\n"), indent)
            doc = "\n".join(lines)
            if placeholder in doc:
                raise AssertionError(f"{func.__qualname__}: {placeholder} is not on a line of its own")
        func.__doc__ = doc
        return func

    return decorate


def write_json_atomic(path: Path, data: Any, default: Callable[[Any], Any] | None = None) -> None:
    """Write JSON beside ``path`` and rename it in, so readers never see a half-written file.

    ``default`` is :func:`json.dumps`'s: what to write for a value JSON has no type for.
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=default), encoding="utf-8")
    os.replace(tmp, path)
