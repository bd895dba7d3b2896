"""Uncertainty of diffusion exponents and the Hölder exponent from text sampling (issue 15).

A diffusion exponent c_q(t0) is fitted to displacements ‖q_t − q_t0‖² on the model map, and
every displacement is a sum over the same N texts, so the points of one fit share their errors.
The regression's own interval (Student t on the log–log residuals, :class:`PowerLawFit`) sees
only how far the points scatter about the line, not that a different sample of texts would move
them together. The bootstrap here resamples texts: each replicate draws N texts with replacement
(multinomial counts ``w``), recentres every coordinate difference over the drawn texts —
``d* = Σ_k w_k D_k² − (Σ_k w_k D_k)² / N`` for ``D = q_t − q_t0`` — and refits every window; the
percentile interval of the refitted exponents is reported beside the regression's. (Rescaling by
the replicate's B̄ multiplies all displacements by one factor and leaves exponents unchanged.)

Weight-space displacements do not depend on the texts: c_w keeps its regression interval, and
α = c_q / c_w is bootstrapped through c_q with c_w fixed. Calibration against fractional
Brownian motion (exact c = 2H, one independent coordinate per text, so the path's exponent and the
process's agree) is in ``tests/dynamics/test_uncertainty.py`` and on the documentation page
"Exact KL beside the estimator".

What the intervals cover: the bootstrap redraws texts and nothing else, so its target is the
exponent of *this* trajectory (these checkpoints of this run) as the whole population of texts
would measure it — text-sampling uncertainty only. It is not an interval for the exponent of the
training process that produced the run (another seed, another run): where a trajectory carries
few effective dimensions its own exponent can be far from the process's (on one low-dimensional
fractional Brownian path, outside checks found the interval covering the path's exponent 93 % of
the time and the process's 2H 17 %). The regression interval's target is the same exponent, and it
also leaves out that the points of a fit move together.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from scipy import stats

from .._util import fill_doc
from ..core._results import ConfidenceInterval
from ..errors import LoglikMapError
from ._fits import PowerLawFit, holder_exponent

if TYPE_CHECKING:
    from ._trajectory import Trajectory

__all__ = ["BootstrapEstimate", "exponent_interval", "exponent_intervals", "holder_interval"]

_BLOCK_BYTES = 64 * 2**20  # coordinate differences held at once by the bootstrap


@dataclass(frozen=True)
class BootstrapEstimate:
    """An exponent with its bootstrap-over-texts interval and, beside it, the analytic one.

    Both intervals measure text-sampling uncertainty only: their target is the exponent of this
    trajectory on the whole population of texts, not that of the process that produced it
    (:mod:`loglik_map.dynamics._uncertainty`).

    Attributes
    ----------
    quantity : str
        What was estimated (e.g. ``"c_q(t0 = 2000)"``, ``"α = c_q / c_w"``).
    estimate : float
        The estimate on all texts.
    low, high : float
        Percentile bootstrap interval at ``confidence_level``.
    se : float
        Standard deviation of the bootstrap replicates.
    reference_low, reference_high : float
        The analytic interval at the same level: the regression's Student-t interval for an
        exponent, the delta-method interval of :class:`~loglik_map.results.HolderEstimate` for α.
    confidence_level : float
    n_boot : int
        Replicates drawn; ``n_valid`` of them gave a fit (a replicate with fewer than two positive
        displacements in the window gives none).
    n_valid : int
    seed : int or None
        Seed of ``numpy.random.default_rng`` that drew the replicates.
    """

    quantity: str
    estimate: float
    low: float
    high: float
    se: float
    reference_low: float
    reference_high: float
    confidence_level: float
    n_boot: int
    n_valid: int
    seed: int | None

    def confidence_interval(self) -> ConfidenceInterval:
        """The bootstrap interval.

        Returns
        -------
        ConfidenceInterval
            ``[low, high]`` at :attr:`confidence_level`.
        """
        return ConfidenceInterval(self.low, self.high)

    def __str__(self) -> str:
        pct = f"{100 * self.confidence_level:g} %"
        return (f"{self.quantity} = {self.estimate:.4g}; {pct} bootstrap over texts [{self.low:.4g}, {self.high:.4g}] "
                f"(SE {self.se:.2g}, {self.n_valid}/{self.n_boot} replicates, seed {self.seed}); analytic "
                f"[{self.reference_low:.4g}, {self.reference_high:.4g}]")


def _check(n_boot: int, confidence_level: float) -> None:
    if not isinstance(n_boot, (int, np.integer)) or isinstance(n_boot, bool) or n_boot < 0:
        raise LoglikMapError(f"n_boot must be a non-negative integer, got {n_boot!r}")
    if not 0.0 < confidence_level < 1.0:
        raise LoglikMapError(f"confidence_level must be in (0, 1), got {confidence_level}")


def _windows(traj: Trajectory, ds: xr.Dataset, window: int, window_on: str) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """For every fitted start of ``ds``: (index of the start point, indices of the targets, lags).

    The one place that reads :class:`Trajectory` internals: the same windows its fits use.
    """
    out = []
    for g, t0, why in zip(ds["group"].values, ds["t0"].values, ds["reason"].values):
        if why:
            out.append((-1, np.zeros(0, dtype=np.int64), np.zeros(0)))
            continue
        idx = traj._groups[g]
        k = traj._start(float(t0), g)
        got = traj._window(g, k, window, window_on)
        lags = np.asarray(got[0], dtype=float)
        positions = traj._order[idx]
        j = np.searchsorted(positions, positions[k] + lags)
        j = np.minimum(j, positions.size - 1)
        hit = np.isclose(positions[j], positions[k] + lags, rtol=1e-12, atol=0)
        if not hit.all():  # pragma: no cover - the window's targets are points of the trajectory
            raise LoglikMapError(f"could not match the window of t0 = {t0:g} to its points")
        out.append((int(idx[k]), idx[j], lags))
    return out


def _resample_counts(rng: np.random.Generator, n: int, n_boot: int) -> np.ndarray:
    """How often each of ``n`` texts is drawn in each of ``n_boot`` resamples (multinomial), float64."""
    draws = rng.integers(0, n, size=(n_boot, n)) + n * np.arange(n_boot)[:, None]
    return np.bincount(draws.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float64)


def _replicate_distances(X: np.ndarray, pairs: list[tuple[int, int]], n_boot: int,
                         rng: np.random.Generator) -> np.ndarray:
    """Bootstrap displacements, shape (n_boot, len(pairs)): texts resampled, differences recentred."""
    n = X.shape[1]
    counts = _resample_counts(rng, n, n_boot)
    out = np.empty((n_boot, len(pairs)))
    block = max(1, _BLOCK_BYTES // (8 * n))
    for p0 in range(0, len(pairs), block):
        chunk = pairs[p0:p0 + block]
        D = X[[j for _, j in chunk]] - X[[i for i, _ in chunk]]
        out[:, p0:p0 + len(chunk)] = counts @ (D * D).T - (counts @ D.T) ** 2 / n
    return out


def _slopes(lags: np.ndarray, d: np.ndarray) -> np.ndarray:
    """Least-squares slopes of log d on log lag for each row of ``d`` (non-positive d dropped)."""
    x = np.log(lags)[None, :]
    ok = np.isfinite(d) & (d > 0)
    y = np.log(np.where(ok, d, 1.0))
    w = ok.astype(float)
    n = w.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = (w * x).sum(axis=1, keepdims=True) / n
        ym = (w * y).sum(axis=1, keepdims=True) / n
        sxx = (w * (x - xm) ** 2).sum(axis=1)
        slope = (w * (x - xm) * (y - ym)).sum(axis=1) / sxx
    slope[(n[:, 0] < 2) | ~(sxx > 0)] = np.nan
    return slope


def _bootstrap_exponents(traj: Trajectory, windows: list[tuple[int, np.ndarray, np.ndarray]], n_boot: int,
                         seed: int | None) -> np.ndarray:
    """Replicated exponents, shape (n_boot, n_starts); NaN for starts without a fit."""
    X = traj._distances.points
    if X is None:
        raise LoglikMapError("a distance-only trajectory (Trajectory.from_distances, e.g. weights) has no texts to "
                             "resample: its exponents depend on no text sample; pass n_boot=0 for the regression "
                             "interval only")
    pairs = [(s, int(t)) for s, targets, _ in windows if s >= 0 for t in targets]
    d = _replicate_distances(X, pairs, n_boot, np.random.default_rng(seed))
    out = np.full((n_boot, len(windows)), np.nan)
    p0 = 0
    for k, (s, targets, lags) in enumerate(windows):
        if s < 0:
            continue
        out[:, k] = _slopes(lags, d[:, p0:p0 + targets.size])
        p0 += targets.size
    return out


def _regression_interval(exponent: np.ndarray, se: np.ndarray, n_points: np.ndarray,
                         level: float) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore"):
        q = stats.t.ppf(0.5 + level / 2, np.where(n_points > 2, n_points - 2, np.nan))
    return exponent - q * se, exponent + q * se


def exponent_intervals(trajectory: Trajectory, window: int = 10, min_start: float | None = None,
                       group: Hashable | None = None, *, window_on: str = "grid", n_boot: int = 1000,
                       seed: int | None = 0, confidence_level: float = 0.95) -> xr.Dataset:
    """Diffusion exponents c(t0) with a bootstrap-over-texts interval beside the regression's.

    The intervals cover the exponent of this trajectory on the whole population of texts
    (text-sampling uncertainty only), not the exponent of the training process behind it.

    Parameters
    ----------
    trajectory : Trajectory
        On a model map; for a distance-only trajectory (weights) give ``n_boot=0``.
    window : int, default 10
        Window length W, as for :meth:`Trajectory.diffusion_exponents`.
    min_start : float, optional
        Leave out starts before it.
    group : optional
        One trajectory only (default: all).
    window_on : {"grid", "remaining"}
        As for :meth:`Trajectory.diffusion_exponents`.
    n_boot : int
        Bootstrap replicates (0: the regression interval only).
    seed : int or None
        Seed of ``numpy.random.default_rng`` for the replicates (recorded in the result).
    confidence_level : float
        Coverage of both intervals.

    Returns
    -------
    xarray.Dataset
        :meth:`Trajectory.diffusion_exponents`'s variables plus ``regression_low``,
        ``regression_high`` (Student t, n − 2 degrees of freedom) and, with ``n_boot > 0``,
        ``bootstrap_low``, ``bootstrap_high`` (percentile interval), ``bootstrap_se`` and
        ``bootstrap_valid`` (replicates that gave a fit). Attributes add ``n_boot``, ``seed``,
        ``confidence_level`` and ``interval``.
    """
    _check(n_boot, confidence_level)
    ds = trajectory.diffusion_exponents(window, min_start, group, window_on=window_on)
    lo, hi = _regression_interval(ds.exponent.values, ds.se.values, ds.n_points.values, confidence_level)
    ds = ds.assign(regression_low=("start", lo), regression_high=("start", hi))
    attrs = {"n_boot": int(n_boot), "seed": "none" if seed is None else int(seed),
             "confidence_level": float(confidence_level),
             "interval": "regression: Student t on the log-log fit; bootstrap: percentile, texts resampled"}
    if n_boot:
        reps = _bootstrap_exponents(trajectory, _windows(trajectory, ds, window, window_on), n_boot, seed)
        alpha = 1.0 - confidence_level
        valid = np.isfinite(reps).sum(axis=0)
        with warnings.catch_warnings():  # starts without a fit: all-NaN columns, NaN is the answer
            warnings.simplefilter("ignore", RuntimeWarning)
            low, high = np.nanquantile(reps, [alpha / 2, 1 - alpha / 2], axis=0)
            se = np.nanstd(reps, axis=0, ddof=1)
        ds = ds.assign(bootstrap_low=("start", low), bootstrap_high=("start", high), bootstrap_se=("start", se),
                       bootstrap_valid=("start", valid))
    ds.attrs.update(attrs)
    return ds


def _one_start(trajectory: Trajectory, t0: float, window: int, group: Hashable | None,
               window_on: str) -> tuple[xr.Dataset, PowerLawFit]:
    fit = trajectory.diffusion_exponent(t0, window, group, window_on=window_on)
    g = trajectory._key(group)
    ds = xr.Dataset({"reason": ("start", np.array([""], dtype=object))},
                    coords={"group": ("start", np.array([g], dtype=object)), "t0": ("start", np.array([float(t0)]))})
    return ds, fit


def _summary(quantity: str, estimate: float, reps: np.ndarray, ref: ConfidenceInterval, n_boot: int,
             seed: int | None, level: float) -> BootstrapEstimate:
    ok = reps[np.isfinite(reps)]
    alpha = 1.0 - level
    low, high = (np.quantile(ok, [alpha / 2, 1 - alpha / 2]) if ok.size else (math.nan, math.nan))
    se = float(np.std(ok, ddof=1)) if ok.size > 1 else math.nan
    return BootstrapEstimate(quantity, float(estimate), float(low), float(high), se, ref.low, ref.high, level,
                             int(n_boot), int(ok.size), seed)


#: The parameters of one start's bootstrap, shared by exponent_interval and holder_interval.
_ONE_START = """
    t0 : float
        Start; a kept point of the trajectory.
    window : int, default 10
        Window length W.
    group : optional
        Which trajectory (needed when there are several).
    window_on : {"grid", "remaining"}
        As for :meth:`Trajectory.diffusion_exponents`.
    n_boot : int, default 1000
        Bootstrap resamples of the texts (at least 2).
    seed : int, optional
        Seed of the resampling.
    confidence_level : float, default 0.95
        Coverage of both intervals.
"""


@fill_doc(one_start=_ONE_START)
def exponent_interval(trajectory: Trajectory, t0: float, window: int = 10, group: Hashable | None = None, *,
                      window_on: str = "grid", n_boot: int = 1000, seed: int | None = 0,
                      confidence_level: float = 0.95) -> BootstrapEstimate:
    """The exponent c(t0) at one start with its bootstrap-over-texts interval beside the regression's.

    Its target is this trajectory's exponent on the whole population of texts, not the process's
    (see :func:`exponent_intervals`).

    Parameters
    ----------
    trajectory : Trajectory
        A trajectory on a model map (a distance-only trajectory has no texts to resample).
    {one_start}

    Returns
    -------
    BootstrapEstimate
        The exponent, its bootstrap interval and the regression's (see :func:`exponent_intervals`).
    """
    _check(n_boot, confidence_level)
    if n_boot < 2:
        raise LoglikMapError("a bootstrap interval needs n_boot ≥ 2")
    ds, fit = _one_start(trajectory, t0, window, group, window_on)
    reps = _bootstrap_exponents(trajectory, _windows(trajectory, ds, window, window_on), n_boot, seed)[:, 0]
    return _summary(f"c(t0 = {t0:g})", fit.exponent, reps, fit.confidence_interval(confidence_level), n_boot, seed,
                    confidence_level)


@fill_doc(one_start=_ONE_START)
def holder_interval(trajectory: Trajectory, weights: Trajectory | PowerLawFit, t0: float, window: int = 10,
                    group: Hashable | None = None, *, window_on: str = "grid", n_boot: int = 1000,
                    seed: int | None = 0, confidence_level: float = 0.95) -> BootstrapEstimate:
    """Hölder exponent α = c_q(t0) / c_w(t0) with a bootstrap-over-texts interval.

    Its target is this trajectory's α on the whole population of texts (c_w held fixed), not the
    process's (see :func:`exponent_intervals`).

    Parameters
    ----------
    trajectory : Trajectory
        Log-likelihood trajectory on a model map (c_q).
    weights : Trajectory or PowerLawFit
        The weight-space trajectory (:meth:`Trajectory.from_distances`), fitted at the same
        ``t0`` and ``window``, or its fit. Weights do not depend on the texts, so c_w is held
        fixed in every replicate.
    {one_start}

    Returns
    -------
    BootstrapEstimate
        ``reference_low``/``reference_high`` are the delta-method interval of
        :func:`~loglik_map.holder_exponent`, which propagates both regressions' SEs.
    """
    _check(n_boot, confidence_level)
    if n_boot < 2:
        raise LoglikMapError("a bootstrap interval needs n_boot ≥ 2")
    w_fit = weights if isinstance(weights, PowerLawFit) else weights.diffusion_exponent(t0, window, group,
                                                                                          window_on=window_on)
    ds, q_fit = _one_start(trajectory, t0, window, group, window_on)
    est = holder_exponent(q_fit, w_fit)
    reps = _bootstrap_exponents(trajectory, _windows(trajectory, ds, window, window_on), n_boot, seed)[:, 0]
    return _summary(f"α = c_q / c_w at t0 = {t0:g}", est.alpha, reps / w_fit.exponent,
                    est.confidence_interval(confidence_level), n_boot, seed, confidence_level)
