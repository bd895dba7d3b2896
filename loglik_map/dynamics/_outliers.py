"""Outliers of pretraining trajectories: texts whose log-likelihood jumps, checkpoints off the path.

See :ref:`method-preprocessing`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import numpy as np
import xarray as xr
from scipy import stats

from ..core._groups import ordered_groups, ordered_unique
from ..core._matrix import MODEL_DIM, TEXT_DIM, LogLikelihoodMatrix
from ..errors import LoglikMapError, WrongTypeError

__all__ = ["drop_outlier_texts", "flag_outlier_models", "outlier_text_scores"]


def checked_exclude(matrix: LogLikelihoodMatrix, exclude: Iterable[str] | None) -> np.ndarray:
    """Boolean mask of the excluded models; every name must be in the matrix."""
    names = [str(e) for e in (exclude or ())]
    unknown = sorted(set(names) - set(matrix.models))
    if unknown:
        raise LoglikMapError(f"{len(unknown)} excluded models are not in the matrix, e.g. {unknown[0]!r}; exclude "
                             "checkpoints before removing them, so that no pair bridges over them")
    return np.isin(matrix.models, names)


def checkpoint_groups(matrix: LogLikelihoodMatrix, order: str, by: str | None) -> dict[Hashable, np.ndarray]:
    da = matrix.data
    if order not in da.coords or da[order].dims != (MODEL_DIM,):
        raise LoglikMapError(f"no model coordinate {order!r}")
    if by is not None and (by not in da.coords or da[by].dims != (MODEL_DIM,)):
        raise LoglikMapError(f"no model coordinate {by!r} to separate model families by")
    steps = np.asarray(da[order].values, dtype=float)
    labels = da[by].values.tolist() if by is not None else [0] * matrix.n_models
    return ordered_groups(steps, labels, matrix.models, order, split_hint=by is None)


def jump_scores(values: np.ndarray, steps: np.ndarray, groups: Mapping[Hashable, np.ndarray],
                 excluded: np.ndarray, after: float | None) -> tuple[np.ndarray, int]:
    """Max |Δ log p| per text over consecutive checkpoints ≥ ``after``, skipping pairs with an excluded end."""
    score = np.full(values.shape[1], -np.inf)
    n_pairs = 0
    for idx in groups.values():
        idx = idx[steps[idx] >= (after if after is not None else -np.inf)]
        for a, b in itertools.pairwise(idx):
            if excluded[a] or excluded[b]:
                continue
            score = np.maximum(score, np.abs(values[b] - values[a]))
            n_pairs += 1
    return score, n_pairs


def outlier_text_scores(matrix: LogLikelihoodMatrix, order: str = "step", by: str | None = None,
                        after: float | None = None, *, exclude: Iterable[str] | None = None) -> xr.DataArray:
    """Score(x) = max over trajectories and consecutive saved checkpoints of ``|log p_{t+1}(x) − log p_t(x)|``.

    Parameters
    ----------
    matrix : LogLikelihoodMatrix
        Log-likelihoods in nats (clip first to follow the paper, or use :func:`preprocess_pretraining`).
    order : str
        Numeric model coordinate ordering checkpoints (models where it is NaN are ignored).
    by : str, optional
        Model coordinate separating model families or sizes (each its own sequence of
        checkpoints). Two checkpoints of one family at the same ``order`` are an error.
    after : float, optional
        Only checkpoints with ``order ≥ after`` (skip the warm-up; the paper: 2,000).
    exclude : iterable of str, optional
        Checkpoints to leave out. As in the authors' ``preprocess.py``, both pairs that touch an
        excluded checkpoint are skipped — its neighbours are never differenced with each other.
        Removing a checkpoint from the matrix instead would create such a two-step pair.

    Returns
    -------
    xarray.DataArray
        Over ``text``, nats; large values mark texts whose log-likelihood jumps between checkpoints.
        attrs record ``after``, ``n_pairs`` and ``n_excluded``.
    """
    excluded = checked_exclude(matrix, exclude)
    groups = checkpoint_groups(matrix, order, by)
    steps = np.asarray(matrix.data[order].values, dtype=float)
    score, n_pairs = jump_scores(matrix.values, steps, groups, excluded, after)
    if n_pairs == 0:
        raise LoglikMapError("no two consecutive checkpoints to compare (check order=, by=, after= and exclude=)")
    return xr.DataArray(score, dims=(TEXT_DIM,), coords={TEXT_DIM: matrix.texts},
                        attrs={"units": "nats", "after": after if after is not None else math.nan, "n_pairs": n_pairs,
                               "n_excluded": int(excluded.sum())},
                        name="outlier_score")


def top_texts(scores: xr.DataArray, n: int) -> np.ndarray:
    """Positions of the ``n`` highest scores, highest first (ties: earlier text first)."""
    return np.argsort(-scores.values, kind="stable")[:n]


def n_to_drop(n_texts: int, n: int | None, fraction: float | None) -> int:
    if (n is None) == (fraction is None):
        raise LoglikMapError("give exactly one of n and fraction")
    if fraction is not None:
        if not 0 <= fraction < 1:
            raise LoglikMapError(f"fraction must be in [0, 1), got {fraction}")
        n = round(fraction * n_texts)
    assert n is not None
    if not 0 <= n < n_texts:
        raise LoglikMapError(f"cannot drop {n} of {n_texts} texts")
    return n


def drop_outlier_texts(matrix: LogLikelihoodMatrix, n: int | None = None, fraction: float | None = None, *,
                       scores: xr.DataArray | None = None, **score_options) -> LogLikelihoodMatrix:
    """Remove the ``n`` (or ``fraction`` of) texts with the highest :func:`outlier_text_scores`.

    The paper removes the top 300 of 10,000 (3 %). ``score_options`` (``order``, ``by``,
    ``after``, ``exclude``) go to :func:`outlier_text_scores`; excluded checkpoints stay in the
    returned matrix (:func:`preprocess_pretraining` does the whole procedure).

    Parameters
    ----------
    matrix : LogLikelihoodMatrix
        Log-likelihoods of trajectories' checkpoints (nats).
    n : int, optional
        Number of texts to drop.
    fraction : float, optional
        Or the fraction of texts to drop, in [0, 1) (give exactly one of ``n`` and ``fraction``).
    scores : xarray.DataArray, optional
        Precomputed :func:`outlier_text_scores` (otherwise computed here).
    **score_options
        Passed to :func:`outlier_text_scores`.

    Returns
    -------
    LogLikelihoodMatrix
        The matrix without the highest-scoring texts.
    """
    n = n_to_drop(matrix.n_texts, n, fraction)
    if scores is None:
        scores = outlier_text_scores(matrix, **score_options)
    if n == 0:
        return matrix
    return matrix.drop_texts(list(scores[TEXT_DIM].values[top_texts(scores, n)]))


def flag_outlier_models(steps: xr.Dataset | Any, *, threshold: float = 5.0, neighbours: int = 5,
                        group: Hashable | None = None) -> xr.Dataset:
    """Flag checkpoints whose consecutive KL (or weight distance) spikes against their neighbours.

    For every transition, ``z = (log d − median) / MAD`` over the ``neighbours`` transitions on
    each side, with the MAD scaled to a normal SD (:func:`scipy.stats.median_abs_deviation`,
    ``scale="normal"``; log, because distances shrink by orders of magnitude along training). A
    checkpoint is flagged when both its incoming and outgoing transitions have ``z > threshold``
    — a point off the path, like Pythia-1B step 116k. Excluded points and gaps of the trajectory
    are never bridged: a point next to one has no z.

    Parameters
    ----------
    steps : xarray.Dataset or Trajectory
        Consecutive distances, as :meth:`Trajectory.step_kl <loglik_map.Trajectory.step_kl>`
        returns them (a trajectory is replaced by its ``step_kl()``).
    threshold : float, default 5.0
        Robust z-score above which a transition spikes.
    neighbours : int, default 5
        Transitions on each side that a transition is compared with.
    group : optional
        Only this trajectory (default: every one).

    Returns
    -------
    xarray.Dataset
        Over ``model`` (interior points of each trajectory): ``z_in``, ``z_out``, ``flagged``,
        with ``group`` and position (``step``, or the trajectory's ``order``) coordinates.
    """
    if hasattr(steps, "step_kl"):
        steps = steps.step_kl()
    if not isinstance(steps, xr.Dataset) or "kl" not in steps or "model_next" not in steps.coords:
        raise WrongTypeError(f"flag_outlier_models needs the consecutive distances of Trajectory.step_kl(), got "
                             f"{type(steps).__name__}")
    order = str(steps.attrs.get("order", "step"))
    labels = steps["group"].values
    rows = []
    for g in (ordered_unique(labels) if group is None else [group]):
        sel = np.flatnonzero(labels == g)
        d = steps["kl"].values[sel]
        if d.size < 3:
            continue
        z = _spike_scores(np.log(np.maximum(d, np.finfo(float).tiny)), neighbours)
        for k in range(1, d.size):
            model = steps["model"].values[sel[k]]
            if steps["model_next"].values[sel[k - 1]] != model:
                continue  # an excluded point or a gap between the two transitions
            rows.append((g, model, steps[order].values[sel[k]], z[k - 1], z[k]))
    if not rows:
        raise LoglikMapError("trajectories need at least 4 points to look for outliers")
    gs, m, s, zin, zout = (np.array(column) for column in zip(*rows))
    flagged = (zin > threshold) & (zout > threshold)
    return xr.Dataset({"z_in": (MODEL_DIM, zin.astype(float)), "z_out": (MODEL_DIM, zout.astype(float)),
                       "flagged": (MODEL_DIM, flagged)},
                      coords={MODEL_DIM: m.astype(object), "group": (MODEL_DIM, gs.astype(object)),
                              order: (MODEL_DIM, s.astype(float))},
                      attrs={"threshold": threshold})


def _spike_scores(logd: np.ndarray, neighbours: int) -> np.ndarray:
    """Robust z of every entry against the ``neighbours`` entries on each side (itself left out)."""
    z = np.zeros(logd.size)
    for k in range(logd.size):
        lo, hi = max(0, k - neighbours), min(logd.size, k + neighbours + 1)
        ref = np.delete(logd[lo:hi], k - lo)
        med = np.median(ref)
        mad = stats.median_abs_deviation(ref, scale="normal")
        z[k] = (logd[k] - med) / mad if mad > 0 else (np.inf if logd[k] > med else 0.0)
    return z
