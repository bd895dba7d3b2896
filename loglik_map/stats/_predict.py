"""Benchmark scores predicted from map coordinates: ridge regression, cross-validated by model group.

As Oyama et al. (2025, §5; code: shimo-lab/modelmap ``resampling-texts/code_for_prediction``,
``split_data.py`` and ``train_and_pred.py``): the features are the models' centred log-likelihood
vectors (the map's points in nats, weighted columns for a selection of texts); the outer
cross-validation is ``GroupKFold(5, shuffle=True)`` over the model type, so no model type is in
both the training and the test fold; in each outer fold ``RidgeCV(alphas, cv=5)`` picks the
penalty on the training models; predictions are clipped to the score range. scikit-learn does
the regression and the splits (the ``predict`` extra).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._units import nats_per_bit_per_byte
from ..core._modelmap import ModelMap
from ..core._validation import MODEL_DIM
from ..errors import LoglikMapError, LoglikMapWarning, MissingExtraError, WrongTypeError, require_extra

__all__ = ["DEFAULT_ALPHAS", "map_features", "predict_benchmarks"]

#: The authors' penalty grid for benchmark scores (``task_alphas``: 10¹ … 10⁹), for features in nats.
DEFAULT_ALPHAS = tuple(10.0**k for k in range(1, 10))
_PURPOSE = "predicting benchmark scores"


def map_features(mm: ModelMap) -> np.ndarray:
    """The map's points in the authors' units: centred log-likelihoods in nats, shape (K, N).

    ``points × sqrt(2 N B̄ ln 2)`` with ``N`` the size of the text set the map stands for (the
    source set of a resampled selection), so ``‖x_i − x_j‖²`` is the summed squared difference
    over that set and the authors' penalty grid applies unchanged.

    Parameters
    ----------
    mm : ModelMap
        The map.

    Returns
    -------
    numpy.ndarray
        Shape ``(K, N)``, nats: one row per model, its centred log-likelihoods scaled to the full set.
    """
    n = int(mm.matrix.attrs.get("selection_source_n_texts", mm.n_texts) or mm.n_texts)
    return np.asarray(mm.points.values) * math.sqrt(2.0 * n * nats_per_bit_per_byte(mm.mean_bytes))


def _groups(mm: ModelMap, models: np.ndarray, groups: Any) -> np.ndarray | None:
    if groups is None:
        return None
    if isinstance(groups, str):
        if groups not in mm.points.coords or mm.points.coords[groups].dims != (MODEL_DIM,):
            have = [str(c) for c, v in mm.points.coords.items() if v.dims == (MODEL_DIM,) and c != MODEL_DIM]
            raise LoglikMapError(f"the map has no model coordinate {groups!r} to group the folds by (it has {have}); "
                                 "add it with matrix.assign_model_coords, or pass one group label per model")
        values = mm.points.coords[groups].to_series().reindex(models).to_numpy()
    else:
        series = pd.Series(groups) if isinstance(groups, (pd.Series, dict)) else pd.Series(list(groups),
                                                                                         index=mm.models)
        values = series.reindex(models).to_numpy()
    missing = pd.isna(values) | (values == "")
    if missing.any():
        raise LoglikMapError(f"model {models[int(np.argmax(missing))]!r} has no group; every model needs one (its own "
                             "name puts it in a group of its own)")
    return np.asarray(values, dtype=object)


def _outer_folds(ms: Any, n: int, groups: np.ndarray | None, n_splits: int | None,
                 seed: int | None) -> np.ndarray:
    """Outer fold of each model (0 … n_folds − 1)."""
    X = np.zeros((n, 1))
    if groups is None:
        splitter = ms.KFold(n_splits=n_splits or 5, shuffle=True, random_state=seed)
        splits = splitter.split(X)
    else:
        n_groups = len(set(groups))
        if n_splits is None:
            splitter = ms.LeaveOneGroupOut()
        elif n_groups < n_splits:
            raise LoglikMapError(f"{n_groups} groups cannot fill {n_splits} folds; pass n_splits ≤ {n_groups}, or "
                                 "n_splits=None for leave-one-group-out")
        else:
            try:
                splitter = ms.GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
            except TypeError:  # scikit-learn < 1.6 cannot shuffle the groups
                raise MissingExtraError(f"{_PURPOSE} (GroupKFold with shuffle, scikit-learn ≥ 1.6)", "sklearn",
                                        "predict") from None
        splits = splitter.split(X, groups=groups)
    fold = np.full(n, -1, dtype=np.int64)
    for k, (_, test) in enumerate(splits):
        fold[test] = k
    assert (fold >= 0).all()
    return fold


def predict_benchmarks(mm: ModelMap, scores: pd.DataFrame, groups: str | Sequence[Any] | None = "model_type", *,
                       alphas: Sequence[float] = DEFAULT_ALPHAS, n_splits: int | None = 5, inner_cv: int = 5,
                       clip: tuple[float, float] | str | None = "observed", seed: int | None = None) -> xr.Dataset:
    """Predict benchmark scores from map coordinates by ridge regression, cross-validated by model group.

    For every benchmark column: the models are split into outer folds by ``groups`` (no group
    in both training and test), and in each fold ``RidgeCV(alphas, cv=inner_cv)`` is fitted on
    the training models' features (:func:`map_features`) and predicts the test models'.

    Parameters
    ----------
    mm : ModelMap
        The map; its models with scores are used.
    scores : pandas.DataFrame
        Indexed by model name, one numeric column per benchmark; NaN leaves a model out of that
        benchmark's fits and metrics (it keeps its fold). Rows of models not on the map are left
        out, with a warning.
    groups : str, sequence or None, default "model_type"
        A model coordinate of the map, or one label per map model (a sequence in map order, or a
        Series/dict by model name). ``None``: plain shuffled K-fold, which lets near-duplicate
        models sit on both sides of a split (optimistic).
    alphas : sequence of float
        Ridge penalties for the inner search (default: the authors' 10¹ … 10⁹, for features in nats).
    n_splits : int or None, default 5
        Outer folds (``GroupKFold``); ``None``: leave one group out.
    inner_cv : int, default 5
        Folds of the inner ``RidgeCV`` (the authors' 5; a plain K-fold of the training models).
    clip : "observed", (low, high) or None, default "observed"
        Clip predictions to the range of the training fold's scores (``"observed"``), to a fixed
        range (the authors' ``(0, 100)`` for accuracies), or not at all.
    seed : int, optional
        Seed of the outer split's shuffle.

    Returns
    -------
    xarray.Dataset
        Over ``model`` and ``benchmark``: ``predicted`` and ``actual`` (NaN where not scored);
        ``fold`` (outer fold of each model) and the ``group`` coordinate; per benchmark ``r``
        (Pearson, all cross-validated predictions pooled), ``spearman`` and ``rmse``; ``alpha``
        over ``(benchmark, outer_fold)``: the penalty chosen in each fold.

    Examples
    --------
    >>> import numpy as np, pandas as pd, loglik_map as lm
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(8, 300)) * 3
    >>> L = -500 + np.repeat(centres, 4, axis=0) + rng.normal(size=(32, 300))
    >>> names = [f"m{i}" for i in range(32)]
    >>> m = lm.LogLikelihoodMatrix(L, models=names, texts=[f"t{k}" for k in range(300)],
    ...                            n_bytes=np.full(300, 900), model_coords={"model_type": np.repeat(list("abcdefgh"), 4)})
    >>> scores = pd.DataFrame({"bench": 50 + L[:, :10].sum(axis=1) / 10}, index=names)
    >>> out = lm.predict_benchmarks(lm.ModelMap(m), scores, seed=0)
    >>> sorted(out.data_vars)
    ['actual', 'alpha', 'fold', 'predicted', 'r', 'rmse', 'spearman']
    """
    linear_model = require_extra("sklearn.linear_model", "predict", _PURPOSE)
    ms = require_extra("sklearn.model_selection", "predict", _PURPOSE)
    if not isinstance(mm, ModelMap):
        raise WrongTypeError(f"predict_benchmarks needs a ModelMap, got {type(mm).__name__}")
    if not isinstance(scores, pd.DataFrame):
        raise WrongTypeError(f"scores must be a pandas DataFrame indexed by model name, got {type(scores).__name__}")
    if scores.index.has_duplicates:
        raise LoglikMapError(f"scores index models more than once: {sorted(set(scores.index[scores.index.duplicated()]))}")
    numeric = scores.select_dtypes("number")
    if numeric.shape[1] == 0:
        raise LoglikMapError("scores has no numeric benchmark column")
    models = np.array([m for m in mm.models if m in numeric.index and numeric.loc[m].notna().any()], dtype=object)
    mapped = set(mm.models)
    unknown = [str(m) for m in numeric.index if m not in mapped]
    if unknown:
        warnings.warn(f"{len(unknown)} of the {len(numeric)} scored models are not on the map and are left out (first: "
                      f"{unknown[0]!r}); check the names if they should be there", LoglikMapWarning, stacklevel=2)
    if models.size < 4:
        raise LoglikMapError(f"only {models.size} mapped models have scores; cross-validation needs more")
    alphas = tuple(float(a) for a in alphas)
    if not alphas or any(not (math.isfinite(a) and a > 0) for a in alphas):
        raise LoglikMapError(f"alphas must be positive numbers, got {alphas}")
    group = _groups(mm, models, groups)
    fold = _outer_folds(ms, models.size, group, n_splits, seed)
    n_folds = int(fold.max()) + 1
    index = {m: i for i, m in enumerate(mm.models)}
    X = map_features(mm)[[index[m] for m in models]]
    Y = numeric.reindex(models).to_numpy(dtype=np.float64)
    B = Y.shape[1]
    pred = np.full_like(Y, np.nan)
    chosen = np.full((B, n_folds), np.nan)
    for b in range(B):
        y = Y[:, b]
        for k in range(n_folds):
            train = (fold != k) & np.isfinite(y)
            test = (fold == k) & np.isfinite(y)
            if not test.any():
                continue
            if train.sum() < max(inner_cv, 2):
                raise LoglikMapError(f"benchmark {numeric.columns[b]!r}: outer fold {k} leaves {int(train.sum())} "
                                     f"scored training models, fewer than inner_cv = {inner_cv}")
            reg = linear_model.RidgeCV(alphas=alphas, cv=inner_cv).fit(X[train], y[train])
            p = reg.predict(X[test])
            if clip == "observed":
                p = np.clip(p, y[train].min(), y[train].max())
            elif clip is not None:
                p = np.clip(p, float(clip[0]), float(clip[1]))
            pred[test, b] = p
            chosen[b, k] = float(reg.alpha_)
    r, rho, rmse = (np.full(B, np.nan) for _ in range(3))
    for b in range(B):
        ok = np.isfinite(Y[:, b])
        if ok.sum() >= 3 and np.ptp(Y[ok, b]) > 0 and np.ptp(pred[ok, b]) > 0:
            r[b] = float(np.corrcoef(Y[ok, b], pred[ok, b])[0, 1])
            rho[b] = float(pd.Series(Y[ok, b]).corr(pd.Series(pred[ok, b]), method="spearman"))
        rmse[b] = float(np.sqrt(np.mean((Y[ok, b] - pred[ok, b]) ** 2)))
    bench = np.asarray(numeric.columns.astype(str), dtype=object)
    coords: dict[str, Any] = {MODEL_DIM: models, "benchmark": bench, "outer_fold": np.arange(n_folds)}
    if group is not None:
        coords["group"] = (MODEL_DIM, group)
    ds = xr.Dataset(
        {
            "predicted": ((MODEL_DIM, "benchmark"), pred, {"quantity": "cross-validated ridge prediction"}),
            "actual": ((MODEL_DIM, "benchmark"), Y),
            "fold": (MODEL_DIM, fold, {"quantity": "outer fold in which the model was predicted"}),
            "r": ("benchmark", r, {"quantity": "Pearson r of prediction and score, all folds pooled"}),
            "spearman": ("benchmark", rho),
            "rmse": ("benchmark", rmse, {"units": "units of the scores"}),
            "alpha": (("benchmark", "outer_fold"), chosen, {"quantity": "ridge penalty chosen by the inner RidgeCV"}),
        },
        coords=coords,
    )
    ds.attrs = {"groups": groups if isinstance(groups, str) else ("" if groups is None else "given"),
                "outer_cv": "KFold" if group is None else ("LeaveOneGroupOut" if n_splits is None else "GroupKFold"),
                "n_splits": n_folds, "inner_cv": inner_cv, "alphas": list(alphas),
                "clip": clip if isinstance(clip, str) else ("" if clip is None else list(clip)),
                "seed": "" if seed is None else int(seed), "features": "map points in nats (map_features)"}
    return ds
