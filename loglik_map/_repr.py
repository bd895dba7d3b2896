"""Short text and HTML summaries of loglik_map objects for consoles and notebooks, in xarray's spirit.

A class mixes in :class:`ReprMixin` and builds a :class:`Summary` in ``_summary()``: a title with
its sizes and unit, then one labelled line per fact (first labels, provenance: clip, conventions,
dtype, …). ``repr()`` prints it as text, Jupyter renders ``_repr_html_()``. Nothing here computes
anything expensive: a summary reads what the object already holds.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ReprMixin", "Summary", "clip_text", "conventions_text", "distinct_text", "first_labels"]

#: Labels shown before "…".
SHOWN = 3


@dataclass(frozen=True)
class Summary:
    """What a repr shows.

    Attributes
    ----------
    name : str
        The class name.
    sizes : tuple of (str, int)
        Dimension sizes, e.g. ``(("model", 12), ("text", 150))``.
    unit : str
        The unit of the values (shown after the title).
    rows : tuple of (str, str)
        Labelled facts, in order; rows with an empty value are left out.
    """

    name: str
    sizes: tuple[tuple[str, int], ...] = ()
    unit: str = ""
    rows: tuple[tuple[str, str], ...] = field(default=())

    def _rows(self) -> list[tuple[str, str]]:
        return [(k, v) for k, v in self.rows if v]

    def _sizes(self) -> str:
        return f" ({', '.join(f'{d}: {n}' for d, n in self.sizes)})" if self.sizes else ""

    def text(self) -> str:
        head = f"<{self.name}{self._sizes()}>" + (f" {self.unit}" if self.unit else "")
        return "\n".join([head] + [f"  {k}: {v}" for k, v in self._rows()])

    def html(self) -> str:
        e = html.escape
        cells = "".join(
            f"<tr><th style='text-align:left;padding:0 1em 0 0;font-weight:normal;opacity:0.7'>{e(k)}</th>"
            f"<td style='text-align:left'>{e(v)}</td></tr>"
            for k, v in self._rows()
        )
        unit = f" <span style='opacity:0.7'>{e(self.unit)}</span>" if self.unit else ""
        return (f"<div class='loglik-map-repr'><div><strong>{e(self.name)}</strong>{e(self._sizes())}{unit}</div>"
                f"<table style='border-collapse:collapse;margin:0.2em 0 0 0.5em'>{cells}</table></div>")


class ReprMixin:
    """``__repr__`` and ``_repr_html_`` from the class's ``_summary()``."""

    __slots__ = ()

    def _summary(self) -> Summary:  # pragma: no cover - every user defines it
        raise NotImplementedError

    def __repr__(self) -> str:
        return self._summary().text()

    def _repr_html_(self) -> str:
        return self._summary().html()


def first_labels(labels: Iterable[Any], shown: int = SHOWN) -> str:
    """``"a, b, c, … (12 in all)"``: the first labels of a list and its length."""
    labels = [str(x) for x in labels]
    if len(labels) <= shown:
        return ", ".join(labels)
    return f"{', '.join(labels[:shown])}, … ({len(labels)} in all)"


def clip_text(attrs: dict[str, Any]) -> str:
    """How a matrix was clipped, from its attrs (``"none"`` when it was not)."""
    q = attrs.get("clip_lower_quantile")
    if q is None:
        return "none"
    value = attrs.get("clip_value_nats")
    at = f" ({float(value):.6g} nats)" if value is not None else ""
    return f"lower {100 * float(q):g} % quantile{at}"


def distinct_text(values: Any) -> str:
    """``"float32"`` when all rows agree, else ``"mixed: bfloat16 (3), float32 (9)"``; ``""`` when unrecorded."""
    if values is None:
        return ""
    found, counts = np.unique(np.asarray([str(v) for v in np.asarray(values).ravel()], dtype=str), return_counts=True)
    known = [(v, c) for v, c in zip(found, counts) if v and v != "nan"]
    if len(known) > 1:
        return "mixed: " + ", ".join(f"{v} ({c})" for v, c in known)
    return str(known[0][0]) if known else ""


def conventions_text(attrs: dict[str, Any], row_conventions: Any) -> str:
    """The scoring convention(s): the distinct per-row values, else the ``convention`` attr."""
    return distinct_text(row_conventions) or str(attrs.get("convention", ""))
