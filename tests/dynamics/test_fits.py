"""Power-law fits and the Hölder estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import loglik_map as lm


@given(st.floats(-2.0, 3.0), st.floats(-20.0, 20.0),
       st.lists(st.floats(1e-3, 1e6), min_size=3, max_size=30, unique=True))
def test_exact_power_laws_are_recovered(c, intercept, lags):
    lags = np.array(lags)
    if np.ptp(np.log(lags)) < 1e-3:
        return
    fit = lm.fit_power_law(lags, np.exp(intercept) * lags**c)
    assert fit.exponent == pytest.approx(c, abs=1e-10)
    assert fit.intercept == pytest.approx(intercept, abs=1e-8)
    assert fit.r2 == pytest.approx(1.0, abs=1e-10)
    assert fit.se == pytest.approx(0.0, abs=1e-7)
    assert fit.n_points == lags.size


def test_rounding_level_residuals_are_an_exact_fit():
    # found by hypothesis: a nearly flat exact power law once gave r² = 0.99999997 (a ratio of rounding errors)
    lags = np.array([1.0, 2.0, 3.0])
    fit = lm.fit_power_law(lags, np.exp(1.0) * lags**1.5196465447488058e-12)
    assert fit.r2 == 1.0 and fit.exponent == pytest.approx(0.0, abs=1e-10)


def test_fit_drops_non_finite_and_non_positive_points_and_reports_uncertainty():
    rng = np.random.default_rng(0)
    lags = np.arange(1, 41, dtype=float)
    d = 0.3 * lags**0.8 * np.exp(rng.normal(scale=0.05, size=lags.size))
    d[[3, 7]] = [np.nan, -1.0]
    fit = lm.fit_power_law(lags, d)
    assert fit.n_points == 38 and abs(fit.exponent - 0.8) < 0.05 and fit.r2 > 0.95
    ci = fit.confidence_interval(0.95)
    assert ci.low < fit.exponent < ci.high and ci.low < 0.8 < ci.high
    assert fit.hurst == pytest.approx(fit.exponent / 2) and fit.fractal_dimension == pytest.approx(2 / fit.exponent)
    assert "c = 0.8" in str(fit)
    with pytest.raises(lm.LoglikMapError, match="at least 2"):
        lm.fit_power_law([1.0, 2.0], [1.0, 0.0])


def test_holder_exponent_propagates_both_uncertainties():
    q = lm.results.PowerLawFit(0.2, 0.0, 0.9, 0.02, 10)
    w = lm.results.PowerLawFit(1.0, 0.0, 0.99, 0.05, 10)
    h = lm.holder_exponent(q, w)
    assert h.alpha == pytest.approx(0.2)
    assert h.se == pytest.approx(math.sqrt(0.02**2 + (0.2 * 0.05) ** 2))
    assert h.fractal_dimension_q == pytest.approx(10) and h.fractal_dimension_w == pytest.approx(2)
    assert h.confidence_interval(0.95).low < 0.2 < h.confidence_interval(0.95).high
    assert "α" in str(h)


def test_power_law_fit_matches_the_textbook_least_squares_and_old_spelling_warns():
    rng = np.random.default_rng(5)
    lags = np.arange(1.0, 30.0)
    d = 0.3 * lags**0.7 * np.exp(rng.normal(scale=0.2, size=lags.size))
    fit = lm.fit_power_law(lags, d)
    x, y = np.log(lags), np.log(d)
    X = np.column_stack([np.ones_like(x), x])
    beta, ssr, *_ = np.linalg.lstsq(X, y, rcond=None)
    cov = ssr[0] / (x.size - 2) * np.linalg.inv(X.T @ X)
    assert fit.exponent == pytest.approx(beta[1]) and fit.intercept == pytest.approx(beta[0])
    assert fit.se == pytest.approx(math.sqrt(cov[1, 1]))
    assert fit.r2 == pytest.approx(1 - ssr[0] / np.sum((y - y.mean()) ** 2))
    assert math.isnan(lm.fit_power_law([1.0, 2.0], [1.0, 3.0]).se)  # two points: no SE
