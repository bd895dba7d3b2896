"""The KL scale: KL divergences summarised per setting, beside the paper's Table 1a (SPEC §4)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import pandas as pd

from .errors import LoglikMapError
from .matrix import MODEL_DIM
from .modelmap import ModelMap

__all__ = [
    "PAPER_KL_SCALE",
    "PairRule",
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
                            after: float | None = None, before: float | None = None) -> PairRule:
    """Consecutive saved checkpoints (within each ``by`` group), optionally with ``after ≤ step ≤ before``."""

    def select(mm: ModelMap) -> list[Pair]:
        steps = _coord(mm, order).astype(float)
        groups = _keys(mm, [by] if isinstance(by, str) else list(by)) if by else [()] * len(mm)
        out = []
        for g in dict.fromkeys(groups):
            idx = [i for i in range(len(mm)) if groups[i] == g and np.isfinite(steps[i])
                   and (after is None or steps[i] >= after) and (before is None or steps[i] <= before)]
            idx.sort(key=lambda i: steps[i])
            out += [(mm.models[a], mm.models[b]) for a, b in zip(idx, idx[1:])]
        return out

    return PairRule(f"consecutive {order}s" + (f" by {by}" if by else ""), select)


def differing_only_in(coord: str, same: Sequence[str] = ()) -> PairRule:
    """All pairs whose ``coord`` differs while every coordinate in ``same`` is equal
    (e.g. ``differing_only_in("seed", same=["size", "step"])``)."""

    def select(mm: ModelMap) -> list[Pair]:
        values = _coord(mm, coord)
        keys = _keys(mm, same)
        return [(mm.models[i], mm.models[j]) for i in range(len(mm)) for j in range(i + 1, len(mm))
                if keys[i] == keys[j] and values[i] != values[j]]

    return PairRule(f"pairs differing only in {coord}", select)


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


def random_pairs(n: int = 1000, within: str | None = None, *, seed: int = 0) -> PairRule:
    """``n`` random distinct pairs (without repetition), optionally within equal values of ``within``."""

    def select(mm: ModelMap) -> list[Pair]:
        rng = np.random.default_rng(seed)
        keys = _coord(mm, within) if within else np.zeros(len(mm))
        candidates = [(i, j) for i in range(len(mm)) for j in range(i + 1, len(mm)) if keys[i] == keys[j]]
        if not candidates:
            return []
        pick = rng.choice(len(candidates), size=min(n, len(candidates)), replace=False)
        return [(mm.models[candidates[p][0]], mm.models[candidates[p][1]]) for p in sorted(pick)]

    return PairRule(f"random pairs{' within ' + within if within else ''}", select)


_SHORTHANDS: dict[str, Callable[[], PairRule]] = {
    "consecutive checkpoints": lambda: consecutive_checkpoints("step", "source_model"),
    "pairs differing only in seed": lambda: differing_only_in("seed", same=("size", "step")),
    "original vs quantized": lambda: original_vs("quantization", "none"),
    "child vs parent": lambda: child_vs_parent("base_model"),
    "adjacent layers": lambda: adjacent_layers("layer", "source_model"),
    "random pairs within a model type": lambda: random_pairs(1000, within="family"),
    "random pairs across all models": lambda: random_pairs(1000),
}

Setting = Union[Sequence[Pair], PairRule, str]


def _resolve(mm: ModelMap, spec: Setting) -> list[Pair]:
    if isinstance(spec, str):
        if spec not in _SHORTHANDS:
            raise LoglikMapError(f"unknown rule {spec!r}; use one of {sorted(_SHORTHANDS)} or a PairRule")
        return _SHORTHANDS[spec]()(mm)
    if isinstance(spec, PairRule):
        return spec(mm)
    return [tuple(p) for p in spec]  # type: ignore[misc]


def kl_scale_pairs(mm: ModelMap, groups: Mapping[Hashable, Setting], *, unit: str = "bits/byte") -> pd.DataFrame:
    """Every pair of every setting with its KL and SE: columns ``setting, a, b, kl, se``."""
    frames = []
    for name, spec in groups.items():
        pairs = _resolve(mm, spec)
        df = mm.pairs(pairs, unit=unit) if pairs else pd.DataFrame({"a": [], "b": [], "kl": [], "se": []})
        df.insert(0, "setting", name)
        frames.append(df)
    return pd.concat(frames, ignore_index=True)


def kl_scale(mm: ModelMap, groups: Mapping[Hashable, Setting], *, unit: str = "bits/byte",
             reference: Mapping[Hashable, str] | None = None) -> pd.DataFrame:
    """The paper's Table 1a for your map: median, mean, SD and count of KL per setting, with SEs.

    Parameters
    ----------
    mm : ModelMap
    groups : mapping
        Setting name → list of ``(a, b)`` model pairs, a :class:`PairRule` (e.g.
        :func:`consecutive_checkpoints`, :func:`differing_only_in`, :func:`original_vs`,
        :func:`child_vs_parent`, :func:`adjacent_layers`, :func:`random_pairs`) or a shorthand
        string (``"consecutive checkpoints"``, ``"pairs differing only in seed"``,
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
        mean KL combining pair SEs and spread: sd/√count), and ``paper_median, paper_mean,
        paper_sd`` in bits/byte where a paper row applies.
    """
    pairs = kl_scale_pairs(mm, groups, unit=unit)
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
                               "mean_se": float(np.std(kl, ddof=1) / np.sqrt(n)) if n > 1 else (float(se[0]) if n else np.nan)}
        ref = (reference or {}).get(name, name if name in PAPER_KL_SCALE.index else None)
        if ref is not None and unit == "bits/byte":
            if ref not in PAPER_KL_SCALE.index:
                raise LoglikMapError(f"no paper row {ref!r}; rows are {list(PAPER_KL_SCALE.index)}")
            row.update({f"paper_{k}": PAPER_KL_SCALE.loc[ref, k] for k in ("median", "mean", "sd")})
        rows.append(row)
    out = pd.DataFrame(rows).set_index("setting")
    out.attrs["units"] = unit
    return out
