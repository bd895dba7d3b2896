"""Bootstrap-over-texts intervals for diffusion and Hölder exponents (issue 15), calibrated on
fractional Brownian motion (exact c = 2H) and a Takagi–Landsberg map of a Brownian path (α)."""

from __future__ import annotations

import numpy as np
import pytest

import loglik_map as lm
from loglik_map.dynamics._uncertainty import _replicate_distances, exponent_interval, exponent_intervals, holder_interval


def _fbm_trajectory(rng: np.random.Generator, hurst: float, n_texts: int, n_steps: int) -> lm.Trajectory:
    """Checkpoints 0 … n_steps whose log-likelihood vectors are an fBm path (one coordinate per text)."""
    path = lm.synthetic.fbm(n_steps, hurst, dim=n_texts, seed=rng)
    m = lm.LogLikelihoodMatrix(-500 + 10 * path, models=[f"c{i}" for i in range(n_steps + 1)],
                               texts=[f"t{k}" for k in range(n_texts)], n_bytes=np.full(n_texts, 1000),
                               model_coords={"step": 1000 * np.arange(n_steps + 1)})
    return lm.Trajectory(m)


def test_replicate_displacements_are_those_of_a_map_on_the_resampled_texts():
    """d* for resample counts w is the displacement on the map of the drawn texts (duplicates kept),
    up to the factor B̄*/B̄ that leaves exponents unchanged."""
    rng = np.random.default_rng(0)
    n = 40
    L = -300 + rng.normal(size=(4, n)).cumsum(axis=0)
    n_bytes = rng.integers(300, 1000, size=n)
    m = lm.LogLikelihoodMatrix(L, models=list("abcd"), texts=[f"t{k}" for k in range(n)], n_bytes=n_bytes)
    X = lm.ModelMap(m).points.values
    draw = rng.integers(0, n, size=n)

    class Fixed:
        def integers(self, low, high, size):
            return draw.reshape(size)

    got = _replicate_distances(X, [(0, 1), (0, 3), (2, 3)], 1, Fixed())[0]
    sub = lm.LogLikelihoodMatrix(L[:, draw], models=list("abcd"), texts=[f"s{k}" for k in range(n)],
                                 n_bytes=n_bytes[draw])
    mm = lm.ModelMap(sub)
    want = np.array([mm.kl("a", "b"), mm.kl("a", "d"), mm.kl("c", "d")]) * n_bytes[draw].mean() / n_bytes.mean()
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_intervals_beside_the_regression_and_their_bookkeeping():
    traj = _fbm_trajectory(np.random.default_rng(1), 0.35, 150, 30)
    ds = traj.diffusion_exponents(window=10, n_boot=200, seed=7, confidence_level=0.9)
    plain = traj.diffusion_exponents(window=10)
    np.testing.assert_array_equal(ds.exponent.values, plain.exponent.values)
    fit = traj.diffusion_exponent(float(ds.t0.values[3]), 10)
    ci = fit.confidence_interval(0.9)
    assert ds.regression_low.values[3] == pytest.approx(ci.low) and ds.regression_high.values[3] == pytest.approx(ci.high)
    assert np.all(ds.bootstrap_low.values < ds.exponent.values) and np.all(ds.exponent.values < ds.bootstrap_high.values)
    assert np.all(ds.bootstrap_valid.values == 200)
    assert ds.attrs["n_boot"] == 200 and ds.attrs["seed"] == 7 and ds.attrs["confidence_level"] == 0.9
    again = exponent_intervals(traj, 10, n_boot=200, seed=7, confidence_level=0.9)
    np.testing.assert_array_equal(again.bootstrap_low.values, ds.bootstrap_low.values)
    other = exponent_intervals(traj, 10, n_boot=200, seed=8, confidence_level=0.9)
    assert not np.array_equal(other.bootstrap_low.values, ds.bootstrap_low.values)
    one = exponent_interval(traj, float(ds.t0.values[3]), 10, n_boot=200, seed=7, confidence_level=0.9)
    assert one.estimate == fit.exponent and one.n_valid == 200 and "bootstrap over texts" in str(one)
    assert one.reference_low == pytest.approx(ci.low)


def test_weights_have_no_texts_to_resample():
    rng = np.random.default_rng(2)
    W = lm.synthetic.fbm(20, 0.5, dim=30, seed=rng)
    traj = lm.Trajectory.from_distances(((W[:, None] - W[None]) ** 2).sum(-1), np.arange(21))
    only = traj.diffusion_exponents(window=8, n_boot=0)
    assert "regression_low" in only and "bootstrap_low" not in only
    with pytest.raises(lm.LoglikMapError, match="no texts to resample"):
        traj.diffusion_exponents(window=8, n_boot=50)
    with pytest.raises(lm.LoglikMapError, match="n_boot"):
        traj.diffusion_exponents(window=8, n_boot=-1)


def test_bootstrap_intervals_cover_the_fbm_exponent():
    """Coverage of nominal 95 % intervals for c(t0) over 300 fBm replicates (H = 0.35, 200 texts,
    window 10, 200 bootstrap draws each): within ±0.035 of 0.95 (≈ 2.8 binomial SDs; fixed seed).
    The regression's own interval, blind to text sampling, covers far less often."""
    rng = np.random.default_rng(11)
    boot, reg = [], []
    for _ in range(300):
        est = exponent_interval(_fbm_trajectory(rng, 0.35, 200, 14), 2000, 10, n_boot=200,
                                seed=int(rng.integers(2**31)))
        boot.append(est.low <= 0.7 <= est.high)
        reg.append(est.reference_low <= 0.7 <= est.reference_high)
    assert abs(np.mean(boot) - 0.95) <= 0.035, np.mean(boot)
    assert np.mean(reg) < 0.85


def test_holder_interval_covers_alpha_of_a_takagi_map():
    """α = c_q / c_w of a Takagi–Landsberg map (α = 0.3) of a Brownian weight path started away from
    the origin (at W = 0 every term's kink is in phase and the exponent is biased): coverage of
    nominal 95 % bootstrap intervals over 200 replicates within ±0.045 of 0.95."""
    rng = np.random.default_rng(5)
    hits = []
    for _ in range(200):
        W = 1e-3 * lm.synthetic.fbm(14, 0.5, dim=16, seed=rng) + 3.0 * rng.normal(size=16)
        Q = lm.synthetic.takagi_landsberg(W, 0.3, dim_out=200, seed=rng)
        m = lm.LogLikelihoodMatrix(-500 + 100 * Q, models=[f"c{i}" for i in range(15)],
                                   texts=[f"t{k}" for k in range(200)], n_bytes=np.full(200, 1000),
                                   model_coords={"step": np.arange(15)})
        weights = lm.Trajectory.from_distances(((W[:, None] - W[None]) ** 2).sum(-1), np.arange(15))
        est = holder_interval(lm.Trajectory(m), weights, 2, 10, n_boot=200, seed=int(rng.integers(2**31)))
        hits.append(est.low <= 0.3 <= est.high)
    assert abs(np.mean(hits) - 0.95) <= 0.045, np.mean(hits)


def test_plots_show_both_intervals():
    pytest.importorskip("matplotlib", reason="plot tests need the 'plot' extra (matplotlib)")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from loglik_map import plotting

    traj = _fbm_trajectory(np.random.default_rng(3), 0.35, 100, 20)
    ds = traj.diffusion_exponents(window=8, n_boot=50, seed=0)
    ax = plotting.plot_exponent_intervals(ds, truth=0.7)
    assert len(ax.collections) == 2  # the bootstrap band and the regression's error bars
    assert any("bootstrap over texts 95 % (50 draws)" in t.get_text() for t in ax.get_legend().get_texts())
    ax = plotting.plot_diffusion_exponents(ds)
    assert len(ax.collections) == 1  # the band beside the curve
    plt.close("all")
