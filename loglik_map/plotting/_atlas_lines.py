"""The atlas's lines: checkpoint paths of training runs, logit-lens threads through layers, lineage edges.

Each kind is a list of polylines through model indices, found from the model coordinates:

``"checkpoints"``
    Models with a finite ``step``, grouped by a run coordinate (``run``, else ``source_model``), in
    step order.
``"layers"``
    Models with a finite ``layer`` (logit-lens rows), grouped by ``parent_model``, in layer order.
``"lineage"``
    ``base_model`` → model, for every model whose ``base_model`` is a model on the map.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import LoglikMapError

__all__ = ["EDGE_KINDS", "RUN_COORDS", "edge_paths", "resolve_edges"]

EDGE_KINDS = ("checkpoints", "layers", "lineage")
#: Coordinates that name a training run, in order of preference.
RUN_COORDS = ("run", "source_model")


def _finite(values: np.ndarray) -> np.ndarray:
    return np.asarray(pd.to_numeric(pd.Series(values), errors="coerce").notna())


def _needs(coords: Mapping[str, np.ndarray], run: str | None) -> dict[str, tuple[str, ...]]:
    """What each kind of line reads; a kind whose coordinates are missing has an empty tuple."""
    by = run if run is not None else next((c for c in RUN_COORDS if c in coords), None)
    out: dict[str, tuple[str, ...]] = {}
    out["checkpoints"] = ("step", by) if by is not None and "step" in coords and by in coords else ()
    out["layers"] = ("layer", "parent_model") if {"layer", "parent_model"} <= set(coords) else ()
    out["lineage"] = ("base_model",) if "base_model" in coords else ()
    return out


def resolve_edges(edges: Any, coords: Mapping[str, np.ndarray], run: str | None) -> dict[str, tuple[str, ...]]:
    """The kinds of line to draw, each with the coordinates it reads.

    ``"auto"``: every kind whose coordinates exist; ``None`` or ``()``: none; else a kind or a
    sequence of kinds, each of which must have its coordinates.
    """
    if run is not None and run not in coords:
        raise LoglikMapError(f"run={run!r} is not a model coordinate of this map; it has {sorted(coords)}")
    needs = _needs(coords, run)
    if edges == "auto":
        return {kind: cols for kind, cols in needs.items() if cols}
    if edges is None:
        return {}
    kinds = [edges] if isinstance(edges, str) else list(edges) if isinstance(edges, Sequence) else None
    if kinds is None:
        raise LoglikMapError(f"edges must be 'auto', None or a sequence of {EDGE_KINDS}, got {edges!r}")
    out = {}
    for kind in kinds:
        if kind not in EDGE_KINDS:
            raise LoglikMapError(f"unknown kind of line {kind!r}; use some of {EDGE_KINDS} (or 'auto')")
        if not needs[kind]:
            what = {"checkpoints": f"'step' and a run coordinate ({' or '.join(RUN_COORDS)}, or run=)",
                    "layers": "'layer' and 'parent_model' (logit-lens rows)", "lineage": "'base_model'"}[kind]
            raise LoglikMapError(f"edges={kind!r} needs the model coordinates {what}; this map has {sorted(coords)}")
        out[kind] = needs[kind]
    return out


def _threads(order_by: np.ndarray, group: np.ndarray) -> list[list[int]]:
    ok = np.flatnonzero(_finite(order_by) & pd.notna(pd.Series(group)).to_numpy())
    frame = pd.DataFrame({"i": ok, "by": np.asarray(order_by[ok], dtype=float), "g": group[ok]})
    paths = []
    for _, part in frame.sort_values(["g", "by", "i"], kind="stable").groupby("g", sort=False):
        if len(part) > 1:
            paths.append(part["i"].tolist())
    return paths


def edge_paths(kind: str, cols: tuple[str, ...], coords: Mapping[str, np.ndarray], models: np.ndarray) -> list[list[int]]:
    """Polylines (lists of model indices) of one kind of line.

    Parameters
    ----------
    kind : {"checkpoints", "layers", "lineage"}
    cols : tuple of str
        The coordinates it reads (from :func:`resolve_edges`).
    coords : mapping
        Model coordinates, name → array (K,).
    models : numpy.ndarray
        Model names (K,).

    Returns
    -------
    list of list of int
    """
    if kind in ("checkpoints", "layers"):
        return _threads(coords[cols[0]], coords[cols[1]])
    position = pd.Index(models)
    parent = pd.Series(coords[cols[0]], dtype=object).fillna("").astype(str).to_numpy()
    where = position.get_indexer(parent)
    return [[int(p), int(c)] for c, p in enumerate(where) if p >= 0 and p != c]
