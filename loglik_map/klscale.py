"""The KL scale: KL divergences summarised per setting, beside the paper's Table 1a (SPEC §4)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import pandas as pd

from .errors import LoglikMapError
from .matrix import MODEL_DIM, LogLikelihoodMatrix
from .modelmap import ModelMap
from .preprocessing import preprocess_pretraining
from .trajectory import ordered_groups

__all__ = [
    "PAPER_KL_SCALE",
    "PairRule",
    "KLSetting",
    "PretrainingPreprocessing",
    "kl_scale",
    "kl_scale_pairs",
    "consecutive_checkpoints",
    "differing_only_in",
    "original_vs",
    "child_vs_parent",
    "adjacent_layers",
    "random_pairs",
]

#: Table 1a of the paper (bits/byte): median, mean and SD of KL per setting.
PAPER_KL_SCALE = pd.DataFrame(
    [
        ("consecutive checkpoints, last 50k steps", 0.011, 0.014, 0.0050),
        ("consecutive checkpoints, first 50k steps", 0.067, 0.078, 0.047),
        ("random seeds", 0.12, 0.12, 0.0071),
        ("model sizes", 0.48, 0.61, 0.47),
        ("8-bit quantization", 0.44, 0.80, 1.9),
        ("4-bit quantization", 0.49, 0.91, 2.0),
        ("fine-tuned vs base", 0.40, 1.5, 3.6),
        ("random pairs within a model type", 0.95, 2.8, 6.4),
        ("random pairs across all models", 2.2, 5.3, 8.8),
        ("adjacent layers", 3.0, 8.1, 13.0),
    ],
    columns=["setting", "median", "mean", "sd"],
).set_index("setting")

Pair = tuple[str, str]


@dataclass(frozen=True)
class PairRule:
    """A rule that picks model pairs from a map's coordinates (see the constructors below)."""

    description: str
    select: Callable[[ModelMap], list[Pair]]

    def __call__(self, mm: ModelMap) -> list[Pair]:
        return self.select(mm)


def _coord(mm: ModelMap, name: str) -> np.ndarray:
    c = mm.coordinates.coords
    if name not in c or c[name].dims != (MODEL_DIM,):
        raise LoglikMapError(f"the map has no model coordinate {name!r}")
    return c[name].values


def _keys(mm: ModelMap, names: Sequence[str]) -> list[tuple]:
    cols = [_coord(mm, n) for n in names]
    return [tuple(c[i] for c in cols) for i in range(len(mm))]


def consecutive_checkpoints(order: str = "step", by: str | Sequence[str] | None = None, *,
                            after: float | None = None, before: float | None = None, interval: float | None = None,
                            first: int | None = None, last: int | None = None,
                            exclude: Iterable[str] | None = None) -> PairRule:
    """Pairs of consecutive saved checkpoints within each ``by`` group.

    Checkpoints of a group are ordered by ``order``; each is paired with the next, then

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
        groups = _keys(mm, [by] if isinstance(by, str) else list(by)) if by else [()] * len(mm)
        out = []
        for idx in ordered_groups(steps, groups, mm.models, order, split_hint=not by).values():
            pairs = [(a, b) for a, b in zip(idx[:-1], idx[1:])
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


def differing_only_in(coord: str, same: Sequence[str] = (), *, final: str | None = None) -> PairRule:
    """All pairs whose ``coord`` differs while every coordinate in ``same`` is equal
    (e.g. ``differing_only_in("seed", same=["size", "step"])``).

    With ``final`` (a position coordinate such as ``"step"``), only models at the last position
    that every value of ``coord`` has are paired — the paper's "final checkpoint" for sizes and
    seeds (``calc_kl.py``: the largest step common to all runs). Models without a finite
    ``final`` or without a ``coord`` value are not considered then.
    """

    def select(mm: ModelMap) -> list[Pair]:
        values = _coord(mm, coord)
        keys = _keys(mm, same)
        use = np.ones(len(mm), dtype=bool)
        if final is not None:
            pos = _coord(mm, final).astype(float)
            use = np.isfinite(pos) & np.array([not _missing(v) for v in values])
            if not use.any():
                raise LoglikMapError(f"no model has both a {coord!r} value and a finite {final!r}")
            common = set.intersection(*(set(pos[use & (values == v)].tolist()) for v in dict.fromkeys(values[use])))
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
                match: Sequence[str] = ("source_model", "revision")) -> PairRule:
    """(original, variant) pairs: ``coord == base`` vs ``coord == value`` (any other value if None),
    matched on the ``match`` coordinates — e.g. a model and its 8-bit copy."""

    def select(mm: ModelMap) -> list[Pair]:
        values = _coord(mm, coord)
        keys = _keys(mm, match)
        originals = {keys[i]: i for i in range(len(mm)) if values[i] == base}
        return [(mm.models[originals[keys[j]]], mm.models[j]) for j in range(len(mm))
                if values[j] != base and (value is None or values[j] == value) and keys[j] in originals]

    return PairRule(f"{coord} {base} vs {value if value is not None else 'other'}", select)


def child_vs_parent(parent: str = "base_model") -> PairRule:
    """(child, parent) pairs where the ``parent`` model coordinate names another mapped model."""

    def select(mm: ModelMap) -> list[Pair]:
        parents = _coord(mm, parent)
        names = set(mm.models)
        return [(mm.models[i], str(p)) for i, p in enumerate(parents) if isinstance(p, str) and p in names
                and p != mm.models[i]]

    return PairRule("child vs parent", select)


def adjacent_layers(order: str = "layer", by: str = "source_model") -> PairRule:
    """Logit-lens rows of the same model at consecutive layers."""
    rule = consecutive_checkpoints(order, by)
    return PairRule("adjacent layers", rule.select)


def _lineage_pairs(mm: ModelMap, parent: str) -> list[tuple[int, int]]:
    """(child, parent) row pairs where the ``parent`` coordinate names another mapped model."""
    index = {m: i for i, m in enumerate(mm.models)}
    return [(i, index[p]) for i, p in enumerate(_coord(mm, parent))
            if isinstance(p, str) and p in index and index[p] != i]


def _draw_pairs(candidates: np.ndarray, count: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``count`` ordered pairs of distinct candidates, drawn with replacement across pairs."""
    a = rng.integers(candidates.size, size=count)
    b = rng.integers(candidates.size - 1, size=count)
    b += b >= a
    return list(zip(candidates[a].tolist(), candidates[b].tolist()))


def random_pairs(n: int | None = None, within: str | None = None, *, seed: int = 0,
                 lineage: str | None = None) -> PairRule:
    """Random model pairs, optionally within equal values of ``within`` (a model type).

    Without ``lineage``: ``n`` (default 1,000) distinct pairs of mapped models, without repetition.

    With ``lineage`` (the parent coordinate, e.g. ``"base_model"``), the paper's sampling
    (``calc_kl.py``): only models of child–parent pairs are candidates; pairs are drawn with
    replacement (the two models of a pair differ), as many as there are child–parent pairs —
    per type with ``within`` (the child's ``within`` value is the pair's type; the random
    generator is reseeded with ``seed`` for every type, as the authors do), or in total
    across all types without it (``n`` overrides the total; the authors' ``num_random_pairs``).
    The draws follow the authors' scheme, not their exact pairs (they draw with Python's
    ``random`` over a set of row indices).
    """
    if n is not None and (not isinstance(n, (int, np.integer)) or n < 1):
        raise LoglikMapError(f"n must be a positive number of pairs, got {n!r}")
    if lineage is not None and within is not None and n is not None:
        raise LoglikMapError("with lineage= and within= the paper draws as many pairs per type as the type has "
                             "child–parent pairs: leave n=None")

    def distinct(mm: ModelMap) -> list[Pair]:
        rng = np.random.default_rng(seed)
        keys = _coord(mm, within) if within else np.zeros(len(mm))
        candidates = [(i, j) for i in range(len(mm)) for j in range(i + 1, len(mm)) if keys[i] == keys[j]]
        if not candidates:
            return []
        pick = rng.choice(len(candidates), size=min(n or 1000, len(candidates)), replace=False)
        return [(mm.models[candidates[p][0]], mm.models[candidates[p][1]]) for p in sorted(pick)]

    def paper(mm: ModelMap) -> list[Pair]:
        links = _lineage_pairs(mm, lineage)
        types = _coord(mm, within) if within else np.zeros(len(mm))
        by_type: dict[Any, list[tuple[int, int]]] = {}
        for child, par in links:
            by_type.setdefault(types[child], []).append((child, par))
        out: list[tuple[int, int]] = []
        if within:
            for related in by_type.values():
                candidates = np.unique(np.array(related).ravel())
                if candidates.size >= 2:
                    out += _draw_pairs(candidates, len(related), np.random.default_rng(seed))
        elif links:
            out = _draw_pairs(np.unique(np.array(links).ravel()), n or len(links), np.random.default_rng(seed))
        return [(mm.models[a], mm.models[b]) for a, b in out]

    if lineage is None:
        return PairRule(f"{n or 1000} random distinct pairs{' within ' + within if within else ''}", distinct)
    what = f"within each {within}" if within else "across all types"
    return PairRule(f"random pairs of {lineage} lineage models {what}, with replacement, as many as child–parent "
                    f"pairs{'' if n is None else f' ({n})'}, seed {seed}", paper)


_SHORTHANDS: dict[str, Callable[[], PairRule]] = {
    "consecutive checkpoints": lambda: consecutive_checkpoints("step", "source_model"),
    "pairs differing only in seed": lambda: differing_only_in("seed", same=("size", "step")),
    "original vs quantized": lambda: original_vs("quantization", "none"),
    "child vs parent": lambda: child_vs_parent("base_model"),
    "adjacent layers": lambda: adjacent_layers("layer", "source_model"),
    "random pairs within a model type": lambda: random_pairs(within="family", lineage="base_model"),
    "random pairs across all models": lambda: random_pairs(lineage="base_model"),
}

Setting = Union[Sequence[Pair], PairRule, str]


def _frozen_criteria(models: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    if models is None:
        return ()
    if not isinstance(models, Mapping):
        raise LoglikMapError(f"models= must map model coordinates to values, e.g. {{'run': ['410m', '1b']}}, "
                             f"got {type(models).__name__}")
    return tuple((str(k), tuple(v) if isinstance(v, (list, tuple, set, np.ndarray)) else v)
                 for k, v in sorted(models.items()))


@dataclass(frozen=True)
class PretrainingPreprocessing:
    """A setting's own preprocessing for :func:`kl_scale`: :func:`~loglik_map.preprocess_pretraining`
    of the models selected by ``models`` (criteria for :meth:`LogLikelihoodMatrix.where_models`,
    e.g. ``{"run": ["410m", "1b"]}``; all models when None), with the other fields as its options.

    Settings that share one recipe (equal fields) share one preprocessing: the paper's
    Early, Later and model-size settings use the same cleaned matrix of the five main runs, its
    seed setting a second one of the seed runs only (their own clip, outlier texts and B̄).
    """

    models: Any = None
    exclude: tuple[str, ...] = ()
    order: str = "step"
    by: str | None = None
    clip: float | None = 0.02
    after: float = 2000
    drop_fraction: float = 0.03
    drop_n: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", _frozen_criteria(self.models))
        object.__setattr__(self, "exclude", tuple(str(e) for e in self.exclude))

    def apply(self, matrix: LogLikelihoodMatrix):
        """Run the preprocessing on ``matrix``'s selected models; a :class:`~loglik_map.PreprocessingResult`."""
        sub = matrix.where_models(**{k: list(v) if isinstance(v, tuple) else v for k, v in self.models})
        return preprocess_pretraining(sub, exclude=self.exclude, order=self.order, by=self.by, clip=self.clip,
                                      after=self.after, drop_fraction=self.drop_fraction, drop_n=self.drop_n)


@dataclass(frozen=True)
class KLSetting:
    """One row of :func:`kl_scale`: which pairs, measured on which preprocessed matrix.

    Parameters
    ----------
    pairs : PairRule, shorthand str or list of (a, b)
        The pairs, resolved on the (preprocessed) map of this setting.
    preprocessing : PretrainingPreprocessing, optional
        The setting's own preprocessing. ``None``: the source as given (its B̄ over all its texts;
        the paper's quantization, fine-tuning and layer settings).
    """

    pairs: Any
    preprocessing: PretrainingPreprocessing | None = None


def _resolve(mm: ModelMap, spec: Setting) -> list[Pair]:
    if isinstance(spec, str):
        if spec not in _SHORTHANDS:
            raise LoglikMapError(f"unknown rule {spec!r}; use one of {sorted(_SHORTHANDS)} or a PairRule")
        return _SHORTHANDS[spec]()(mm)
    if isinstance(spec, PairRule):
        return spec(mm)
    return [tuple(p) for p in spec]  # type: ignore[misc]


def _describe_pairs(spec: Setting) -> str:
    if isinstance(spec, str):
        return _SHORTHANDS[spec]().description if spec in _SHORTHANDS else spec
    if isinstance(spec, PairRule):
        return spec.description
    return "given pairs"


def _as_given(matrix: LogLikelihoodMatrix) -> str:
    attrs = matrix.attrs
    if "preprocessing" in attrs:
        return f"as given: {attrs['preprocessing']}"
    if "clip_lower_quantile" in attrs:
        return (f"as given: clipped at the {100 * float(attrs['clip_lower_quantile']):g} % quantile beforehand, "
                "no outlier texts dropped")
    return "as given: no clip, no outlier texts dropped"


@dataclass(frozen=True)
class _Prepared:
    map: ModelMap
    description: str


def _prepare(source: ModelMap | LogLikelihoodMatrix, recipe: PretrainingPreprocessing | None,
             cache: dict) -> _Prepared:
    if recipe not in cache:
        matrix = source.matrix if isinstance(source, ModelMap) else source
        if recipe is None:
            mm = source if isinstance(source, ModelMap) else ModelMap(source)
            cache[None] = _Prepared(mm, _as_given(matrix))
        else:
            res = recipe.apply(matrix)
            mm = source._with_matrix(res.matrix) if isinstance(source, ModelMap) else ModelMap(res.matrix)
            cache[recipe] = _Prepared(mm, f"own {res}")
    return cache[recipe]


def _evaluate(source: ModelMap | LogLikelihoodMatrix, groups: Mapping[Hashable, Setting | KLSetting],
              unit: str) -> tuple[pd.DataFrame, dict[Hashable, dict[str, Any]]]:
    if not isinstance(source, (ModelMap, LogLikelihoodMatrix)):
        raise LoglikMapError(f"kl_scale needs a LogLikelihoodMatrix or ModelMap, got {type(source).__name__}")
    cache: dict = {}
    frames, info = [], {}
    for name, spec in groups.items():
        setting = spec if isinstance(spec, KLSetting) else KLSetting(spec)
        prepared = _prepare(source, setting.preprocessing, cache)
        mm = prepared.map
        pairs = _resolve(mm, setting.pairs)
        df = mm.pairs(pairs, unit=unit) if pairs else pd.DataFrame({"a": [], "b": [], "kl": [], "se": []})
        df.insert(0, "setting", name)
        frames.append(df)
        info[name] = {"pairs": _describe_pairs(setting.pairs), "preprocessing": prepared.description,
                      "n_texts": mm.n_texts, "mean_bytes": mm.mean_bytes}
    return pd.concat(frames, ignore_index=True), info


def kl_scale_pairs(source: ModelMap | LogLikelihoodMatrix, groups: Mapping[Hashable, Setting | KLSetting], *,
                   unit: str = "bits/byte") -> pd.DataFrame:
    """Every pair of every setting with its KL and SE: columns ``setting, a, b, kl, se``
    (settings and preprocessing as for :func:`kl_scale`)."""
    return _evaluate(source, groups, unit)[0]


def kl_scale(source: ModelMap | LogLikelihoodMatrix, groups: Mapping[Hashable, Setting | KLSetting], *,
             unit: str = "bits/byte", reference: Mapping[Hashable, str] | None = None) -> pd.DataFrame:
    """The paper's Table 1a for your models: median, mean, SD and count of KL per setting, with SEs.

    Each setting is measured on its own matrix where it says so (:class:`KLSetting` with a
    :class:`PretrainingPreprocessing`), as the paper does: its seed runs get their own clip,
    outlier texts and B̄; its checkpoint and size settings share the main runs' preprocessing;
    quantization, fine-tuning and layers use the matrix as given. The user guide lists the
    paper's ten settings in this form.

    Parameters
    ----------
    source : LogLikelihoodMatrix or ModelMap
        Pass the unclipped matrix when any setting has its own preprocessing. A ``ModelMap``'s
        options (``allow_truncated``, ``allow_mixed_scoring``, ``backend``) carry over to the
        maps built for such settings.
    groups : mapping
        Setting name → :class:`KLSetting`, or (measured on ``source`` as given) a list of
        ``(a, b)`` model pairs, a :class:`PairRule` (e.g. :func:`consecutive_checkpoints`,
        :func:`differing_only_in`, :func:`original_vs`, :func:`child_vs_parent`,
        :func:`adjacent_layers`, :func:`random_pairs`) or a shorthand string
        (``"consecutive checkpoints"``, ``"pairs differing only in seed"``,
        ``"original vs quantized"``, ``"child vs parent"``, ``"adjacent layers"``,
        ``"random pairs within a model type"``, ``"random pairs across all models"``).
    unit : {"bits/byte", "nats"}
    reference : mapping, optional
        Setting name → row of :data:`PAPER_KL_SCALE` to show beside it; by default settings named
        like a paper row get it.

    Returns
    -------
    pandas.DataFrame
        Indexed by setting: ``count, median, mean, sd, median_se, mean_se`` (mean_se = SE of the
        mean KL combining pair SEs and spread: sd/√count); what was measured — ``pairs`` (the
        rule), ``preprocessing`` (as given, or what the setting's own preprocessing excluded,
        clipped and dropped), ``n_texts`` and ``mean_bytes`` (B̄ the KLs are scaled with); and
        ``paper_median, paper_mean, paper_sd`` in bits/byte where a paper row applies.
    """
    pairs, info = _evaluate(source, groups, unit)
    rows = []
    for name in groups:
        sub = pairs[pairs.setting == name]
        kl, se = sub.kl.to_numpy(), sub.se.to_numpy()
        n = kl.size
        row: dict[str, Any] = {"setting": name, "count": n,
                               "median": float(np.median(kl)) if n else np.nan,
                               "mean": float(np.mean(kl)) if n else np.nan,
                               "sd": float(np.std(kl, ddof=1)) if n > 1 else np.nan,
                               "median_se": float(np.median(se)) if n else np.nan,
                               "mean_se": float(np.std(kl, ddof=1) / np.sqrt(n)) if n > 1 else (float(se[0]) if n else np.nan),
                               **info[name]}
        ref = (reference or {}).get(name, name if name in PAPER_KL_SCALE.index else None)
        if ref is not None and unit == "bits/byte":
            if ref not in PAPER_KL_SCALE.index:
                raise LoglikMapError(f"no paper row {ref!r}; rows are {list(PAPER_KL_SCALE.index)}")
            row.update({f"paper_{k}": PAPER_KL_SCALE.loc[ref, k] for k in ("median", "mean", "sd")})
        rows.append(row)
    out = pd.DataFrame(rows).set_index("setting")
    out.attrs["units"] = unit
    return out
