"""Synthetic ground truth: fBm recovers c = 2H, Takagi–Landsberg maps recover α."""

from __future__ import annotations

import numpy as np
import pytest

import loglik_map as lm


def _sq_distances(P):
    G = P @ P.T
    n = np.diag(G)
    return np.maximum(n[:, None] + n[None, :] - 2 * G, 0.0)


def test_fbm_shape_origin_and_increment_variance():
    B = lm.synthetic.fbm(500, 0.3, dim=40, seed=0)
    assert B.shape == (501, 40) and np.all(B[0] == 0)
    inc = np.diff(B, axis=0)
    assert np.var(inc) == pytest.approx(1.0, rel=0.05)
    with pytest.raises(lm.LoglikMapError, match="hurst"):
        lm.synthetic.fbm(10, 1.2)


@pytest.mark.parametrize("hurst", [0.1, 0.25, 0.5, 0.75])
def test_multidimensional_fbm_gives_c_equal_2h(hurst):
    B = lm.synthetic.fbm(300, hurst, dim=200, seed=1)
    traj = lm.Trajectory.from_distances(_sq_distances(B), np.arange(301))
    exps = traj.diffusion_exponents(window=10)
    assert float(exps.exponent.mean()) == pytest.approx(2 * hurst, abs=0.05)


def test_brownian_weights_have_c_w_close_to_one():
    W = np.cumsum(np.random.default_rng(2).normal(size=(200, 500)), axis=0)
    traj = lm.Trajectory.from_distances(_sq_distances(W), np.arange(1, 201) * 1000)
    fit = traj.diffusion_exponent(50_000, window=10)
    assert fit.exponent == pytest.approx(1.0, abs=0.1) and fit.r2 > 0.95


@pytest.mark.parametrize("alpha", [0.3, 0.5, 0.7])
def test_takagi_landsberg_map_multiplies_the_exponent_by_alpha(alpha):
    W = lm.synthetic.fbm(300, 0.5, dim=50, seed=2) * 1e-3
    Q = lm.synthetic.takagi_landsberg(W, alpha, dim_out=200, n_terms=30, seed=3)
    cw = lm.Trajectory.from_distances(_sq_distances(W), np.arange(301)).diffusion_exponents(window=10)
    cq = lm.Trajectory.from_distances(_sq_distances(Q), np.arange(301)).diffusion_exponents(window=10)
    ratio = float(cq.exponent.mean() / cw.exponent.mean())
    assert ratio == pytest.approx(alpha, abs=0.05)  # stated tolerance: ±0.05


def test_takagi_landsberg_is_holder_continuous():
    f = lm.synthetic.TakagiLandsberg(3, 4, 0.4, seed=0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3))
    for eps in (1e-2, 1e-4, 1e-6):
        y = x + eps * rng.normal(size=x.shape)
        ratio = np.linalg.norm(f(x) - f(y), axis=1) / np.linalg.norm(x - y, axis=1) ** 0.4
        assert ratio.max() < 50
    with pytest.raises(lm.LoglikMapError, match="alpha"):
        lm.synthetic.TakagiLandsberg(2, 2, 1.5)
