"""Power-law fits of displacement curves and the Hölder estimate (:ref:`method-trajectories`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from .._repr import ReprMixin, Summary
from ..core._results import ConfidenceInterval, TidyResult
from ..errors import LoglikMapError

__all__ = ["HolderEstimate", "PowerLawFit", "fit_power_law", "holder_exponent"]


def _check_level(level: float) -> float:
    if not 0.0 < level < 1.0:
        raise LoglikMapError(f"confidence level must be in (0, 1), got {level}")
    return level


@dataclass(frozen=True, repr=False)
class PowerLawFit(TidyResult, ReprMixin):
    """Least-squares fit of ``log d = intercept + c · log lag`` (natural logs).

    Attributes
    ----------
    exponent : float
        The diffusion exponent c: ``d ∝ lag^c``.
    intercept : float
        ``log d`` at lag 1 (d in the units of the distances fitted, e.g. bits/byte).
    r2 : float
        Coefficient of determination of the log–log fit.
    se : float
        Standard error of ``exponent`` (NaN with fewer than 3 points).
    n_points : int
        Points used (non-finite and non-positive distances are dropped).
    t0 : float
        Start of the displacement (NaN when not from a trajectory).
    window : int
        Saved points after ``t0`` considered (0 when not from a trajectory).
    """

    exponent: float
    intercept: float
    r2: float
    se: float
    n_points: int
    t0: float = math.nan
    window: int = 0

    @property
    def hurst(self) -> float:
        """Hurst exponent H = c / 2 of the fractional-Brownian interpretation."""
        return self.exponent / 2.0

    @property
    def fractal_dimension(self) -> float:
        """Hausdorff dimension D = 1/H = 2/c of the path."""
        return 2.0 / self.exponent if self.exponent != 0 else math.inf

    def confidence_interval(self, confidence_level: float = 0.95) -> ConfidenceInterval:
        """Student-t interval for the exponent (n − 2 degrees of freedom).

        Parameters
        ----------
        confidence_level : float, default 0.95
            Coverage of the interval, in (0, 1).

        Returns
        -------
        ConfidenceInterval
            ``exponent ± t · se``; NaN ends when the SE is NaN (fewer than 3 points).
        """
        _check_level(confidence_level)
        if not np.isfinite(self.se):
            return ConfidenceInterval(math.nan, math.nan)
        q = float(stats.t.ppf(0.5 + confidence_level / 2.0, self.n_points - 2))
        return ConfidenceInterval(self.exponent - q * self.se, self.exponent + q * self.se)

    def _extra_fields(self) -> dict[str, Any]:
        ci = self.confidence_interval(0.95)
        return {"ci_low": ci.low, "ci_high": ci.high, "confidence_level": 0.95, "hurst": self.hurst,
                "fractal_dimension": self.fractal_dimension}

    def _summary(self) -> Summary:
        ci = self.confidence_interval(0.95)
        where = f"t0 = {self.t0:g}, window of {self.window} points" if np.isfinite(self.t0) else ""
        return Summary("PowerLawFit", (), "d ∝ lag^c (log–log least squares)", (
            ("exponent", f"c = {self.exponent:.4g} ± {self.se:.2g} (SE), 95 % interval {ci}"),
            ("fit", f"r² = {self.r2:.3f} over {self.n_points} points"),
            ("start", where),
            ("path", f"Hurst H = {self.hurst:.3g}, fractal dimension D = {self.fractal_dimension:.3g}"),
        ))

    def __str__(self) -> str:
        where = f" from t0 = {self.t0:g} over {self.window} points" if np.isfinite(self.t0) else ""
        return (f"diffusion exponent c = {self.exponent:.4g} ± {self.se:.2g} (r² = {self.r2:.3f}, "
                f"n = {self.n_points}){where}; H = {self.hurst:.3g}, D = {self.fractal_dimension:.3g}")


def fit_power_law(lags: np.ndarray, distances: np.ndarray, *, t0: float = math.nan, window: int = 0) -> PowerLawFit:
    """Fit ``distances ∝ lags^c`` by least squares on log–log axes.

    Parameters
    ----------
    lags : array_like
        Positive lags ``|t − t0|``.
    distances : array_like
        Squared distances at those lags; non-finite or non-positive ones are dropped.
    t0 : float, optional
        Start of the displacement, recorded in the result (NaN when not from a trajectory).
    window : int, optional
        Saved points after ``t0`` considered, recorded in the result.

    Returns
    -------
    PowerLawFit
        Slope, intercept and standard error from :func:`scipy.stats.linregress` on
        ``(log lag, log distance)``.
    """
    x = np.asarray(lags, dtype=float)
    y = np.asarray(distances, dtype=float)
    if x.shape != y.shape or x.ndim != 1:
        raise LoglikMapError(f"lags and distances must be 1-D of equal length, got {x.shape} and {y.shape}")
    keep = np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0)
    x, y = np.log(x[keep]), np.log(y[keep])
    n = x.size
    if n < 2 or np.ptp(x) == 0:
        raise LoglikMapError(f"a power-law fit needs at least 2 distinct positive lags with positive distance, got {n}")
    fit = stats.linregress(x, y)
    slope, intercept = float(fit.slope), float(fit.intercept)
    ssr = float(np.sum((y - (intercept + slope * x)) ** 2))
    # residuals at rounding level (of log d) are an exact fit, also when the line is (nearly) flat
    # and the variance of y is itself tiny: r² would then be a ratio of rounding errors
    exact = ssr <= n * (64 * np.finfo(float).eps * max(1.0, float(np.max(np.abs(y))))) ** 2
    r2 = 1.0 if exact else float(fit.rvalue) ** 2
    # two points: a line through both, no residual to measure; an exact (e.g. flat) fit has SE 0
    se = math.nan if n <= 2 else 0.0 if exact else float(fit.stderr)
    return PowerLawFit(slope, intercept, r2, se, n, float(t0), int(window))


@dataclass(frozen=True, repr=False)
class HolderEstimate(TidyResult, ReprMixin):
    """Effective Hölder exponent α = c_q / c_w = D_w / D_q of the map weights → log-likelihoods.

    Attributes
    ----------
    alpha : float
        The exponent α.
    se : float
        Delta-method standard error from the two fits' standard errors (taken as independent).
    c_q, c_w : float
        Diffusion exponents in log-likelihood space and weight space.
    fractal_dimension_q, fractal_dimension_w : float
        D = 2 / c of each path.
    """

    alpha: float
    se: float
    c_q: float
    c_w: float
    fractal_dimension_q: float
    fractal_dimension_w: float

    def confidence_interval(self, confidence_level: float = 0.95) -> ConfidenceInterval:
        """Normal-approximation interval ``alpha ± z · se``.

        Parameters
        ----------
        confidence_level : float, default 0.95
            Coverage of the interval, in (0, 1).

        Returns
        -------
        ConfidenceInterval
            ``alpha ± z·se``.
        """
        _check_level(confidence_level)
        z = float(stats.norm.ppf(0.5 + confidence_level / 2.0))
        return ConfidenceInterval(self.alpha - z * self.se, self.alpha + z * self.se)

    def _summary(self) -> Summary:
        return Summary("HolderEstimate", (), "α = c_q / c_w (unitless)", (
            ("alpha", f"α = {self.alpha:.3g} ± {self.se:.2g} (SE), 95 % interval {self.confidence_interval(0.95)}"),
            ("exponents", f"c_q = {self.c_q:.3g} (log-likelihoods), c_w = {self.c_w:.3g} (weights)"),
            ("fractal dimensions", f"D_q = {self.fractal_dimension_q:.3g}, D_w = {self.fractal_dimension_w:.3g}"),
        ))

    def __str__(self) -> str:
        return (f"Hölder exponent α = c_q / c_w = {self.c_q:.3g} / {self.c_w:.3g} = {self.alpha:.3g} ± "
                f"{self.se:.2g}; D_q = {self.fractal_dimension_q:.3g}, D_w = {self.fractal_dimension_w:.3g}")


def holder_exponent(q_fit: PowerLawFit, w_fit: PowerLawFit) -> HolderEstimate:
    """Hölder exponent from a log-likelihood fit and a weight-space fit (:ref:`method-trajectories`).

    ``α = c_q / c_w``; its SE propagates both fits' SEs (NaN SEs count as 0).

    Parameters
    ----------
    q_fit : PowerLawFit
        Fit of the log-likelihood trajectory's displacement (exponent c_q).
    w_fit : PowerLawFit
        Fit of the weight-space trajectory's displacement (exponent c_w).

    Returns
    -------
    HolderEstimate
        The exponent α with its delta-method SE and both exponents.

    References
    ----------
    *Establishing a Scale for Kullback–Leibler Divergence in Language Models Across Various
    Settings* (ACL submission; :ref:`method-references`), §4.
    """
    if w_fit.exponent == 0:
        raise LoglikMapError("the weight-space exponent is 0; α is undefined")
    cq, cw = q_fit.exponent, w_fit.exponent
    sq = q_fit.se if np.isfinite(q_fit.se) else 0.0
    sw = w_fit.se if np.isfinite(w_fit.se) else 0.0
    alpha = cq / cw
    se = math.sqrt((sq / cw) ** 2 + (cq * sw / cw**2) ** 2)
    return HolderEstimate(alpha, se, cq, cw, q_fit.fractal_dimension, w_fit.fractal_dimension)
