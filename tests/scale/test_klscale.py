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


@pytest.fixture(scope="module")
def scored():
    """A map as the scorers write it: logit-lens rows share their model's ``source_model``,
    ``revision``, ``quantization``, ``step`` and user coordinates, and differ in ``layer``."""
    rng = np.random.default_rng(3)
    N = 400
    base = -600 + rng.normal(scale=20, size=N)
    rows, names = [], []
    cols = {k: [] for k in ("source_model", "revision", "quantization", "layer", "step", "seed", "size", "base_model")}

    def add(name, row, **c):
        rows.append(row)
        names.append(name)
        for k in cols:
            cols[k].append(c.get(k, np.nan if k in ("layer", "step", "seed") else ""))

    for seed in (1, 2):
        seed_off = rng.normal(scale=1, size=N)
        for step in (1000, 2000):
            src, rev = f"m-s{seed}", f"step{step}"
            row = base + seed_off + rng.normal(scale=0.3, size=N)
            common = dict(source_model=src, revision=rev, step=step, seed=seed, size="s")
            add(f"{src}@{step}", row, quantization="none", **common)
            # lens rows: layers 0–4 only (the model has more), each far from the model
            for layer in range(5):
                add(f"{src}@{step}@layer{layer}", base + rng.normal(scale=10 - layer, size=N), quantization="none",
                    layer=layer, **common)
            add(f"{src}@{step}[8bit]", row + rng.normal(scale=0.05, size=N), quantization="8bit", **common)
            for layer in range(3):  # lens rows of the quantized copy
                add(f"{src}@{step}[8bit]@layer{layer}", base + rng.normal(scale=10 - layer, size=N),
                    quantization="8bit", layer=layer, **common)
    parent = rows[names.index("m-s1@2000")]
    ft = parent + rng.normal(scale=1, size=N)
    # the fine-tune carries its parent's step, seed and size, as copied user coordinates would
    common = dict(source_model="ft", revision="main", base_model="m-s1@2000", step=2000, seed=1, size="s")
    add("ft", ft, quantization="none", **common)
    add("ft[8bit]", ft + rng.normal(scale=0.05, size=N), quantization="8bit", **common)
    for layer in range(2):
        add(f"ft@layer{layer}", base + rng.normal(scale=10, size=N), quantization="none", layer=layer, **common)
    m = lm.LogLikelihoodMatrix(np.array(rows), models=names, texts=[f"t{k}" for k in range(N)],
                               n_bytes=np.full(N, 950), model_coords=cols)
    return lm.ModelMap(m)


def test_original_vs_matches_lens_rows_by_layer(scored):
    pairs = lm.original_vs("quantization", "none", "8bit")(scored)
    assert sorted(pairs) == sorted([(f"m-s{s}@{t}", f"m-s{s}@{t}[8bit]") for s in (1, 2) for t in (1000, 2000)]
                                   + [("ft", "ft[8bit]")])
    kl = scored.summary(pairs).kl
    assert kl.max() < 0.01  # the tiny quantization KL, not a lens layer's
    with_layers = lm.original_vs("quantization", "none", "8bit", layers=True)(scored)
    assert ("m-s1@1000@layer2", "m-s1@1000[8bit]@layer2") in with_layers
    assert all(a.split("@layer")[-1] == b.split("@layer")[-1] for a, b in with_layers if "@layer" in a + b)
    assert len(with_layers) == len(pairs) + 4 * 3


def test_original_vs_refuses_two_originals_of_one_copy(scored):
    sub = scored.matrix.data.copy()
    sub = sub.assign_coords(revision=("model", np.where(sub.revision.values == "step2000", "step1000",
                                                        sub.revision.values)))
    twice = lm.ModelMap(lm.LogLikelihoodMatrix.from_dataarray(sub))
    with pytest.raises(lm.LoglikMapError, match="two originals"):
        lm.original_vs("quantization", "none", "8bit")(twice)


def test_pair_rules_never_mix_lens_rows_or_quantized_copies(scored):
    whole = {m for m, layer, q in zip(scored.models, scored.points["layer"].values,
                                       scored.points["quantization"].values) if np.isnan(layer) and q == "none"}
    cons = lm.consecutive_checkpoints("step", by="seed")(scored)
    plain = [p for p in cons if set(p) <= whole]
    assert sorted(plain) == [("m-s1@1000", "m-s1@2000"), ("m-s2@1000", "m-s2@2000")]
    # every other pair is the same layer and quantization at consecutive steps
    for a, b in cons:
        assert a.replace("@1000", "@2000") == b  # never the fine-tune, which shares step 2000 and seed 1
    seeds = lm.differing_only_in("seed", by=("size", "step"))(scored)
    assert all(a.replace("m-s1", "m-s2") == b for a, b in seeds) and ("m-s1@1000", "m-s2@1000") in seeds
    assert not any(m.startswith("ft") for p in seeds for m in p)
    assert lm.child_vs_parent("base_model")(scored) == [("ft", "m-s1@2000")]
    layers = lm.adjacent_layers("layer", "source_model")
    with pytest.raises(lm.LoglikMapError, match="two points"):  # two revisions per source model: say so
        layers(scored)
    one = lm.ModelMap(scored.matrix.where_models(revision="step1000", seed=1.0))
    assert layers(one) == [(f"m-s1@1000@layer{k}", f"m-s1@1000@layer{k + 1}") for k in range(4)] + \
        [(f"m-s1@1000[8bit]@layer{k}", f"m-s1@1000[8bit]@layer{k + 1}") for k in range(2)]
    lineage = lm.random_pairs(lineage="base_model", seed=0)(scored)
    assert {m for p in lineage for m in p} <= {"ft", "m-s1@2000"}
    drawn = lm.random_pairs(50, seed=0)(scored)
    assert not any("@layer" in m for p in drawn for m in p)
