"""Rules that pick model pairs from a map's coordinates: consecutive checkpoints, seeds, quantized copies, …

A :class:`PairRule` is applied to a :class:`~loglik_map.ModelMap` and returns ``(a, b)`` model
pairs; :func:`~loglik_map.kl_scale` measures the KL of every pair of every rule. Every grouping
keyword is ``by=``: pairs are formed within groups of equal ``by`` coordinates.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._labels import unknown_labels_error
from ..core._groups import ordered_groups, ordered_unique
from ..core._matrix import MODEL_DIM
from ..core._modelmap import ModelMap
from ..errors import LoglikMapError

__all__ = ["Pair", "PairRule", "adjacent_layers", "child_vs_parent", "consecutive_checkpoints", "differing_only_in",
           "original_vs", "random_pairs"]

Pair = tuple[str, str]


@dataclass(frozen=True)
class PairRule:
    """A rule that picks model pairs from a map's coordinates (see the constructors below).

    Attributes
    ----------
    description : str
        What the rule picks, in words (shown in :func:`~loglik_map.kl_scale`'s table).
    select : callable
        ``select(model_map) -> list of (a, b)``.
    """

    description: str
    select: Callable[[ModelMap], list[Pair]]

    def __call__(self, mm: ModelMap) -> list[Pair]:
        return self.select(mm)


def _coord(mm: ModelMap, name: str) -> np.ndarray:
    c = mm.points.coords
    if name not in c or c[name].dims != (MODEL_DIM,):
        known = [str(n) for n, v in c.items() if v.dims == (MODEL_DIM,) and n != MODEL_DIM]
        raise unknown_labels_error([name], known, "model coordinate", "on the map")
    return c[name].values


def _hashable(value: Any) -> Any:
    """A coordinate value that compares equal to its copies: NaN (a whole model's ``layer``) becomes None."""
    if isinstance(value, (float, np.floating)) and np.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _keys(mm: ModelMap, names: Sequence[str], *, nan_equal: bool = False) -> list[tuple]:
    """Per row, its values of the ``names`` coordinates (NaN equal to NaN only with ``nan_equal``)."""
    cols = [_coord(mm, n) for n in names]
    if nan_equal:
        return [tuple(_hashable(c[i]) for c in cols) for i in range(len(mm))]
    return [tuple(c[i] for c in cols) for i in range(len(mm))]


#: Coordinates that tell a variant of one model from the model itself: a logit-lens layer
#: (NaN for the whole model), a quantized copy, a fine-tune (its parent in ``base_model``). Such
#: rows may share the model's other coordinates (``source_model``, ``revision``, ``step``, user
#: coordinates), so every rule pairs only rows that agree on these, unless a rule is about one.
_VARIANT_COORDS = ("layer", "quantization", "base_model")


def _variant_keys(mm: ModelMap, skip: Iterable[str] = ()) -> list[tuple]:
    """Per row, its values of the :data:`_VARIANT_COORDS` on the map (less ``skip``)."""
    skipped = set(skip)
    names = [n for n in _VARIANT_COORDS if n not in skipped and n in mm.points.coords
             and mm.points.coords[n].dims == (MODEL_DIM,)]
    keys = _keys(mm, names, nan_equal=True)
    # "" is how a matrix without the coordinate was filled: not quantized, no parent
    for name, missing in (("quantization", "none"), ("base_model", "")):
        if name in names:
            q = names.index(name)
            keys = [k[:q] + (missing if k[q] in ("", None) else k[q],) + k[q + 1:] for k in keys]
    return keys


def _is_lens_row(mm: ModelMap) -> np.ndarray:
    """Rows with a finite ``layer`` coordinate (logit-lens rows); all False without one."""
    c = mm.points.coords
    if "layer" not in c or c["layer"].dims != (MODEL_DIM,):
        return np.zeros(len(mm), dtype=bool)
    layer = np.asarray(c["layer"].values, dtype=float)
    return np.isfinite(layer)


def _names(by: str | Sequence[str] | None) -> list[str]:
    return [] if not by else [by] if isinstance(by, str) else list(by)


def consecutive_checkpoints(order: str = "step", by: str | Sequence[str] | None = None, *,
                            after: float | None = None, before: float | None = None, interval: float | None = None,
                            first: int | None = None, last: int | None = None,
                            exclude: Iterable[str] | None = None) -> PairRule:
    """Pairs of consecutive saved checkpoints within each ``by`` group.

    Checkpoints of a group are ordered by ``order``; each is paired with the next, then

    * logit-lens rows, quantized copies and fine-tunes (the variant coordinates ``layer``,
      ``quantization`` and ``base_model``, unless ``order`` or ``by`` names them) form runs of
      their own: a model's layer-3 row, 8-bit copy or fine-tune may share its ``step`` but is
      never its neighbour on the run;
    * a pair that touches a model in ``exclude`` is dropped — never bridged (names not on the
      map are ignored, so one list serves several settings);
    * both ends must lie in ``[after, before]``;
    * with ``interval``, the two ends must be exactly ``interval`` apart (the paper: 1,000, which
      also drops the two-step pair around a checkpoint removed from the matrix);
    * with ``first`` (``last``), only the first (last) that many remaining pairs of each group
      are kept, and the groups are pooled.

    The paper's Table 1a (``calc_kl.py``): pairs exactly 1,000 steps apart with end step > 2,000,
    the first 50 ("Early", first 50k steps) and the last 50 ("Later", last 50k steps) per model
    size — ``consecutive_checkpoints("step", "size", interval=1000, after=2000, first=50)`` and
    the same with ``last=50``. On Pythia's grid "both ends ≥ 2,000" and "end > 2,000" pick the
    same pairs.

    Parameters
    ----------
    order : str, default "step"
        Numeric model coordinate ordering the checkpoints.
    by : str or sequence of str, optional
        Model coordinate(s) grouping the checkpoints into runs.
    after, before : float, optional
        Both ends of a pair lie in ``[after, before]``.
    interval : float, optional
        The two ends are exactly this far apart.
    first, last : int, optional
        Keep the first (last) that many pairs of each group.
    exclude : iterable of str, optional
        Models never paired nor bridged.

    Returns
    -------
    PairRule
        Call it on a :class:`~loglik_map.ModelMap` for the ``(a, b)`` pairs.
    """
    for name, value in (("first", first), ("last", last)):
        if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
            raise LoglikMapError(f"{name} must be a positive number of pairs, got {value!r}")
    if first is not None and last is not None:
        raise LoglikMapError("first= and last= are two settings (the paper's Early and Later): make one rule with "
                             "first=50 and another with last=50")
    excluded = set(exclude or ())

    def select(mm: ModelMap) -> list[Pair]:
        steps = _coord(mm, order).astype(float)
        # a logit-lens row or a quantized copy shares its model's step: never in the model's run
        variants = _variant_keys(mm, skip=[order, *_names(by)])
        groups = [k + v for k, v in zip(_keys(mm, _names(by)), variants)]
        out = []
        for idx in ordered_groups(steps, groups, mm.models, order, split_hint=not by).values():
            pairs = [(a, b) for a, b in itertools.pairwise(idx)
                     if mm.models[a] not in excluded and mm.models[b] not in excluded
                     and (after is None or steps[a] >= after) and (before is None or steps[b] <= before)
                     and (interval is None or steps[b] - steps[a] == interval)]
            if first is not None:
                pairs = pairs[:first]
            if last is not None:
                pairs = pairs[-last:]
            out += [(mm.models[a], mm.models[b]) for a, b in pairs]
        return out

    parts = [f"consecutive {order}s" + (f" by {by}" if by else "")]
    if interval is not None:
        parts.append(f"exactly {interval:g} apart")
    if after is not None or before is not None:
        parts.append(f"within [{'' if after is None else f'{after:g}'}, {'' if before is None else f'{before:g}'}]")
    if first is not None or last is not None:
        parts.append(f"{'first' if first is not None else 'last'} {first or last} per group")
    if excluded:
        parts.append(f"{len(excluded)} excluded")
    return PairRule(", ".join(parts), select)


def differing_only_in(coord: str, by: str | Sequence[str] = (), *, final: str | None = None) -> PairRule:
    """All pairs whose ``coord`` differs while every coordinate in ``by`` is equal.

    For example ``differing_only_in("seed", by=["size", "step"])``.

    With ``final`` (a position coordinate such as ``"step"``), only models at the last position
    that every value of ``coord`` has are paired — the paper's "final checkpoint" for sizes and
    seeds (``calc_kl.py``: the largest step common to all runs). Models without a finite
    ``final`` or without a ``coord`` value are not considered then.

    Both rows of a pair also agree on ``layer``, ``quantization`` and ``base_model`` unless
    ``coord`` or ``by`` names them: a seed's 8-bit copy, logit-lens row or fine-tune is never
    paired with another seed's model.

    Parameters
    ----------
    coord : str
        The model coordinate that differs within a pair (e.g. ``"seed"``).
    by : str or sequence of str, optional
        Model coordinates equal within a pair.
    final : str, optional
        A position coordinate: pair only the models at the last position common to all values.

    Returns
    -------
    PairRule
        Call it on a :class:`~loglik_map.ModelMap` for the ``(a, b)`` pairs.
    """

    def select(mm: ModelMap) -> list[Pair]:
        values = _coord(mm, coord)
        keys = [k + v for k, v in zip(_keys(mm, _names(by)), _variant_keys(mm, skip=[coord, *_names(by)]))]
        use = np.ones(len(mm), dtype=bool)
        if final is not None:
            pos = _coord(mm, final).astype(float)
            use = np.isfinite(pos) & np.array([not _missing(v) for v in values])
            if not use.any():
                raise LoglikMapError(f"no model has both a {coord!r} value and a finite {final!r}")
            common = set.intersection(*(set(pos[use & (values == v)].tolist()) for v in ordered_unique(values[use])))
            if not common:
                raise LoglikMapError(f"no {final} is shared by every {coord}; there is no common final checkpoint")
            use &= pos == max(common)
        rows = np.flatnonzero(use)
        return [(mm.models[i], mm.models[j]) for n, i in enumerate(rows) for j in rows[n + 1:]
                if keys[i] == keys[j] and values[i] != values[j]]

    return PairRule(f"pairs differing only in {coord}" + (f", at the last common {final}" if final else ""), select)


def _missing(value: Any) -> bool:
    return value == "" or (isinstance(value, (float, np.floating)) and np.isnan(value))


def original_vs(coord: str = "quantization", base: Any = "none", value: Any = None,
                by: str | Sequence[str] = ("source_model", "revision"), *, layers: bool = False) -> PairRule:
    """(original, variant) pairs, matched on the ``by`` coordinates — e.g. a model and its 8-bit copy.

    Logit-lens rows share their model's ``source_model``, ``revision`` and ``quantization``, so
    rows are matched on ``layer`` as well (a whole model has none): a copy is paired with the
    whole original, never with one of its layers. Lens rows are left out unless ``layers=True``,
    which pairs each layer of a copy with the same layer of the original. Two originals that
    match one copy (e.g. the model scored twice, in two dtypes) are an error naming both: add the
    coordinate that tells them apart to ``by``.

    Parameters
    ----------
    coord : str, default "quantization"
        The model coordinate telling original from variant.
    base : default "none"
        Its value for the originals.
    value : optional
        Its value for the variants (any other value if None).
    by : str or sequence of str
        Model coordinates equal within a pair (``layer`` is always matched too).
    layers : bool, default False
        Also pair logit-lens rows, layer by layer (the paper's quantization settings compare whole
        models only).

    Returns
    -------
    PairRule
        Call it on a :class:`~loglik_map.ModelMap` for the ``(a, b)`` pairs.
    """

    def select(mm: ModelMap) -> list[Pair]:
        values = _coord(mm, coord)
        names = _names(by)
        keys = [k + v for k, v in zip(_keys(mm, names), _variant_keys(mm, skip=[coord, *names]))]
        use = np.ones(len(mm), dtype=bool) if layers else ~_is_lens_row(mm)
        originals: dict[tuple, int] = {}
        for i in np.flatnonzero(use):
            if values[i] != base:
                continue
            if keys[i] in originals:
                a, b = mm.models[originals[keys[i]]], mm.models[i]
                raise LoglikMapError(f"two originals ({coord} = {base!r}) with equal {', '.join(names) or 'coordinates'}"
                                     f": {a!r} and {b!r}; add the coordinate that tells them apart to by=")
            originals[keys[i]] = int(i)
        return [(mm.models[originals[keys[j]]], mm.models[j]) for j in np.flatnonzero(use)
                if values[j] != base and (value is None or values[j] == value) and keys[j] in originals]

    what = f"{coord} {base} vs {value if value is not None else 'other'}"
    return PairRule(what + (", layer by layer" if layers else ""), select)


def child_vs_parent(parent: str = "base_model") -> PairRule:
    """(child, parent) pairs where the ``parent`` model coordinate names another mapped model.

    The child must be the same kind of row as its parent (equal ``layer`` and ``quantization``): a
    fine-tune's logit-lens rows and quantized copies carry its ``parent`` coordinate too, but a
    layer or an 8-bit copy of the child against the whole parent is not a fine-tuning pair.

    Parameters
    ----------
    parent : str, default "base_model"
        The model coordinate naming each model's parent.

    Returns
    -------
    PairRule
        Call it on a :class:`~loglik_map.ModelMap` for the ``(a, b)`` pairs.
    """

    def select(mm: ModelMap) -> list[Pair]:
        return [(mm.models[i], mm.models[j]) for i, j in _lineage_pairs(mm, parent)]

    return PairRule("child vs parent", select)


def adjacent_layers(order: str = "layer", by: str = "source_model") -> PairRule:
    """Logit-lens rows of the same model at consecutive layers.

    Parameters
    ----------
    order : str, default "layer"
        The layer coordinate.
    by : str, default "source_model"
        The coordinate naming the model a row comes from.

    Returns
    -------
    PairRule
        Call it on a :class:`~loglik_map.ModelMap` for the ``(a, b)`` pairs.
    """
    rule = consecutive_checkpoints(order, by)
    return PairRule("adjacent layers", rule.select)


def _lineage_pairs(mm: ModelMap, parent: str) -> list[tuple[int, int]]:
    """(child, parent) row pairs where the ``parent`` coordinate names another mapped model of
    the same kind (equal variant coordinates: no lens row or quantized copy of a child)."""
    index = {m: i for i, m in enumerate(mm.models)}
    kind = _variant_keys(mm, skip=[parent, "base_model"])
    return [(i, index[p]) for i, p in enumerate(_coord(mm, parent))
            if isinstance(p, str) and p in index and index[p] != i and kind[i] == kind[index[p]]]


def _draw_pairs(candidates: np.ndarray, count: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``count`` ordered pairs of distinct candidates, drawn with replacement across pairs."""
    a = rng.integers(candidates.size, size=count)
    b = rng.integers(candidates.size - 1, size=count)
    b += b >= a
    return list(zip(candidates[a].tolist(), candidates[b].tolist()))


def random_pairs(n: int | None = None, by: str | None = None, *, seed: int = 0,
                 lineage: str | None = None) -> PairRule:
    """Random model pairs, optionally within equal values of ``by`` (a model type).

    Without ``lineage``: ``n`` (default 1,000) distinct pairs of mapped models, without repetition.
    Logit-lens rows (a finite ``layer``) are not models and are never drawn; quantized copies are.

    With ``lineage`` (the parent coordinate, e.g. ``"base_model"``), the paper's sampling
    (``calc_kl.py``): only models of child–parent pairs are candidates; pairs are drawn with
    replacement (the two models of a pair differ), as many as there are child–parent pairs —
    per type with ``by`` (the child's ``by`` value is the pair's type; the random
    generator is reseeded with ``seed`` for every type, as the authors do), or in total
    across all types without it (``n`` overrides the total; the authors' ``num_random_pairs``).
    The draws follow the authors' scheme, not their exact pairs (they draw with Python's
    ``random`` over a set of row indices).

    Parameters
    ----------
    n : int, optional
        Number of pairs (see above for the default).
    by : str, optional
        Model coordinate (a model type) equal within a pair.
    seed : int, default 0
        Seed of the draws.
    lineage : str, optional
        The parent coordinate: draw the paper's way, among the models of child–parent pairs.

    Returns
    -------
    PairRule
        Call it on a :class:`~loglik_map.ModelMap` for the ``(a, b)`` pairs.
    """
    if n is not None and (not isinstance(n, (int, np.integer)) or n < 1):
        raise LoglikMapError(f"n must be a positive number of pairs, got {n!r}")
    if lineage is not None and by is not None and n is not None:
        raise LoglikMapError("with lineage= and by= the paper draws as many pairs per type as the type has "
                             "child–parent pairs: leave n=None")

    def distinct(mm: ModelMap) -> list[Pair]:
        rng = np.random.default_rng(seed)
        keys = _coord(mm, by) if by else np.zeros(len(mm))
        rows = np.flatnonzero(~_is_lens_row(mm)).tolist()
        candidates = [(i, j) for n, i in enumerate(rows) for j in rows[n + 1:] if keys[i] == keys[j]]
        if not candidates:
            return []
        pick = rng.choice(len(candidates), size=min(n or 1000, len(candidates)), replace=False)
        return [(mm.models[candidates[p][0]], mm.models[candidates[p][1]]) for p in sorted(pick)]

    def paper(mm: ModelMap) -> list[Pair]:
        assert lineage is not None  # paper() is only chosen with lineage=
        links = _lineage_pairs(mm, lineage)
        types = _coord(mm, by) if by else np.zeros(len(mm))
        by_type: dict[Any, list[tuple[int, int]]] = {}
        for child, par in links:
            by_type.setdefault(types[child], []).append((child, par))
        out: list[tuple[int, int]] = []
        if by:
            for related in by_type.values():
                candidates = np.unique(np.array(related).ravel())
                if candidates.size >= 2:
                    out += _draw_pairs(candidates, len(related), np.random.default_rng(seed))
        elif links:
            out = _draw_pairs(np.unique(np.array(links).ravel()), n or len(links), np.random.default_rng(seed))
        return [(mm.models[a], mm.models[b]) for a, b in out]

    if lineage is None:
        return PairRule(f"{n or 1000} random distinct pairs{' within each ' + by if by else ''}", distinct)
    what = f"within each {by}" if by else "across all types"
    return PairRule(f"random pairs of {lineage} lineage models {what}, with replacement, as many as child–parent "
                    f"pairs{'' if n is None else f' ({n})'}, seed {seed}", paper)
