"""Trajectory on model maps: ordering, consecutive KL, displacement and diffusion exponents."""

from __future__ import annotations

import numpy as np
import pytest

import loglik_map as lm

PYTHIA_STEPS = np.array([0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512] + list(range(1000, 31000, 1000)))


def _walk_matrix(steps, hurst=0.5, n_texts=600, groups=("a",), seed=0):
    """Log-likelihood rows that perform an fBm in text space along the given steps."""
    rows, names, step_c, group_c = [], [], [], []
    for gi, g in enumerate(groups):
        B = lm.synthetic.fbm(len(steps) - 1, hurst, dim=n_texts, seed=seed + gi)
        for s, b in zip(steps, B):
            rows.append(-700.0 + 0.3 * b)
            names.append(f"{g}@{s}")
            step_c.append(s)
            group_c.append(g)
    return lm.LogLikelihoodMatrix(np.array(rows), models=names, texts=[f"t{k}" for k in range(n_texts)],
                                  n_bytes=np.full(n_texts, 970),
                                  model_coords={"step": step_c, "size": group_c})


def test_ordering_groups_and_non_uniform_steps():
    m = _walk_matrix(PYTHIA_STEPS[::-1], groups=("70m", "160m"))  # given in reverse order
    traj = lm.Trajectory(m, order="step", by="size")
    assert traj.groups == ["70m", "160m"]
    assert list(traj.positions("70m")) == sorted(PYTHIA_STEPS)
    assert traj.models("160m")[0] == "160m@0"
    with pytest.raises(lm.LoglikMapError, match="several trajectories"):
        traj.positions()
    with pytest.raises(lm.LoglikMapError, match="no model coordinate 'epoch'"):
        lm.Trajectory(m, order="epoch")


def test_step_kl_equals_map_kl_with_se():
    m = _walk_matrix(np.arange(0, 20000, 1000))
    mm = lm.ModelMap(m)
    steps = lm.Trajectory(mm).step_kl()
    assert steps.sizes["transition"] == 19
    assert steps["kl"].values[3] == pytest.approx(mm.kl("a@3000", "a@4000"), rel=1e-10)
    assert steps["se"].values[3] == pytest.approx(mm.kl_se("a@3000", "a@4000"), rel=1e-6)
    assert steps["step"].values[3] == 3000 and steps["step_next"].values[3] == 4000
    nats = lm.Trajectory(mm).step_kl(unit="nats")
    np.testing.assert_allclose(nats["kl"].values, steps["kl"].values * 970 * np.log(2))


@pytest.mark.parametrize("hurst", [0.25, 0.5])
def test_diffusion_exponent_of_an_fbm_trajectory(hurst):
    m = _walk_matrix(np.arange(0, 60000, 1000), hurst=hurst, n_texts=800)
    traj = lm.Trajectory(m)
    disp = traj.displacement(10000)
    assert disp["step"].values[0] == 11000 and disp.attrs["model_t0"] == "a@10000"
    fit = traj.diffusion_exponent(10000, window=10)
    assert fit.window == 10 and fit.t0 == 10000 and fit.n_points == 10
    exps = traj.diffusion_exponents(window=10, min_start=1000)
    assert exps["t0"].values.min() == 1000 and exps["t0"].values.max() == 59000 - 10 * 1000
    assert float(exps.exponent.mean()) == pytest.approx(2 * hurst, abs=0.1)


def test_excluded_checkpoints_are_skipped_as_starts_and_targets():
    m = _walk_matrix(np.arange(0, 15000, 1000))
    traj = lm.Trajectory(m, exclude=["a@5000"])
    assert 5000 not in traj.positions()
    assert 5000 not in traj.displacement(2000)["step"].values
    with pytest.raises(lm.LoglikMapError, match="excluded point 'a@5000'"):
        traj.displacement(5000)
    with pytest.raises(lm.LoglikMapError, match="not a saved point"):
        traj.displacement(5500)
    with pytest.raises(lm.LoglikMapError, match="only 4 grid slots"):
        traj.diffusion_exponent(10000, window=10)
    with pytest.raises(lm.LoglikMapError, match="only 4 saved points"):
        traj.diffusion_exponent(10000, window=10, window_on="remaining")


def test_duplicate_steps_are_an_error():
    m = _walk_matrix(np.array([0, 1000, 1500, 2000]))
    m = lm.LogLikelihoodMatrix.from_dataarray(m.data.assign_coords(step=("model", [0, 1000, 1000, 2000])))
    with pytest.raises(lm.LoglikMapError, match="two points at step = 1000"):
        lm.Trajectory(m)


def test_from_distances_has_the_same_api():
    B = lm.synthetic.fbm(40, 0.5, dim=100, seed=4)
    D = ((B[:, None] - B[None]) ** 2).sum(-1)
    traj = lm.Trajectory.from_distances(D, np.arange(41) * 1000, unit="weights²")
    steps = traj.step_kl()
    assert np.isnan(steps["se"].values).all() and steps.attrs["units"] == "weights²"
    assert steps["kl"].values[0] == pytest.approx(D[0, 1])
    assert traj.diffusion_exponent(5000, window=10).exponent == pytest.approx(1.0, abs=0.3)
