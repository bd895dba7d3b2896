"""The KL-scale table and the pair rules."""

from __future__ import annotations

import numpy as np
import pytest

import loglik_map as lm


@pytest.fixture(scope="module")
def zoo():
    """Two sizes × two seeds × three steps, an 8-bit copy, a fine-tune, and lens layers."""
    rng = np.random.default_rng(0)
    N = 300
    base = -600 + rng.normal(scale=20, size=N)
    rows, names, coords = [], [], {k: [] for k in ("size", "seed", "step", "quantization", "source_model",
                                                    "revision", "base_model", "layer", "family")}
    def add(name, row, **c):
        rows.append(row)
        names.append(name)
        for k in coords:
            coords[k].append(c.get(k, np.nan if k in ("seed", "step", "layer") else ""))
    for size in ("70m", "160m"):
        s_off = rng.normal(scale=3, size=N)
        for seed in (1, 2):
            seed_off = rng.normal(scale=1, size=N)
            for step in (1000, 2000, 3000):
                row = base + s_off + seed_off + rng.normal(scale=0.3, size=N)
                add(f"{size}-s{seed}@{step}", row, size=size, seed=seed, step=step, quantization="none",
                    source_model=f"{size}-s{seed}", revision=f"step{step}", family="pythia")
    orig = names.index("70m-s1@3000")
    add("70m-s1@3000[8bit]", rows[orig] + rng.normal(scale=0.5, size=N), quantization="8bit", source_model="70m-s1",
        revision="step3000", family="pythia")
    add("70m-chat", rows[orig] + rng.normal(scale=2, size=N), base_model="70m-s1@3000", family="chat")
    for layer in range(4):
        add(f"70m-s1@lens{layer}", base + rng.normal(scale=10 - 2 * layer, size=N), layer=layer, source_model="70m-s1-lens")
    m = lm.LogLikelihoodMatrix(np.array(rows), models=names, texts=[f"t{k}" for k in range(N)], n_bytes=np.full(N, 950),
                               model_coords=coords)
    return lm.ModelMap(m)


def test_rules_pick_the_right_pairs(zoo):
    cons = lm.consecutive_checkpoints("step", by=("size", "seed"))(zoo)
    assert len(cons) == 8 and ("70m-s1@1000", "70m-s1@2000") in cons
    assert lm.consecutive_checkpoints("step", by=("size", "seed"), after=2000)(zoo)[0] == ("70m-s1@2000", "70m-s1@3000")
    seeds = lm.differing_only_in("seed", by=("size", "step"))(zoo)
    assert len(seeds) == 6 and ("70m-s1@3000", "70m-s2@3000") in seeds
    sizes = lm.differing_only_in("size", by=("seed", "step"))(zoo)
    assert ("70m-s1@3000", "160m-s1@3000") in sizes and len(sizes) == 6
    assert lm.original_vs("quantization", "none", "8bit")(zoo) == [("70m-s1@3000", "70m-s1@3000[8bit]")]
    assert lm.child_vs_parent("base_model")(zoo) == [("70m-chat", "70m-s1@3000")]
    assert lm.adjacent_layers("layer", "source_model")(zoo) == [(f"70m-s1@lens{k}", f"70m-s1@lens{k + 1}") for k in range(3)]
    rand = lm.random_pairs(5, by="family", seed=1)(zoo)
    assert len(rand) == 5 and len(set(rand)) == 5
    fam = dict(zip(zoo.models, zoo.points["family"].values))
    assert all(fam[a] == fam[b] for a, b in rand)


def test_kl_scale_table_matches_manual_statistics(zoo):
    groups = {"random seeds": lm.differing_only_in("seed", by=("size", "step")),
              "8-bit quantization": lm.original_vs("quantization", "none", "8bit"),
              "fine-tuned vs base": lm.child_vs_parent("base_model"),
              "my layers": lm.adjacent_layers()}
    table = lm.kl_scale(zoo, groups)
    pairs = lm.kl_scale_pairs(zoo, groups)
    seeds = pairs[pairs.setting == "random seeds"]
    kl = np.array([zoo.kl(a, b) for a, b in zip(seeds.a, seeds.b)])
    assert table.loc["random seeds", "count"] == 6
    assert table.loc["random seeds", "median"] == pytest.approx(np.median(kl))
    assert table.loc["random seeds", "sd"] == pytest.approx(np.std(kl, ddof=1))
    assert table.loc["random seeds", "paper_median"] == 0.12
    assert table.loc["8-bit quantization", "paper_median"] == 0.44
    assert np.isnan(table.loc["my layers", "paper_median"])
    t2 = lm.kl_scale(zoo, {"my layers": lm.adjacent_layers()}, reference={"my layers": "adjacent layers"})
    assert t2.loc["my layers", "paper_median"] == 3.0
    assert table.loc["my layers", "median"] > table.loc["random seeds", "median"]
    with pytest.raises(lm.LoglikMapError, match="is a string; give a pair rule"):
        lm.kl_scale(zoo, {"x": "nearest neighbours"})
    assert list(lm.PAPER_KL_SCALE.columns) == ["median", "mean", "sd"] and len(lm.PAPER_KL_SCALE) == 10
