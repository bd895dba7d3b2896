"""The KL scale: KL divergences summarised per setting, beside the paper's Table 1a (:ref:`method-scale`)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._units import nats_per_bit_per_byte
from ..core._floor import below_floor, floor_bits_per_byte
from ..core._matrix import LogLikelihoodMatrix
from ..core._modelmap import ModelMap
from ..dynamics._preprocessing import PreprocessingResult, preprocess_pretraining
from ..errors import LoglikMapError, WrongTypeError
from ._pairs import (
    Pair,
    PairRule,
)

__all__ = ["PAPER_KL_SCALE", "KLSetting", "PretrainingPreprocessing", "kl_scale", "kl_scale_pairs"]

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

Setting = Sequence[Pair] | PairRule


def _frozen_criteria(models: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    if models is None:
        return ()
    if not isinstance(models, Mapping):
        raise WrongTypeError(f"models= must map model coordinates to values, e.g. {{'run': ['410m', '1b']}}, "
                             f"got {type(models).__name__}")
    return tuple((str(k), tuple(v) if isinstance(v, (list, tuple, set, np.ndarray)) else v)
                 for k, v in sorted(models.items()))


@dataclass(frozen=True)
class PretrainingPreprocessing:
    """A setting's own preprocessing for :func:`kl_scale`.

    :func:`~loglik_map.preprocess_pretraining` of the models selected by ``models`` (criteria
    for :meth:`LogLikelihoodMatrix.where_models`, e.g. ``{"run": ["410m", "1b"]}``; all models
    when None), with the other fields as its options.

    Settings that share one recipe (equal fields) share one preprocessing: the paper's
    Early, Later and model-size settings use the same cleaned matrix of the five main runs, its
    seed setting a second one of the seed runs only (their own clip, outlier texts and B̄).

    Attributes
    ----------
    models : mapping, optional
        Criteria for :meth:`LogLikelihoodMatrix.where_models`; all models when None.
    exclude, order, by, clip, after, drop_fraction, drop_n
        Options of :func:`~loglik_map.preprocess_pretraining` (same meanings and defaults).
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

    def apply(self, matrix: LogLikelihoodMatrix) -> PreprocessingResult:
        """Run the preprocessing on ``matrix``'s selected models.

        Parameters
        ----------
        matrix : LogLikelihoodMatrix
            Log-likelihoods (nats) containing the selected models.

        Returns
        -------
        PreprocessingResult
            The preprocessed matrix with what was dropped and why.
        """
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
        raise LoglikMapError(f"setting {spec!r} is a string; give a pair rule such as "
                             "lm.consecutive_checkpoints('step', by='run') or a list of (a, b) model pairs")
    if isinstance(spec, PairRule):
        return spec(mm)
    return [tuple(p) for p in spec]  # type: ignore[misc]


def _describe_pairs(spec: Setting) -> str:
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


def _evaluate(source: ModelMap | LogLikelihoodMatrix, groups: Mapping[Any, Setting | KLSetting],
              unit: str) -> tuple[pd.DataFrame, dict[Hashable, dict[str, Any]]]:
    if not isinstance(source, (ModelMap, LogLikelihoodMatrix)):
        raise WrongTypeError(f"kl_scale needs a LogLikelihoodMatrix or ModelMap, got {type(source).__name__}")
    cache: dict = {}
    frames, info = [], {}
    for name, spec in groups.items():
        setting = spec if isinstance(spec, KLSetting) else KLSetting(spec)
        prepared = _prepare(source, setting.preprocessing, cache)
        mm = prepared.map
        pairs = _resolve(mm, setting.pairs)
        columns = ["a", "b", "kl", "se"]
        df = mm.summary(pairs, unit=unit)[columns] if pairs else pd.DataFrame({c: [] for c in columns})
        df.insert(0, "setting", name)
        frames.append(df)
        info[name] = {"pairs": _describe_pairs(setting.pairs), "preprocessing": prepared.description,
                      "n_texts": mm.n_texts, "mean_bytes": mm.mean_bytes}
    return pd.concat(frames, ignore_index=True), info


def kl_scale_pairs(source: ModelMap | LogLikelihoodMatrix, groups: Mapping[Any, Setting | KLSetting], *,
                   unit: str = "bits/byte") -> pd.DataFrame:
    """Every pair of every setting with its KL and SE (settings and preprocessing as for :func:`kl_scale`).

    Parameters
    ----------
    source : ModelMap or LogLikelihoodMatrix
        The models.
    groups : mapping
        Setting name → pairs, a :class:`PairRule` or a :class:`KLSetting`.
    unit : {"bits/byte", "nats"}
        Unit of ``kl`` and ``se``.

    Returns
    -------
    pandas.DataFrame
        Columns ``setting, a, b, kl, se``, one row per pair.
    """
    return _evaluate(source, groups, unit)[0]


def kl_scale(source: ModelMap | LogLikelihoodMatrix, groups: Mapping[Any, Setting | KLSetting], *,
             unit: str = "bits/byte", reference: Mapping[Any, str] | None = None, floor: Any = None) -> pd.DataFrame:
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
    floor : float or xarray.Dataset, optional
        The numerics floor in bits/byte, or a :func:`~loglik_map.numerics_floor` result: adds
        ``floor`` (in ``unit``, with each setting's B̄ for ``"nats"``) and ``n_below_floor``, the
        setting's pairs whose ``kl + 2 se`` lies below it (they differ less than a model differs
        from itself under other numerics).

    Returns
    -------
    pandas.DataFrame
        Indexed by setting: ``count, median, mean, sd, median_se, mean_se`` — ``median_se`` is the
        median of the pairs' own SEs (text sampling: the typical uncertainty of one pair's KL, not
        an SE of the median), ``mean_se`` = sd/√count, the SE of the mean over the sampling of
        pairs (their spread includes the text-sampling noise); both are about the estimator's
        values, not the exact KLs (:ref:`method-se`); what was measured — ``pairs`` (the
        rule), ``preprocessing`` (as given, or what the setting's own preprocessing excluded,
        clipped and dropped), ``n_texts`` and ``mean_bytes`` (B̄ the KLs are scaled with); and
        ``paper_median, paper_mean, paper_sd`` in bits/byte where a paper row applies; ``floor``
        and ``n_below_floor`` with ``floor=``.

    References
    ----------
    *Establishing a Scale for Kullback–Leibler Divergence in Language Models Across Various
    Settings* (ACL submission; :ref:`method-references`), §3 and Table 1a.
    """
    pairs, info = _evaluate(source, groups, unit)
    floor_bits = None if floor is None else floor_bits_per_byte(floor)
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
        if floor_bits is not None:
            row["floor"] = floor_bits if unit == "bits/byte" else floor_bits * nats_per_bit_per_byte(info[name]["mean_bytes"])
            row["n_below_floor"] = int(below_floor(kl, se, row["floor"]).sum())
        rows.append(row)
    out = pd.DataFrame(rows).set_index("setting")
    out.attrs["units"] = unit
    if floor_bits is not None:
        out.attrs["floor"] = floor_bits
    return out
