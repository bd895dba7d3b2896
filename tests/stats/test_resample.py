"""Fewer texts: LS/KL/uniform resampling against the authors' formulas, the weighted map, the text budget."""

from __future__ import annotations

import numpy as np
import pytest

import loglik_map as lm
from loglik_map.stats import resampling_error, selection_probabilities

from ..conftest import make_matrix


# ---------------------------------------------------------------------- the authors' procedure, re-expressed
# shimo-lab/modelmap resampling-texts/src/matrix.py (ColumnSampling, LogLikelihoodMatrix.resampled_G) and
# fig2_resampling_error.py (diff_absolute, diff_relative), written out independently for comparison.
def _ref_double_centre(X):
    X = X - X.mean(axis=1, keepdims=True)
    return X - X.mean(axis=0, keepdims=True)


def _ref_probs(Q, method):
    K, N = Q.shape
    if method == "uni":
        p = np.ones(N)
    elif method == "lss":
        p = (Q**2).sum(axis=0)
    else:
        m = [(Q**k).sum(axis=0) for k in (1, 2, 3, 4)]
        p = np.sqrt(np.maximum(2 * K * m[3] + 6 * m[1] ** 2 - 8 * m[0] * m[2], 0))
    return p / p.sum()


def _ref_sampling(Q, method, n, seed):
    p = _ref_probs(Q, method)
    np.random.seed(seed)  # noqa: NPY002 (the authors' global legacy generator, on purpose)
    idx = np.random.choice(Q.shape[1], size=n, replace=True, p=p)  # noqa: NPY002
    per_draw = 1.0 / np.sqrt(n * p[idx])
    uniq, first, counts = np.unique(idx, return_index=True, return_counts=True)
    return uniq, np.sqrt(counts) * per_draw[first]


def _ref_pwd(X):
    s = (X**2).sum(axis=1)
    return np.maximum(s[:, None] + s[None, :] - 2 * X @ X.T, 0)


def _ref_resampled_G(L, idx, scale):
    w = scale**2 / np.sum(scale**2)
    Ls = L[:, idx]
    return _ref_pwd((Ls - (Ls * w).sum(axis=1, keepdims=True)) * scale)


def _heteroscedastic(K=12, N=600, seed=0):
    rng = np.random.default_rng(seed)
    sig = np.exp(rng.normal(0, 0.8, N))
    L = -400 + (rng.normal(size=(K, 4)) @ rng.normal(size=(4, N))) * sig + rng.normal(size=(K, N)) * sig
    return lm.LogLikelihoodMatrix(L, models=[f"m{i}" for i in range(K)], texts=[f"t{k}" for k in range(N)],
                                  n_bytes=rng.integers(300, 1024, N))


@pytest.fixture(scope="module")
def hetero():
    return _heteroscedastic()


@pytest.mark.parametrize("method, theirs", [("uniform", "uni"), ("ls", "lss"), ("kl", "kls")])
def test_selection_matches_the_authors_code(hetero, method, theirs):
    L = hetero.values
    Q = _ref_double_centre(L)
    np.testing.assert_allclose(selection_probabilities(hetero, method), _ref_probs(Q, theirs), rtol=1e-12)
    n, seed = 250, 43
    idx, scale = _ref_sampling(Q, theirs, n, seed)
    sel = lm.resample_texts(hetero, n, method, seed=seed)
    # the same draws (an int seed draws as np.random.seed(seed) does), the same weights
    np.testing.assert_array_equal(sel.texts, hetero.texts[idx])
    w = sel.data["text_weight"].values
    np.testing.assert_allclose(w * hetero.n_texts / sel.n_texts, scale**2, rtol=1e-12)
    assert sel.data["selection_count"].values.sum() == n
    # the same squared distances: G = 2 N KL (nats), N the full set's number of texts
    G_theirs = _ref_resampled_G(L, idx, scale)
    G_ours = 2 * hetero.n_texts * lm.ModelMap(sel).kl(unit="nats").values
    np.testing.assert_allclose(G_ours, G_theirs, rtol=1e-9, atol=1e-9 * G_theirs.max())
    # and their two error measures
    G = _ref_pwd(Q)
    full, mm = lm.ModelMap(hetero), lm.ModelMap(sel)
    assert resampling_error(mm, full) == pytest.approx(np.linalg.norm(G_theirs - G) / np.linalg.norm(G), rel=1e-9)
    rel = np.sqrt(np.mean((np.abs(G_theirs - G) / np.maximum(G, 1e-3)) ** 2))
    assert resampling_error(mm, full, "relative") == pytest.approx(rel, rel=1e-9)


def test_selection_record_and_repr(hetero):
    sel = lm.resample_texts(hetero, 200, "ls", seed=np.random.default_rng(1))
    a = sel.attrs
    assert a["selection_method"] == "ls" and a["selection_n_draws"] == 200
    assert a["selection_source_n_texts"] == hetero.n_texts and len(a["selection_source_fingerprint"]) == 32
    assert a["selection_seed"] == ""
    p = selection_probabilities(hetero, "ls")
    np.testing.assert_allclose(sel.data["selection_probability"].values, p[np.isin(hetero.texts, sel.texts)])
    assert "weighted (LS resampling" in repr(lm.ModelMap(sel)) and "weighted" in repr(sel)
    assert "weighted" not in repr(lm.ModelMap(hetero))


def test_unit_weights_change_nothing(matrix):
    weighted = lm.LogLikelihoodMatrix.from_dataarray(
        matrix.data.assign_coords(text_weight=("text", np.ones(matrix.n_texts))))
    a, b = lm.ModelMap(matrix), lm.ModelMap(weighted)
    assert b.mean_bytes == a.mean_bytes
    np.testing.assert_allclose(b.points.values, a.points.values, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(b.kl().values, a.kl().values, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(b.kl_se().values, a.kl_se().values, rtol=1e-12, atol=1e-15)
    new = make_matrix(K=2, seed=9)
    new = lm.LogLikelihoodMatrix(new.values, models=["x", "y"], texts=matrix.texts, n_bytes=matrix.n_bytes)
    pa, pb = a.project(new), b.project(new)
    np.testing.assert_allclose(pb.kl.values, pa.kl.values, rtol=1e-12)
    np.testing.assert_allclose(pb.se.values, pa.se.values, rtol=1e-12)
    assert weighted.entropy() == pytest.approx(matrix.entropy(), rel=1e-12)


def test_the_scale_of_the_weights_is_that_of_a_sum(matrix):
    """Locations (centring, B̄) ignore a common factor of the weights; the KL, a weighted sum, scales with it."""
    doubled = lm.LogLikelihoodMatrix.from_dataarray(matrix.data.assign_coords(text_weight=("text",
                                                                                          np.full(matrix.n_texts, 4.0))))
    with pytest.warns(lm.LoglikMapWarning, match="average 4, not about 1"):
        mm = lm.ModelMap(doubled)
    assert mm.mean_bytes == pytest.approx(matrix.mean_bytes)
    assert mm.kl("m0", "m1") == pytest.approx(4 * lm.ModelMap(matrix).kl("m0", "m1"))


def test_weights_enter_every_mean(matrix):
    rng = np.random.default_rng(3)
    w = rng.uniform(0.2, 3.0, matrix.n_texts)
    weighted = lm.LogLikelihoodMatrix.from_dataarray(matrix.data.assign_coords(text_weight=("text", w)))
    mm = lm.ModelMap(weighted)
    assert mm.mean_bytes == pytest.approx(np.average(matrix.n_bytes, weights=w))
    L = matrix.values
    d = L[0] - L[1]
    y = (d - np.average(d, weights=w)) ** 2
    kl_nats = np.sum(w * y) / (2 * matrix.n_texts)
    assert mm.kl("m0", "m1", unit="nats") == pytest.approx(kl_nats, rel=1e-10)
    u = w * y / 2  # the per-text terms of the KL: SE = sd(u) / sqrt(N)
    assert mm.kl_se("m0", "m1", unit="nats") == pytest.approx(np.std(u) / np.sqrt(matrix.n_texts), rel=1e-8)
    ce = -np.average(L, axis=1, weights=w) / (mm.mean_bytes * np.log(2))
    np.testing.assert_allclose(weighted.cross_entropy().values, ce, rtol=1e-12)
    # a projected model gets the pairwise estimate, as on an unweighted map
    proj = lm.ModelMap(weighted.isel(model=[1, 2, 3, 4])).project(weighted.isel(model=[0]), unit="nats")
    assert float(proj.kl.sel(model="m0", model_="m1")) == pytest.approx(kl_nats, rel=1e-10)


def test_paired_tests_use_the_weights(matrix):
    w = np.random.default_rng(5).uniform(0.2, 3.0, matrix.n_texts)
    mm = lm.ModelMap(lm.LogLikelihoodMatrix.from_dataarray(matrix.data.assign_coords(text_weight=("text", w))))
    diff = lm.closer(mm, "m0", "m1", "m2")
    assert diff.kl_1 == pytest.approx(mm.kl("m0", "m1"), rel=1e-10)
    assert diff.kl_2 == pytest.approx(mm.kl("m0", "m2"), rel=1e-10)
    table = mm.nearest("m0", test=True)
    np.testing.assert_allclose(table["kl"].values, mm.kl("m0").sel(model=table["model"].values).values, rtol=1e-10)
    np.testing.assert_allclose(table["se"].values, mm.kl_se("m0").sel(model=table["model"].values).values, rtol=1e-8)
    with pytest.raises(lm.LoglikMapError, match="use method='delta'"):
        lm.kl_difference(mm, ("m0", "m1"), ("m0", "m2"), method="jackknife")


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan])
def test_bad_weights_are_refused(matrix, bad):
    w = np.ones(matrix.n_texts)
    w[7] = bad
    weighted = lm.LogLikelihoodMatrix.from_dataarray(matrix.data.assign_coords(text_weight=("text", w)))
    with pytest.raises(lm.LoglikMapError, match="text weight 7 .* finite and positive"):
        lm.ModelMap(weighted)


def test_resample_refuses_bad_input(hetero):
    with pytest.raises(lm.LoglikMapError, match="unknown method"):
        lm.resample_texts(hetero, 10, "variance")
    with pytest.raises(lm.LoglikMapError, match="positive integer"):
        lm.resample_texts(hetero, 0)
    sel = lm.resample_texts(hetero, 50, seed=0)
    with pytest.raises(lm.LoglikMapError, match="already a weighted selection"):
        lm.resample_texts(sel, 10)
    with pytest.raises(lm.errors.WrongTypeError):
        lm.resample_texts(hetero.values, 10)
    with pytest.raises(lm.LoglikMapError, match="run it on the full text set"):
        lm.stats.text_resampling_stability(sel)


def test_ls_beats_uniform_on_a_heteroscedastic_matrix(hetero):
    full = lm.ModelMap(hetero)

    def rms(method):
        errs = [resampling_error(lm.ModelMap(lm.resample_texts(hetero, 150, method, seed=s)), full)
                for s in range(12)]
        return float(np.sqrt(np.mean(np.square(errs))))

    assert rms("ls") < 0.75 * rms("uniform")


def test_texts_needed_predicts_the_spread_of_the_kl(hetero):
    full = lm.ModelMap(hetero)
    target = float(np.median(full.summary()["se"])) * 1.5
    with pytest.warns(lm.UnreliableEstimateWarning, match="about 15 texts"):
        budget = lm.texts_needed(hetero, target, "ls")  # few texts: the synthetic matrix is nearly low-rank
    assert budget.n_unique <= budget.n_draws and budget.full_set_se < target
    uniform = lm.texts_needed(hetero, target, "uniform")
    assert budget.n_draws < uniform.n_draws  # LS needs fewer texts for the same error
    # the KLs of maps drawn with that budget spread about the target (median over pairs)
    iu = np.triu_indices(hetero.n_models, k=1)
    kls = np.array([lm.ModelMap(lm.resample_texts(hetero, budget.n_draws, "ls", seed=s)).kl().values[iu]
                    for s in range(40)])
    spread = float(np.median(kls.std(axis=0)))
    assert 0.6 * target < spread < 1.5 * target
    assert "draws" in str(budget)
    with pytest.raises(lm.LoglikMapError, match="below what all 600 texts"):
        lm.texts_needed(hetero, target / 100, "ls")


def test_textset_matching_carries_the_weights():
    texts = lm.TextSet([f"text number {k}" for k in range(40)])
    rng = np.random.default_rng(0)
    m = lm.LogLikelihoodMatrix(-100 + rng.normal(size=(3, 40)) * rng.uniform(0.1, 3, 40), models=list("abc"),
                               texts=texts.ids, n_bytes=texts.n_bytes)
    sel = lm.resample_texts(m, 20, seed=1)
    sub = texts.matching(sel)
    assert list(sub.ids) == list(sel.texts)
    np.testing.assert_array_equal(sub.text_coords()["text_weight"], sel.data["text_weight"].values)
    with pytest.raises(lm.LoglikMapError, match="not in this text set"):
        lm.TextSet(["other"]).matching(sel)


def test_a_selection_survives_saving(hetero, tmp_path):
    pytest.importorskip("h5netcdf", reason="netCDF tests need the 'io' extra (h5netcdf)")
    sel = lm.resample_texts(hetero, 120, "kl", seed=7)
    sel.save(tmp_path / "sel.nc")
    back = lm.open_matrix(tmp_path / "sel.nc")
    np.testing.assert_array_equal(back.data["text_weight"].values, sel.data["text_weight"].values)
    assert {k: v for k, v in back.attrs.items() if k.startswith("selection_")} == \
        {k: v for k, v in sel.attrs.items() if k.startswith("selection_")}
    np.testing.assert_allclose(lm.ModelMap(back).kl().values, lm.ModelMap(sel).kl().values, rtol=1e-12)


def test_a_pair_store_of_the_unweighted_map_is_not_reused_for_the_weighted_one(tmp_path):
    pytest.importorskip("zarr", reason="pair stores need the 'io' extra (zarr)")
    m = make_matrix(K=6, N=80)
    m = lm.LogLikelihoodMatrix(m.values, models=m.models, texts=m.texts, n_bytes=np.full(80, 700))  # same B̄ both ways
    lm.ModelMap(m).all_pairs(tmp_path / "p.zarr", block_size=3)
    w = np.tile([0.5, 1.5], 40)  # exact arithmetic: the weighted B̄ is exactly 700 too
    weighted = lm.ModelMap(lm.LogLikelihoodMatrix.from_dataarray(m.data.assign_coords(text_weight=("text", w))))
    with pytest.raises(lm.LoglikMapError):
        weighted.all_pairs(tmp_path / "p.zarr", block_size=3)
    ds = weighted.all_pairs(tmp_path / "w.zarr", block_size=3)
    np.testing.assert_allclose(ds["kl"].values, weighted.kl().values, rtol=1e-10)
    np.testing.assert_allclose(ds["se"].values, weighted.kl_se().values, rtol=1e-8)
