"""The paper's pipeline on a synthetic Pythia-shaped grid (154 steps × 5 sizes, Pythia-1B step 116k
excluded, texts with planted jumps), pinned to the authors' procedure re-implemented in
``pythia_like`` (issue 11): grid windows, never-bridging outlier scores, Early/Later pairs,
per-setting preprocessing for Table 1a, random pairs, and the preprocessing order.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import loglik_map as lm

from . import pythia_like as P

EXCLUDED_NAME = P.name(*P.EXCLUDED)


@pytest.fixture(scope="module")
def matrix() -> lm.LogLikelihoodMatrix:
    return P.build()


@pytest.fixture(scope="module")
def main(matrix) -> lm.LogLikelihoodMatrix:
    return matrix.where_models(run=list(P.SIZES))


@pytest.fixture(scope="module")
def reference(matrix):
    return P.ref_preprocess(P.logp_dict(matrix, P.SIZES), matrix.n_bytes, excluded={P.EXCLUDED})


@pytest.fixture(scope="module")
def cleaned(main) -> lm.results.PreprocessingResult:
    return lm.preprocess_pretraining(main, exclude=[EXCLUDED_NAME], by="run")


# ---------------------------------------------------------------------- 6. preprocessing order
def test_preprocessing_follows_the_authors_order(main, reference, cleaned):
    ref_cleaned, info = reference
    assert cleaned.clip_threshold == pytest.approx(info["threshold"], rel=1e-12)
    # the excluded checkpoint (300 nats low) would move the 2 % quantile
    assert abs(np.quantile(main.values, 0.02) - info["threshold"]) > 1.0
    np.testing.assert_allclose(cleaned.outlier_scores.values, info["scores"], rtol=1e-12)
    assert set(cleaned.dropped_texts) == {f"t{k}" for k in info["dropped"]} and len(cleaned.dropped_texts) == 6
    assert {f"t{k}" for k in P.PLANTED} <= set(cleaned.dropped_texts)
    for planted_only_if_wrong in (P.WARMUP_JUMP, P.BRIDGE_RAMP, P.DEEP_TEXT):
        assert f"t{planted_only_if_wrong}" not in cleaned.dropped_texts
    # scoring the unclipped values (the wrong order) would drop the deep, noisy text
    raw = lm.dynamics.outlier_text_scores(main, by="run", after=2000, exclude=[EXCLUDED_NAME])
    assert int(np.argmax(raw.values)) == P.DEEP_TEXT
    out = cleaned.matrix
    assert EXCLUDED_NAME not in set(out.models) and out.shape == (769, 194)
    assert out.mean_bytes == pytest.approx(info["mean_bytes"], rel=1e-12)
    for size in P.SIZES:
        for step in (0, 2000, 143000):
            np.testing.assert_allclose(out.sel(model=P.name(size, step)).values[0], ref_cleaned[size][step], rtol=1e-12)
    assert out.attrs["clip_lower_quantile"] == 0.02 and out.attrs["excluded_models"] == [EXCLUDED_NAME]
    rows = cleaned.excluded_rows  # kept for inspection, clipped with the others' threshold
    assert list(rows.models) == [EXCLUDED_NAME] and list(rows.texts) == list(out.texts)
    assert rows.values.min() == pytest.approx(info["threshold"])
    rec = cleaned.dropped
    assert list(rec.what) == ["model"] + ["text"] * 6 and rec.label.iloc[0] == EXCLUDED_NAME
    assert "excluded" in rec.reason.iloc[0] and "top 6 of 200" in rec.reason.iloc[1]
    assert rec.score.iloc[1:].is_monotonic_decreasing
    assert "1 checkpoint(s) excluded (1b@116000)" in str(cleaned) and "6 of 200 texts" in str(cleaned)
    with pytest.raises(lm.LoglikMapError, match="already clipped"):
        lm.preprocess_pretraining(main.clip(0.02), by="run")
    with pytest.raises(lm.LoglikMapError, match="not in the matrix"):
        lm.preprocess_pretraining(main, exclude=["1b@116500"], by="run")
    with pytest.raises(lm.LoglikMapError, match="pass by="):
        lm.preprocess_pretraining(main)  # five sizes share every step: one trajectory would be nonsense


# ---------------------------------------------------------------------- 2. outlier scores never bridge
def test_outlier_scores_skip_both_pairs_around_an_excluded_checkpoint(main):
    scores = lm.dynamics.outlier_text_scores(main, by="run", after=2000, exclude=[EXCLUDED_NAME])
    logp = P.logp_dict(main, P.SIZES)
    expected = np.full(main.n_texts, -np.inf)
    for run, d in logp.items():
        steps = sorted(s for s in d if s >= 2000)
        for p, c in itertools.pairwise(steps):
            if P.EXCLUDED not in ((run, p), (run, c)):
                expected = np.maximum(expected, np.abs(d[c] - d[p]))
    np.testing.assert_allclose(scores.values, expected, rtol=1e-12)
    assert scores.attrs["n_pairs"] == 5 * 141 - 2 and scores.attrs["n_excluded"] == 1
    # removing the checkpoint instead differences 115k with 117k: the ramp text becomes the top outlier
    bridged = lm.dynamics.outlier_text_scores(main.drop_models([EXCLUDED_NAME]), by="run", after=2000)
    assert bridged.values[P.BRIDGE_RAMP] > 29 > scores.values[P.BRIDGE_RAMP]
    dropped = lm.dynamics.drop_outlier_texts(main, n=3, by="run", after=2000, exclude=[EXCLUDED_NAME])
    assert f"t{P.BRIDGE_RAMP}" in set(dropped.texts) and EXCLUDED_NAME in set(dropped.models)


# ---------------------------------------------------------------------- 1. diffusion windows on the grid
def _kl_distance(logp, mean_bytes):
    def distance(run, s, t):
        d = logp[run]
        return P.ref_kl(d[s], d[t], mean_bytes) if s in d and t in d else np.nan
    return distance


def _compare(ds, ref):
    got = {(g, int(t)): (c, r2, n) for g, t, c, r2, n in
           zip(ds.group.values, ds.t0.values, ds.exponent.values, ds.r2.values, ds.n_points.values)}
    assert set(got) == set(ref)
    for key, (c, r2, n) in ref.items():
        assert got[key][2] == n, key
        np.testing.assert_allclose(got[key][:2], (c, r2), rtol=1e-9, atol=1e-12, err_msg=str(key))


def test_diffusion_windows_are_the_next_grid_slots(main, cleaned, reference):
    ref_cleaned, info = reference
    traj = cleaned.trajectory()
    ds = traj.diffusion_exponents(window=10, min_start=1000)
    ref = P.ref_exponents(_kl_distance(ref_cleaned, info["mean_bytes"]), P.GRID, P.SIZES, {P.EXCLUDED})
    _compare(ds, ref)
    one_b = ds.where(ds.group == "1b", drop=True)
    at = {int(t): (n, why) for t, n, why in zip(one_b.t0.values, one_b.n_points.values, one_b.reason.values)}
    assert at[116000] == (0, "excluded start (1b@116000)") and np.isnan(ref["1b", 116000][0])
    assert all(at[t][0] == 9 for t in range(106000, 116000, 1000)) and at[105000][0] == 10 and at[117000][0] == 10
    fit = traj.diffusion_exponent(110000, window=10, group="1b")
    assert fit.n_points == 9 and fit.exponent == pytest.approx(ref["1b", 110000][0], rel=1e-9)
    with pytest.raises(lm.LoglikMapError, match="excluded point '1b@116000'"):
        traj.diffusion_exponent(116000, group="1b")
    # the same on the unpreprocessed matrix with exclude= (excluded row still in it)
    raw = lm.Trajectory(main, by="run", exclude=[EXCLUDED_NAME])
    logp = P.logp_dict(main, P.SIZES)
    _compare(raw.diffusion_exponents(window=10, min_start=1000),
             P.ref_exponents(_kl_distance(logp, main.mean_bytes), P.GRID, P.SIZES, {P.EXCLUDED}))


def test_next_remaining_points_is_an_explicit_option(cleaned, reference):
    ref_cleaned, info = reference
    traj = cleaned.trajectory()
    ds = traj.diffusion_exponents(window=10, min_start=1000, window_on="remaining")
    assert ds.attrs["window_on"] == "remaining"
    saved = {(run, step) for run, d in ref_cleaned.items() for step in d}
    ref = P.ref_exponents(_kl_distance(ref_cleaned, info["mean_bytes"]), P.GRID, P.SIZES, {P.EXCLUDED},
                          remaining=True, saved=saved)
    ref = {k: v for k, v in ref.items() if not (k == ("1b", 116000))}  # not a start at all here
    _compare(ds, ref)
    on_grid = traj.diffusion_exponents(window=10, min_start=1000)
    c_grid = dict(zip(zip(on_grid.group.values, on_grid.t0.values), on_grid.exponent.values))
    differs = {int(t) for g, t, c in zip(ds.group.values, ds.t0.values, ds.exponent.values)
               if not np.isclose(c, c_grid[g, t])}
    assert differs == set(range(106000, 116000, 1000))


def test_weight_windows_on_the_grid():
    rng = np.random.default_rng(5)
    W = np.cumsum(rng.normal(size=(len(P.GRID), 30)), axis=0)
    D = ((W[:, None] - W[None]) ** 2).sum(-1)
    window = np.abs(np.subtract.outer(np.arange(len(P.GRID)), np.arange(len(P.GRID)))) <= 10
    D = np.where(window, D, np.nan)  # only the next ten checkpoints are computed, as calc_weight_distance.py
    names = [P.name("1b", s) for s in P.GRID]
    traj = lm.Trajectory.from_distances(D, P.GRID, models=names, exclude=[EXCLUDED_NAME], unit="weights²")
    pos = {int(s): i for i, s in enumerate(P.GRID)}
    ref = P.ref_exponents(lambda run, s, t: D[pos[s], pos[t]] if s != t else 0.0, P.GRID, ["1b"], {P.EXCLUDED})
    _compare(traj.diffusion_exponents(window=10, min_start=1000), {("all", t): v for (_, t), v in ref.items()})


# ---------------------------------------------------------------------- 3. Early / Later pairs
def test_early_and_later_consecutive_checkpoints(matrix, main, cleaned):
    early_ref, later_ref = P.ref_consecutive(P.logp_dict(main, P.SIZES), {P.EXCLUDED})
    early = lm.consecutive_checkpoints("step", "run", interval=1000, after=2000, first=50)
    later = lm.consecutive_checkpoints("step", "run", interval=1000, after=2000, last=50)
    mm = lm.ModelMap(cleaned.matrix)
    assert early(mm) == early_ref and later(mm) == later_ref
    assert len(early_ref) == len(later_ref) == 250
    one_b = [p for p in later_ref if p[0].startswith("1b@")]
    assert one_b[0] == ("1b@91000", "1b@92000") and ("1b@115000", "1b@117000") not in one_b
    # on the map that still holds the excluded checkpoint, exclude= never bridges it (also without interval)
    full = lm.ModelMap(main)
    assert later.__class__ is lm.scale.PairRule
    excl = lm.consecutive_checkpoints("step", "run", interval=1000, after=2000, last=50, exclude=[EXCLUDED_NAME])
    assert excl(full) == later_ref
    loose = lm.consecutive_checkpoints("step", "run", after=2000, exclude=[EXCLUDED_NAME])(full)
    assert not {p for p in loose if EXCLUDED_NAME in p or p == ("1b@115000", "1b@117000")}
    assert len(loose) == 5 * 141 - 2
    with pytest.raises(lm.LoglikMapError, match="two settings"):
        lm.consecutive_checkpoints(first=50, last=50)


# ---------------------------------------------------------------------- 4. Table 1a per setting
def paper_settings() -> dict[str, lm.KLSetting]:
    main_pre = lm.PretrainingPreprocessing(models={"run": list(P.SIZES)}, exclude=[EXCLUDED_NAME], by="run")
    seed_pre = lm.PretrainingPreprocessing(models={"run": [r for r in P.SEED_RUNS if r != P.ANOMALOUS_SEED]}, by="run")
    return {
        "consecutive checkpoints, first 50k steps": lm.KLSetting(
            lm.consecutive_checkpoints("step", "run", interval=1000, after=2000, first=50), main_pre),
        "consecutive checkpoints, last 50k steps": lm.KLSetting(
            lm.consecutive_checkpoints("step", "run", interval=1000, after=2000, last=50), main_pre),
        "random seeds": lm.KLSetting(lm.differing_only_in("run", final="step"), seed_pre),
        "model sizes": lm.KLSetting(lm.differing_only_in("run", final="step"), main_pre),
        "8-bit quantization": lm.KLSetting(lm.original_vs("quantization", "none", "8bit", by=("source_model", "step"))),
        "4-bit quantization": lm.original_vs("quantization", "none", "4bit", by=("source_model", "step")),
        "fine-tuned vs base": lm.child_vs_parent("base_model"),
        "random pairs within a model type": lm.random_pairs(by="family", lineage="base_model"),
        "random pairs across all models": lm.random_pairs(lineage="base_model"),
        "adjacent layers": lm.adjacent_layers("layer", "source_model"),
    }


def _stats(kl):
    kl = np.asarray(kl)
    return len(kl), np.median(kl), np.mean(kl), np.std(kl, ddof=1)


def test_kl_scale_preprocesses_each_setting_as_the_paper(matrix, reference):
    table = lm.kl_scale(matrix, paper_settings())
    ref_cleaned, info = reference
    early, later = P.ref_consecutive(ref_cleaned)
    kl = lambda a, b, d, mb: P.ref_kl(d[a.split("@")[0]][int(a.split("@")[1])], d[b.split("@")[0]][int(b.split("@")[1])], mb)  # noqa: E731
    seeds = [r for r in P.SEED_RUNS if r != P.ANOMALOUS_SEED]
    seed_cleaned, seed_info = P.ref_preprocess(P.logp_dict(matrix, seeds), matrix.n_bytes)
    L = {m: matrix.values[i] for i, m in enumerate(matrix.models)}
    all_bytes = matrix.mean_bytes
    quant = lambda bits: [P.ref_kl(L[f"{s}@143000"], L[f"{s}@143000[{bits}]"], all_bytes) for s in ("1b", "2.8b")]  # noqa: E731
    expected = {
        "consecutive checkpoints, first 50k steps": [kl(a, b, ref_cleaned, info["mean_bytes"]) for a, b in early],
        "consecutive checkpoints, last 50k steps": [kl(a, b, ref_cleaned, info["mean_bytes"]) for a, b in later],
        "random seeds": P.ref_final_pairs(seed_cleaned, seed_info["mean_bytes"]),
        "model sizes": P.ref_final_pairs(ref_cleaned, info["mean_bytes"]),
        "8-bit quantization": quant("8bit"),
        "4-bit quantization": quant("4bit"),
        "fine-tuned vs base": [P.ref_kl(L[c], L[p], all_bytes) for c, p in
                               (("1b-chat", "1b@143000"), ("1b-code", "1b@143000"), ("1b-chat-v2", "1b-chat"),
                                ("2.8b-chat", "2.8b@143000"), ("410m-code", "410m@143000"))],
        "adjacent layers": [P.ref_kl(L[f"1b@143000@layer{k}"], L[f"1b@143000@layer{k + 1}"], all_bytes)
                            for k in range(4)],
    }
    for setting, values in expected.items():
        row = table.loc[setting]
        np.testing.assert_allclose([row["count"], row["median"], row["mean"], row["sd"]], _stats(values), rtol=1e-9,
                                   err_msg=setting)
    assert table.loc["random seeds", "count"] == 3 and table.loc["model sizes", "count"] == 10
    # each setting says what it was measured on
    assert table.loc["random seeds", "n_texts"] == 194 and table.loc["8-bit quantization", "n_texts"] == 200
    assert table.loc["model sizes", "mean_bytes"] == pytest.approx(info["mean_bytes"])
    assert table.loc["random seeds", "mean_bytes"] == pytest.approx(seed_info["mean_bytes"])
    assert seed_info["dropped"] != info["dropped"]  # the seed runs really get their own outlier texts
    assert "1b@116000" in table.loc["model sizes", "preprocessing"]
    assert "0 checkpoint(s) excluded" in table.loc["random seeds", "preprocessing"]
    assert table.loc["adjacent layers", "preprocessing"].startswith("as given: no clip")
    assert "exactly 1000 apart" in table.loc["consecutive checkpoints, last 50k steps", "pairs"]
    assert table.loc["model sizes", "paper_median"] == 0.48
    pairs = lm.kl_scale_pairs(matrix, paper_settings())
    assert list(pairs.columns) == ["setting", "a", "b", "kl", "se"] and len(pairs) == table["count"].sum()


# ---------------------------------------------------------------------- 5. random pairs
def test_random_pairs_follow_the_authors_sampling(matrix):
    mm = lm.ModelMap(matrix)
    lineage = {"chat": {"1b-chat", "1b@143000", "1b-chat-v2", "2.8b-chat", "2.8b@143000"},
               "code": {"1b-code", "1b@143000", "410m-code", "410m@143000"}}
    n_links = {"chat": 3, "code": 2}
    within = lm.random_pairs(by="family", lineage="base_model", seed=3)(mm)
    assert len(within) == 5
    counts = {"chat": 0, "code": 0}
    for a, b in within:
        kind = "chat" if {a, b} <= lineage["chat"] else "code"
        assert {a, b} <= lineage[kind] and a != b
        counts[kind] += 1
    assert counts == n_links
    # reseeded per type: both types draw the same positions in their sorted candidate lists
    two = lm.ModelMap(matrix.drop_models(["1b-chat-v2"]))  # chat now has 4 candidates and 2 links, like code
    within = lm.random_pairs(by="family", lineage="base_model", seed=3)(two)
    rows = {m: i for i, m in enumerate(two.models)}
    pattern = {}
    for a, b in within:
        kind = "chat" if {a, b} <= lineage["chat"] else "code"
        cands = sorted(lineage[kind] - {"1b-chat-v2"}, key=rows.get)
        pattern.setdefault(kind, []).append((cands.index(a), cands.index(b)))
    assert pattern["chat"] == pattern["code"]
    # across all types: as many as child–parent pairs, with replacement, lineage models only
    across = lm.random_pairs(lineage="base_model", seed=0)(mm)
    assert len(across) == 5 and all({a, b} <= lineage["chat"] | lineage["code"] and a != b for a, b in across)
    many = lm.random_pairs(60, lineage="base_model", seed=0)(mm)
    assert len(many) == 60 and len(set(many)) < 60  # 7 models: 42 ordered pairs at most
    assert lm.random_pairs(5, seed=0)(mm) == lm.random_pairs(5, seed=0)(mm) and len(set(lm.random_pairs(5)(mm))) == 5
    with pytest.raises(lm.LoglikMapError, match="is a string; give a pair rule"):
        lm.kl_scale_pairs(mm, {"w": "random pairs within a model type"})
    with pytest.raises(lm.LoglikMapError, match="leave n=None"):
        lm.random_pairs(10, by="family", lineage="base_model")


# ---------------------------------------------------------------------- consecutive KL and the axis name
def test_step_kl_never_bridges_unless_asked(cleaned):
    traj = cleaned.trajectory()
    steps = traj.step_kl()
    one_b = steps.where(steps.group == "1b", drop=True)
    assert 115000 not in one_b.step.values and 116000 not in one_b.step.values and one_b.sizes["transition"] == 151
    bridged = traj.step_kl(bridge=True)
    sel = (bridged.group == "1b") & (bridged.step == 115000)
    assert bridged.step_next.values[sel.values].tolist() == [117000] and bridged.attrs["bridge"] == 1
    flags = lm.dynamics.flag_outlier_models(traj, group="1b")
    assert "1b@115000" not in set(flags.model.values) and "1b@117000" not in set(flags.model.values)


def test_layer_trajectory_names_its_axis_layer(matrix):
    lens = lm.Trajectory(matrix.where_models(source_model="1b-lens"), order="layer")
    steps = lens.step_kl()
    assert "layer" in steps.coords and "layer_next" in steps.coords and "step" not in steps.coords
    assert steps.attrs["order"] == "layer" and lens.order == "layer"
    assert lens.displacement(0).dims == ("layer",)
    assert list(lens.positions()) == [0, 1, 2, 3, 4]
    assert lens.diffusion_exponents(window=2).attrs["order"] == "layer"


def test_kl_scale_carries_the_maps_options_to_the_maps_it_builds(matrix):
    """A user who accepted truncated rows for the whole map must not meet the refusal again in
    the per-setting maps kl_scale builds after preprocessing."""
    dropped = np.zeros(matrix.shape, dtype=np.int64)
    dropped[:, 0] = 3  # the first text lost 3 tokens in every model
    cut = lm.LogLikelihoodMatrix.from_dataarray(matrix.data.assign_coords(n_tokens_dropped=(("model", "text"), dropped)))
    setting = {"model sizes": paper_settings()["model sizes"]}
    with pytest.raises(lm.LoglikMapError, match="allow_truncated"):
        lm.kl_scale(cut, setting)
    table = lm.kl_scale(lm.ModelMap(cut, allow_truncated=True), setting)
    assert table.loc["model sizes", "count"] == 10
