"""The map's KL estimate beside the exact token-level KL on the same texts (issue 15).

:func:`estimator_vs_exact` takes a model map, the texts it was scored on and pairs of its models;
for every pair whose two models share a vocabulary it runs :func:`~loglik_map.exact_kl` and
puts, in bits/byte, the map's KL ± SE next to the exact forward, backward and symmetric KL
(± SE over texts) with the ratio estimate / exact and its SE. Pairs that do not share a
vocabulary keep a row whose ``reason`` says why.

What the two numbers are (both in bits/byte, averaged over texts the same way):

* the map's KL ``var_k(ℓ_a(x_k) − ℓ_b(x_k)) / (2 B̄ ln 2)`` — a sequence-level estimate from one
  log-likelihood per text (:ref:`method-map`); it equals KL(P_a‖P_b) in the limit where texts are drawn
  from a distribution close to both models and the log-likelihood ratio is small;
* the exact (teacher-forced) KL ``mean_k Σ_t KL(p_a(·|x_k,<t) ‖ p_b(·|x_k,<t)) / (B̄ ln 2)``:
  the chain rule of the sequence-level KL, but with the prefixes x_<t of the corpus texts instead
  of samples from p_a.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from .._progress import PROGRESS_DOC, ProgressArg
from .._units import LN2
from .._util import fill_doc
from ..core._groups import ordered_unique
from ..core._matrix import LogLikelihoodMatrix
from ..core._modelmap import ModelMap
from ..errors import LoglikMapError, LoglikMapWarning, WrongTypeError
from ..texts import TextSet
from ._exact_kl import VocabularyMismatch, exact_kl
from ._settings import Execution, Loading, Windowing, check_group

__all__ = ["estimator_vs_exact"]

_COLUMNS = ("setting", "a", "b", "map_kl", "map_se", "exact_sym", "exact_sym_se", "exact_ab", "exact_ab_se",
            "exact_ba", "exact_ba_se", "ratio", "ratio_se", "rerun_kl", "loglik_mismatch", "token_kl_ab", "same_top", "reason")
_DTYPES = ("float32", "bfloat16", "float16")


def _aligned(mm: ModelMap, texts: TextSet) -> TextSet:
    """``texts`` in the map's order, every text of the map present with its byte length."""
    where = {t: i for i, t in enumerate(texts.ids)}
    missing = [t for t in mm.matrix.texts if t not in where]
    if missing:
        raise LoglikMapError(f"{len(missing)} text(s) of the map are not among the texts given (first: {missing[0]!r}); "
                             "pass the TextSet the map was scored on")
    sub = texts[[where[t] for t in mm.matrix.texts]]
    assert isinstance(sub, TextSet)  # a list of positions selects a TextSet
    if np.any(sub.n_bytes != mm.matrix.n_bytes):
        raise LoglikMapError("the texts' byte lengths differ from the map's; pass the TextSet the map was scored on")
    return sub


def _coord(mm: ModelMap, name: str, i: int) -> Any:
    c = mm.points.coords
    return c[name].values[i] if name in c and c[name].dims == ("model",) else None


def _spec_of(mm: ModelMap, model: str, groups: dict[str, Any]) -> tuple[tuple, dict[str, Any], int | None]:
    """How to load a map row: (loader key, ModelSpec arguments, logit-lens layer) from its coordinates.

    The row's dtype, quantization, convention and long-text mode (how it was scored) are taken
    from its coordinates; every other setting from the groups given.
    """
    i = int(np.flatnonzero(mm.models == model)[0])
    source = _coord(mm, "source_model", i)
    if not isinstance(source, str) or not source:
        raise LoglikMapError(f"model {model!r} has no source_model coordinate; say how to load it with "
                             "models={name: folder, hub id, ModelSpec or HFScorer}")
    revision = _coord(mm, "revision", i) or None
    quant = _coord(mm, "quantization", i)
    quant = None if quant in (None, "", "none") else str(quant)
    dtype = _coord(mm, "dtype", i)
    dtype = dtype if quant is None and dtype in _DTYPES else "auto"
    layer = _coord(mm, "layer", i)
    layer = None if layer is None or (isinstance(layer, float) and math.isnan(layer)) else int(layer)
    scored = {k: v for k in ("convention", "long_texts") if isinstance(v := _coord(mm, k, i), str) and v}
    loading = replace(groups["loading"] or Loading(), dtype=dtype, quantization=quant)
    windowing = replace(groups["windowing"] or Windowing(), **scored)
    args = dict(model=source, revision=revision, loading=loading, windowing=windowing, execution=groups["execution"])
    key = (source, revision, repr(loading), repr(windowing))
    return key, args, layer


def _loaders(mm: ModelMap, names: list[str], models: Mapping[str, Any] | None,
             groups: dict[str, Any]) -> dict[str, tuple[Any, int | None, bool]]:
    """Map row → (scorer, layer, built here); rows of one model (its layers, duplicates) share one scorer."""
    from ._hf import HFScorer
    from ._runs import ModelSpec

    scorers: dict[Hashable, Any] = {}
    out = {}
    made = set()  # scorers built here (unloaded when done); the caller's own are left loaded
    for name in names:
        given = (models or {}).get(name)
        if given is None:
            key, args, layer = _spec_of(mm, name, groups)
            if key not in scorers:
                scorers[key] = ModelSpec(**args).scorer()
                made.add(id(scorers[key]))
        else:
            spec, layer = given if isinstance(given, tuple) else (given, None)
            key = ("given", id(spec))
            if key not in scorers:
                scorers[key] = spec if isinstance(spec, HFScorer) else ModelSpec.coerce(spec).scorer(**groups)
                if not isinstance(spec, HFScorer):
                    made.add(id(scorers[key]))
        out[name] = (scorers[key], layer, id(scorers[key]) in made)
    return out


def _ratio_se(t: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    """mean(t) / mean(e) and its delta-method SE with the texts as independent draws."""
    r = float(t.mean() / e.mean())
    return r, float(np.sqrt(np.sum((t - r * e) ** 2)) / (t.size * e.mean()))


#: Largest difference (nats per byte of a text) between the map's log-likelihoods and those of the
#: exact-KL run before the two are said to be computed on different tokens.
MISMATCH_NATS_PER_BYTE = 1e-3


def _mismatch(mm: ModelMap, setting: str, names: tuple[str, str], rerun: tuple[np.ndarray, np.ndarray]) -> float:
    """Largest |ℓ_map − ℓ_exact| over both models and all texts, nats per byte; warned when large."""
    floor = float(mm.matrix.attrs.get("clip_value_nats", -np.inf))  # clipped entries are not comparable
    worst = 0.0
    for n, r in zip(names, rerun):
        row = mm.matrix.values[mm._index(n)]
        kept = row > floor
        worst = max(worst, float(np.max(np.abs(row - r)[kept] / mm.matrix.n_bytes[kept], initial=0.0)))
    if worst > MISMATCH_NATS_PER_BYTE:
        where = f" ({setting})" if setting else ""
        warnings.warn(f"{names[0]} vs {names[1]}{where}: the exact KL's log-likelihoods differ from the map's by up to "
                      f"{worst:.3g} nats per byte, so the two were computed on different tokens or with different "
                      "weights (max_length, long_texts, dtype or device not as when the map was scored); pass "
                      "models= and scoring options that reproduce the map (see the loglik_mismatch column)",
                      LoglikMapWarning, stacklevel=3)
    return worst


def _resolve(mm: ModelMap, spec: Any) -> list[tuple[str, str]]:
    """The pairs of one setting: a pair rule (any callable on a map, e.g. :func:`~loglik_map.child_vs_parent`)
    or a list of ``(a, b)``."""
    if isinstance(spec, str):
        raise WrongTypeError(f"pairs {spec!r}: give a pair rule such as loglik_map.child_vs_parent('base_model') "
                             "or a list of (a, b) model pairs")
    if callable(spec):
        return [(str(a), str(b)) for a, b in spec(mm)]
    return [(str(a), str(b)) for a, b in spec]


@fill_doc(progress=PROGRESS_DOC)
def estimator_vs_exact(source: ModelMap | LogLikelihoodMatrix, texts: TextSet | Sequence[str], pairs: Any, *,
                       models: Mapping[str, Any] | None = None, progress: ProgressArg = False,
                       loading: Loading | None = None, windowing: Windowing | None = None,
                       execution: Execution | None = None) -> pd.DataFrame:
    """The map's KL ± SE beside the exact token-level KL on the same texts, for pairs sharing a vocabulary.

    Parameters
    ----------
    source : ModelMap or LogLikelihoodMatrix
        The map (as given: clipped or not; its KL is :meth:`ModelMap.compare`'s).
    texts : TextSet or sequence of str
        The texts the map was scored on (a superset is fine; they are matched by id).
    pairs : list of (a, b), PairRule, or mapping
        Model pairs (as :func:`~loglik_map.kl_scale` takes them); a mapping ``{setting: pairs}``
        labels the rows by setting. ``a`` is the reference of the exact KL (``exact_ab`` is
        KL(a‖b)).
    models : mapping, optional
        How to load map rows: ``{row name: folder, hub id, ModelSpec or HFScorer}``, or
        ``(that, layer)`` for a logit-lens row. By default a row is loaded from its scoring
        coordinates (``source_model``, ``revision``, ``quantization``, ``dtype``, ``layer``,
        ``convention``, ``long_texts``), as :class:`~loglik_map.HFScorer` records them.
    progress : bool, callable or None, default False
        Progress over the exact-KL batches, one pair after another.
        {progress}
    loading, windowing, execution : Loading, Windowing, Execution, optional
        Settings of the models loaded here (:class:`~loglik_map.scoring.Loading`, ...: ``device``,
        ``batch_tokens``, …). A row loaded from its coordinates keeps its own dtype,
        quantization, convention and long-text mode (how it was scored).

    Returns
    -------
    pandas.DataFrame
        One row per pair, in bits/byte: ``map_kl``, ``map_se``; ``exact_sym`` (½(KL_ab + KL_ba)),
        ``exact_ab``, ``exact_ba`` with SEs over texts; ``ratio`` = map_kl / exact_sym and its
        paired delta-method ``ratio_se``; ``loglik_mismatch``, the largest difference between the
        map's log-likelihoods and the exact-KL run's (nats per byte; above
        :data:`MISMATCH_NATS_PER_BYTE` it is warned about: the two saw different tokens or
        weights); ``rerun_kl``, the map's estimator on the log-likelihoods
        of this run (unclipped); ``token_kl_ab`` (mean per-token KL(a‖b), nats) and ``same_top``;
        ``reason`` (why a pair has no exact value, else ""). Models are loaded once and unloaded
        when no later pair needs them; layers of one model share its forward passes.
    """
    mm = source if isinstance(source, ModelMap) else ModelMap(source)
    aligned = _aligned(mm, TextSet.coerce(texts))
    groups = pairs if isinstance(pairs, Mapping) else {"": pairs}
    todo = [(setting, a, b) for setting, spec in groups.items() for a, b in _resolve(mm, spec)]
    names = [str(n) for n in ordered_unique([n for _, a, b in todo for n in (a, b)])]
    for n in names:
        mm._index(n)  # unknown names: an error now, not after hours of scoring
    groups = {"loading": check_group(loading, Loading, "estimator_vs_exact"),
              "windowing": check_group(windowing, Windowing, "estimator_vs_exact"),
              "execution": check_group(execution, Execution, "estimator_vs_exact")}
    load = _loaders(mm, names, models, groups)
    last_use = {id(load[n][0]): k for k, (_, a, b) in enumerate(todo) for n in (a, b)}
    L = mm.matrix.values
    scale = mm.mean_bytes * LN2
    rows = []
    for k, (setting, a, b) in enumerate(todo):
        est = mm.compare(a, b)
        row: dict[str, Any] = dict.fromkeys(_COLUMNS, math.nan)
        row.update(setting=setting, a=a, b=b, map_kl=est.kl, map_se=est.se, reason="")
        (sa, la, _), (sb, lb, _) = load[a], load[b]
        try:
            ds = exact_kl(sa, sb, aligned, layer_a=la, layer_b=lb, progress=progress)
        except VocabularyMismatch as err:
            row["reason"] = str(err)
        else:
            for d in ("sym", "ab", "ba"):
                row[f"exact_{d}"] = float(ds[f"kl_{d}_bits_per_byte"])
                row[f"exact_{d}_se"] = float(ds[f"kl_{d}_bits_per_byte_se"])
            u = L[mm._index(a)] - L[mm._index(b)]
            row["ratio"], row["ratio_se"] = _ratio_se((u - u.mean()) ** 2 / 2, ds.kl_sym.values)
            row["rerun_kl"] = float(np.var(ds.logp_a.values - ds.logp_b.values)) / (2 * scale)
            row["loglik_mismatch"] = _mismatch(mm, setting, (a, b), (ds.logp_a.values, ds.logp_b.values))
            row["token_kl_ab"] = float(ds.token_kl_ab_mean)
            row["same_top"] = float(ds.same_top)
        for name in (a, b):
            scorer, _, made = load[name]
            if made and last_use[id(scorer)] == k and scorer._loaded is not None:
                scorer.unload()
        rows.append(row)
    out = pd.DataFrame(rows, columns=list(_COLUMNS))
    out.attrs.update(units="bits/byte", n_texts=mm.n_texts, mean_bytes=mm.mean_bytes)
    return out
