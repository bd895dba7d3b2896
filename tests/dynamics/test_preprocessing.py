"""Outlier texts and outlier checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

import loglik_map as lm


def _checkpoints(n_steps=30, n_texts=200, seed=0, families=("a", "b")):
    rng = np.random.default_rng(seed)
    rows, names, steps, fam = [], [], [], []
    for f in families:
        walk = -600 + np.cumsum(rng.normal(scale=0.5, size=(n_steps, n_texts)), axis=0)
        for s in range(n_steps):
            rows.append(walk[s])
            names.append(f"{f}@{s * 1000}")
            steps.append(s * 1000)
            fam.append(f)
    return np.array(rows), names, steps, fam


def _matrix(rows, names, steps, fam):
    n = rows.shape[1]
    return lm.LogLikelihoodMatrix(rows, models=names, texts=[f"t{k}" for k in range(n)], n_bytes=np.full(n, 900),
                                  model_coords={"step": steps, "family": fam})


def test_outlier_text_scores_and_dropping():
    rows, names, steps, fam = _checkpoints()
    rows[names.index("b@12000"), 17] -= 40.0  # one text jumps at one checkpoint of family b
    rows[names.index("a@1000"), 5] -= 80.0  # a jump during "warm-up"
    m = _matrix(rows, names, steps, fam)
    scores = lm.dynamics.outlier_text_scores(m, by="family", after=3000)
    assert scores.dims == ("text",) and scores.attrs["units"] == "nats"
    assert int(np.argmax(scores.values)) == 17 and scores.values[17] > 38
    L = m.values
    a = [i for i, n in enumerate(names) if n.startswith("a@") and steps[i] >= 3000]
    b = [i for i, n in enumerate(names) if n.startswith("b@") and steps[i] >= 3000]
    expected = np.maximum(np.abs(np.diff(L[a], axis=0)).max(0), np.abs(np.diff(L[b], axis=0)).max(0))
    np.testing.assert_allclose(scores.values, expected)
    assert int(np.argmax(lm.dynamics.outlier_text_scores(m, by="family").values)) == 5  # with warm-up: text 5
    dropped = lm.dynamics.drop_outlier_texts(m, n=2, by="family", after=3000)
    assert dropped.n_texts == 198 and "t17" not in set(dropped.texts)
    assert lm.dynamics.drop_outlier_texts(m, fraction=0.03, by="family").n_texts == 194
    with pytest.raises(lm.LoglikMapError, match="exactly one"):
        lm.dynamics.drop_outlier_texts(m)


def test_off_path_checkpoint_is_flagged():
    rows, names, steps, fam = _checkpoints(n_steps=40, families=("a",))
    bad = names.index("a@20000")
    rows[bad] += np.random.default_rng(9).normal(scale=6.0, size=rows.shape[1])  # Pythia-1B-116k-like
    traj = lm.Trajectory(_matrix(rows, names, steps, fam))
    flags = lm.dynamics.flag_outlier_models(traj)
    assert list(flags["model"].values[flags["flagged"].values]) == ["a@20000"]
    assert flags["z_in"].sel(model="a@20000") > 5 and flags["z_out"].sel(model="a@20000") > 5
    clean = lm.Trajectory(_matrix(rows, names, steps, fam), exclude=["a@20000"])
    assert not lm.dynamics.flag_outlier_models(clean)["flagged"].any()
