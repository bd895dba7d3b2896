"""Outlier texts and outlier checkpoints (SPEC §3, App. E.1)."""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import xarray as xr

from .errors import LoglikMapError
from .matrix import MODEL_DIM, TEXT_DIM, LogLikelihoodMatrix
from .trajectory import Trajectory

__all__ = ["outlier_text_scores", "drop_outlier_texts", "flag_outlier_models"]


def outlier_text_scores(matrix: LogLikelihoodMatrix, order: str = "step", by: str | None = None,
                        after: float | None = None) -> xr.DataArray:
    """Score(x) = max over trajectories and consecutive saved checkpoints of ``|log p_{t+1}(x) − log p_t(x)|``.

    Parameters
    ----------
    matrix : LogLikelihoodMatrix
    order : str
        Numeric model coordinate ordering checkpoints (models where it is NaN are ignored).
    by : str, optional
        Model coordinate separating model families (each its own sequence of checkpoints).
    after : float, optional
        Only checkpoints with ``order ≥ after`` (skip the warm-up).

    Returns
    -------
    xarray.DataArray
        Over ``text``, nats; large values mark texts whose log-likelihood jumps between checkpoints.
    """
    da = matrix.data
    if order not in da.coords or da[order].dims != (MODEL_DIM,):
        raise LoglikMapError(f"no model coordinate {order!r}")
    steps = da[order].values.astype(float)
    labels = da[by].values if by is not None else np.zeros(matrix.n_models)
    L = matrix.values
    score = np.full(matrix.n_texts, -np.inf)
    n_pairs = 0
    for g in dict.fromkeys(labels.tolist()):
        idx = np.flatnonzero((labels == g) & np.isfinite(steps) & (steps >= (after if after is not None else -np.inf)))
        idx = idx[np.argsort(steps[idx], kind="stable")]
        if idx.size >= 2:
            score = np.maximum(score, np.max(np.abs(np.diff(L[idx], axis=0)), axis=0))
            n_pairs += idx.size - 1
    if n_pairs == 0:
        raise LoglikMapError("no two consecutive checkpoints to compare")
    return xr.DataArray(score, dims=(TEXT_DIM,), coords={TEXT_DIM: matrix.texts}, attrs={"units": "nats"},
                        name="outlier_score")


def drop_outlier_texts(matrix: LogLikelihoodMatrix, n: int | None = None, fraction: float | None = None, *,
                       scores: xr.DataArray | None = None, **score_options) -> LogLikelihoodMatrix:
    """Remove the ``n`` (or ``fraction`` of) texts with the highest :func:`outlier_text_scores`.

    The paper removes the top 300 of 10,000 (3 %).
    """
    if (n is None) == (fraction is None):
        raise LoglikMapError("give exactly one of n and fraction")
    if fraction is not None:
        if not 0 <= fraction < 1:
            raise LoglikMapError(f"fraction must be in [0, 1), got {fraction}")
        n = int(round(fraction * matrix.n_texts))
    if not 0 <= n < matrix.n_texts:
        raise LoglikMapError(f"cannot drop {n} of {matrix.n_texts} texts")
    if scores is None:
        scores = outlier_text_scores(matrix, **score_options)
    if n == 0:
        return matrix
    worst = np.argsort(-scores.values, kind="stable")[:n]
    return matrix.drop_texts(list(scores[TEXT_DIM].values[worst]))


def flag_outlier_models(trajectory: Trajectory, *, threshold: float = 5.0, neighbours: int = 5,
                        group: Hashable | None = None) -> xr.Dataset:
    """Flag checkpoints whose consecutive KL (or weight distance) spikes against their neighbours.

    For every transition, ``z = (log d − median) / (1.4826 · MAD)`` over the ``neighbours``
    transitions on each side (log, because distances shrink by orders of magnitude along
    training). A checkpoint is flagged when both its incoming and outgoing transitions have
    ``z > threshold`` — a point off the path, like Pythia-1B step 116k.

    Returns
    -------
    xarray.Dataset
        Over ``model`` (interior points of each trajectory): ``z_in``, ``z_out``, ``flagged``,
        with ``group`` and ``step`` coordinates.
    """
    steps = trajectory.step_kl()
    rows = []
    groups = trajectory.groups if group is None else [group]
    for g in groups:
        sel = np.flatnonzero(steps["group"].values == g)
        d = steps["kl"].values[sel]
        if d.size < 3:
            continue
        logd = np.log(np.maximum(d, np.finfo(float).tiny))
        z = np.zeros(d.size)
        for k in range(d.size):
            lo, hi = max(0, k - neighbours), min(d.size, k + neighbours + 1)
            ref = np.delete(logd[lo:hi], k - lo)
            med = np.median(ref)
            mad = 1.4826 * np.median(np.abs(ref - med))
            z[k] = (logd[k] - med) / mad if mad > 0 else (np.inf if logd[k] > med else 0.0)
        for k in range(1, d.size):
            model = steps["model"].values[sel[k]]
            rows.append((g, model, steps["step"].values[sel[k]], z[k - 1], z[k]))
    if not rows:
        raise LoglikMapError("trajectories need at least 4 points to look for outliers")
    g, m, s, zin, zout = map(np.array, zip(*rows))
    flagged = (zin > threshold) & (zout > threshold)
    return xr.Dataset({"z_in": (MODEL_DIM, zin.astype(float)), "z_out": (MODEL_DIM, zout.astype(float)),
                       "flagged": (MODEL_DIM, flagged)},
                      coords={MODEL_DIM: m.astype(object), "group": (MODEL_DIM, g.astype(object)),
                              "step": (MODEL_DIM, s.astype(float))},
                      attrs={"threshold": threshold})
