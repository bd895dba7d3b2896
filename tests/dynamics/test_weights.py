"""Weight-space distances between safetensors checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest

import loglik_map as lm
from loglik_map.dynamics import _weights as weights

safetensors_numpy = pytest.importorskip("safetensors.numpy", reason="weight distances need safetensors ('models' extra)")


def _checkpoint(folder, tensors, shards=1):
    folder.mkdir()
    names = sorted(tensors)
    if shards == 1:
        safetensors_numpy.save_file(tensors, str(folder / "model.safetensors"))
        return folder
    weight_map = {}
    for s in range(shards):
        part = {n: tensors[n] for n in names[s::shards]}
        fname = f"model-{s + 1:05d}-of-{shards:05d}.safetensors"
        safetensors_numpy.save_file(part, str(folder / fname))
        weight_map.update({n: fname for n in part})
    (folder / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return folder


@pytest.fixture
def checkpoints(tmp_path):
    rng = np.random.default_rng(0)
    W = {"layers.0.w": rng.normal(size=(300, 50)).astype(np.float32), "layers.1.w": rng.normal(size=(64,)).astype(np.float32),
         "embed": rng.normal(size=(100, 8)).astype(np.float32)}
    out, flat = [], []
    for k in range(4):
        W = {n: (v + rng.normal(scale=0.1, size=v.shape)).astype(np.float32) for n, v in W.items()}
        out.append(_checkpoint(tmp_path / f"step{k}", W, shards=1 if k % 2 == 0 else 2))
        flat.append(np.concatenate([W[n].astype(np.float64).ravel() for n in sorted(W)]))
    return out, np.array(flat)


def test_distances_equal_direct_computation_across_shard_layouts(checkpoints):
    folders, flat = checkpoints
    D = lm.weight_distances(folders, chunk_elements=1000)
    expected = ((flat[:, None] - flat[None]) ** 2).sum(-1)
    np.testing.assert_allclose(D.values, expected, rtol=1e-12)
    assert D.dims == ("checkpoint", "checkpoint_") and list(D.checkpoint.values) == ["step0", "step1", "step2", "step3"]


def test_window_include_and_cache_resume(checkpoints, tmp_path, monkeypatch):
    folders, flat = checkpoints
    D = lm.weight_distances(folders, window=1)
    assert np.isnan(D.values[0, 2]) and np.isfinite(D.values[0, 1])
    only = lm.weight_distances(folders, include="layers.1")
    # tensors sorted by name: embed, layers.0.w, layers.1.w -> the last 64 entries are layers.1.w
    assert only.values[0, 1] == pytest.approx(((flat[0, -64:] - flat[1, -64:]) ** 2).sum(), rel=1e-12)
    assert only.attrs["tensors"] == "layers.1"
    cache = tmp_path / "cache.json"
    first = lm.weight_distances(folders, cache=cache)
    def boom(*args, **kwargs):
        raise AssertionError("recomputed a cached pair")
    monkeypatch.setattr(weights, "_squared_distance", boom)
    again = lm.weight_distances(folders, cache=cache)
    np.testing.assert_array_equal(again.values, first.values)
    with pytest.raises(lm.LoglikMapError, match="no safetensors"):
        (tmp_path / "empty").mkdir()
        lm.weight_distances([folders[0], tmp_path / "empty"])


def test_weight_trajectory_of_independent_updates_is_brownian(checkpoints):
    folders, _ = checkpoints
    D = lm.weight_distances(folders)
    traj = lm.Trajectory.from_distances(D, [0, 1000, 2000, 3000])
    fit = traj.diffusion_exponent(0, window=3)
    assert fit.exponent == pytest.approx(1.0, abs=0.3)  # independent increments: Brownian


def test_pairs_must_be_all_or_index_pairs(tmp_path):
    # any other string used to be read as a list of pairs and fail later with an unrelated error
    with pytest.raises(lm.LoglikMapError, match="pairs must be 'all' or a list of"):
        lm.weight_distances([tmp_path / "a", tmp_path / "b"], pairs="neighbours")
