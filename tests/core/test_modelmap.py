"""ModelMap: coordinates, KL queries, projection, nearest neighbours and embeddings."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import loglik_map as lm

from ..conftest import make_matrix


@pytest.fixture
def mm(matrix):
    return lm.ModelMap(matrix)


def test_squared_distance_of_coordinates_is_kl_in_bits_per_byte(mm, matrix):
    Q = mm.points
    assert Q.dims == ("model", "text") and Q.attrs["units"] == "sqrt(bits/byte)"
    L, B, N = matrix.values, matrix.mean_bytes, matrix.n_texts
    np.testing.assert_allclose(Q.values * np.sqrt(2 * N * B * np.log(2)), lm.core.double_center(L), atol=1e-10)
    for a, b in [(0, 1), (2, 4)]:
        expected = np.var(L[a] - L[b]) / (2 * B * np.log(2))
        assert np.sum((Q.values[a] - Q.values[b]) ** 2) == pytest.approx(expected, rel=1e-12)
        assert mm.kl(f"m{a}", f"m{b}") == pytest.approx(expected, rel=1e-12)
        assert mm.kl(f"m{a}", f"m{b}", unit="nats") == pytest.approx(np.var(L[a] - L[b]) / 2, rel=1e-12)


def test_all_pairs_are_labelled_dataarrays(mm):
    kl, se = mm.kl(), mm.kl_se()
    assert kl.dims == ("model", "model_") and list(kl.model_.values) == list(mm.models)
    assert kl.attrs["units"] == "bits/byte"
    assert float(kl.sel(model="m1", model_="m3")) == pytest.approx(mm.kl("m1", "m3"), rel=1e-10)
    assert float(se.sel(model="m1", model_="m3")) == pytest.approx(mm.kl_se("m1", "m3"), rel=1e-6)
    assert mm.kl("m2", "m2") == 0.0
    row = mm.kl("m1")
    assert row.dims == ("model",) and list(row.model.values) == list(mm.models)
    np.testing.assert_allclose(row.values, kl.values[1])


def test_se_shrinks_like_one_over_sqrt_n():
    big = make_matrix(K=2, N=8000, seed=5)
    small = big.isel(text=slice(0, 2000))
    ratio = lm.ModelMap(small).kl_se("m0", "m1") / lm.ModelMap(big).kl_se("m0", "m1")
    assert ratio == pytest.approx(2.0, rel=0.1)


def test_compare_returns_estimate_with_confidence_interval(mm):
    est = mm.compare("m0", "m3")
    assert est.kl == pytest.approx(mm.kl("m0", "m3")) and est.se == pytest.approx(mm.kl_se("m0", "m3"))
    ci = est.confidence_interval(0.95)
    assert ci.low == pytest.approx(est.kl - 1.959964 * est.se, rel=1e-6)
    assert ci.high == pytest.approx(est.kl + 1.959964 * est.se, rel=1e-6)
    assert "KL(m0, m3)" in str(est) and "bits/byte" in str(est) and "N = 300" in str(est)
    with pytest.raises(lm.LoglikMapError, match="confidence_level"):
        est.confidence_interval(95)


def test_summary_of_listed_pairs(mm):
    df = mm.summary([("m0", "m1"), ("m3", "m2")], unit="nats")
    assert isinstance(df, pd.DataFrame) and list(df.columns[:4]) == ["a", "b", "kl", "se"]
    assert df.kl[1] == pytest.approx(mm.kl("m3", "m2", unit="nats"), rel=1e-10)
    assert df.se[0] == pytest.approx(mm.kl_se("m0", "m1", unit="nats"), rel=1e-6)
    with pytest.raises(lm.LoglikMapError, match="'zz' is not on the map"):
        mm.summary([("m0", "zz")])


def test_nearest(mm):
    near = mm.nearest("m2", k=3)
    full = mm.kl("m2").drop_sel(model="m2").sortby(lambda x: x)
    assert list(near.model.values) == list(full.model.values[:3])
    np.testing.assert_allclose(near.values, full.values[:3], rtol=1e-10)
    assert "se" in near.coords
    every = mm.nearest(k=3, progress=False)  # no model: every model's k nearest, block by block
    assert every.neighbour.sel(model="m2").values.tolist() == near.model.values.tolist()
    np.testing.assert_allclose(every.kl.sel(model="m2").values, near.values, rtol=1e-9)
    with pytest.raises(lm.LoglikMapError, match="name the model"):
        mm.nearest(test=True)


def test_project_places_new_models_without_moving_the_map(matrix):
    base = matrix.isel(model=[0, 1, 2])
    new = matrix.isel(model=[3, 4])
    mm = lm.ModelMap(base)
    before = mm.points.values.copy()
    proj = mm.project(new)
    assert np.array_equal(mm.points.values, before)
    full = lm.ModelMap(matrix)
    np.testing.assert_allclose(proj.kl.values, full.kl().values[3:, :3], rtol=1e-9)
    np.testing.assert_allclose(proj.se.values, full.kl_se().values[3:, :3], rtol=1e-6)
    assert proj.kl.dims == ("model", "model_") and list(proj.kl.model.values) == ["m3", "m4"]
    # centred with the map's text means: distances between projected rows and map rows are KL
    d = proj.points.values[0] - mm.points.values[1]
    assert np.sum(d**2) == pytest.approx(proj.kl.values[0, 1], rel=1e-10)
    with pytest.raises(lm.LoglikMapError, match="different texts"):
        mm.project(new.isel(text=slice(0, 100)))


def test_pca_embedding_is_deterministic_and_labelled(mm):
    emb = mm.embed("pca", n_components=2)
    assert emb.dims == ("model", "component") and emb.shape == (5, 2)
    assert list(emb["family"].values) == ["a", "a", "b", "b", "c"]
    ratios = emb.attrs["explained_variance_ratio"]
    assert ratios[0] >= ratios[1] > 0 and sum(ratios) <= 1 + 1e-12
    # pairwise distances in the full PCA equal the map distances
    full = mm.embed("pca", n_components=5)
    d2 = np.sum((full.values[0] - full.values[3]) ** 2)
    assert d2 == pytest.approx(mm.kl("m0", "m3"), rel=1e-8)
    np.testing.assert_array_equal(mm.embed("pca").values, emb.values)


def test_tsne_embedding(matrix):
    pytest.importorskip("sklearn", reason="t-SNE needs the 'plot' extra (scikit-learn)")
    mm = lm.ModelMap(make_matrix(K=12, N=200, seed=2))
    emb = mm.embed("tsne", n_components=2, perplexity=3, seed=0)
    assert emb.shape == (12, 2) and np.all(np.isfinite(emb.values))
    np.testing.assert_allclose(mm.embed("tsne", perplexity=3, seed=0).values, emb.values)
    with pytest.raises(lm.LoglikMapError, match="perplexity"):
        mm.embed("tsne", perplexity=30)


def test_errors_name_the_problem(mm):
    with pytest.raises(lm.LoglikMapError, match="'nope' is not on the map"):
        mm.kl("m0", "nope")
    with pytest.raises(lm.LoglikMapError, match="unknown unit 'bits'"):
        mm.kl(unit="bits")
    with pytest.raises(lm.LoglikMapError, match="unknown embedding method"):
        mm.embed("umap")
    with pytest.raises(lm.LoglikMapError, match="ModelMap needs"):
        lm.ModelMap(np.zeros((2, 2)))


def test_modelmap_accepts_a_dataarray(matrix):
    assert lm.ModelMap(matrix.data).kl("m0", "m1") == pytest.approx(lm.ModelMap(matrix).kl("m0", "m1"))


# ---------------------------------------------------------------------- estimates that cannot be trusted
def _few_texts(n: int) -> lm.LogLikelihoodMatrix:
    return make_matrix(K=3, N=n, seed=3)


def test_one_text_gives_no_kl():
    mm = lm.ModelMap(_few_texts(1))
    for query in (mm.kl, lambda: mm.kl("m0", "m1"), lambda: mm.compare("m0", "m1"), lambda: mm.kl_se()):
        with pytest.raises(lm.LoglikMapError, match="at least 2 texts.*has 1"):
            query()


def test_two_texts_give_a_kl_but_no_standard_error():
    mm = lm.ModelMap(_few_texts(2))
    assert mm.kl("m0", "m1") > 0
    queries = (mm.kl_se, lambda: mm.compare("m0", "m1"), lambda: mm.summary([("m0", "m1")]),
               lambda: mm.nearest("m0"), lambda: mm.project(_few_texts(2).isel(model=[0])))
    for query in queries:
        with pytest.raises(lm.LoglikMapError, match="standard error needs at least 3 texts.*0 by construction"):
            query()


def test_standard_errors_from_few_texts_carry_a_warning():
    from loglik_map.core._modelmap import MIN_TEXTS_FOR_SE
    from loglik_map.errors import UnreliableEstimateWarning

    assert MIN_TEXTS_FOR_SE == 32
    mm = lm.ModelMap(_few_texts(MIN_TEXTS_FOR_SE - 1))
    with pytest.warns(UnreliableEstimateWarning, match="only 31 texts: below 32"):
        est = mm.compare("m0", "m1")
    assert est.se > 0
    with pytest.warns(UnreliableEstimateWarning):
        mm.kl_se()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mm.kl()  # KL alone: no SE to misread
        lm.ModelMap(_few_texts(MIN_TEXTS_FOR_SE)).compare("m0", "m1")


def _huge(values: np.ndarray) -> lm.LogLikelihoodMatrix:
    """A matrix holding ``values`` without the constructor's checks (they are not what is tested)."""
    base = make_matrix(K=values.shape[0], N=values.shape[1], seed=1)
    return lm.LogLikelihoodMatrix._wrap(base.data.copy(data=values))


@pytest.mark.parametrize("backend", ["blas", "numba", "numpy"])
def test_overflowing_kl_is_refused_naming_the_models(backend):
    values = make_matrix(K=3, N=40, seed=2).values
    values[1, 5] = -1e300
    mm = lm.ModelMap(_huge(values), backend=backend)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no numpy overflow warnings either
        for query in (mm.kl, mm.kl_se, lambda: mm.compare("m0", "m1"), lambda: mm.summary([("m1", "m2")]),
                      lambda: mm.nearest("m1")):
            with pytest.raises(lm.LoglikMapError, match=r"KL between models 'm\d' and 'm\d': is not finite"):
                query()
        with pytest.raises(lm.LoglikMapError, match="cannot embed"):
            mm.embed()
        new = _huge(make_matrix(K=1, N=40, seed=3).values).rename_models({"m0": "new"})
        with pytest.raises(lm.LoglikMapError, match=r"KL between models 'new' and 'm1': is not finite"):
            mm.project(new)
        assert np.isfinite(mm.kl("m0", "m2"))  # pairs without the huge entry are fine


def test_overflowing_cross_entropy_is_refused():
    values = make_matrix(K=2, N=4, seed=2).values
    values[0] = -1.7e308
    with pytest.raises(lm.LoglikMapError, match="cross-entropy of model 'm0' overflows"):
        _huge(values).entropy()


def test_every_door_to_one_pair_gives_the_same_bits():
    # numpy's pairwise summation and the listed-pairs kernel's sequential one differ in the last
    # bit for many pairs; every per-pair query goes through the one kernel, so they agree exactly
    rng = np.random.default_rng(1)
    L = -500 + 3 * rng.normal(size=(4, 1000))
    m = lm.LogLikelihoodMatrix(L, models=list("abcd"), texts=[f"t{k}" for k in range(1000)],
                               n_bytes=rng.integers(500, 1500, 1000))
    mm = lm.ModelMap(m)
    pairs = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    table = mm.summary(pairs)
    assert table["kl"].tolist() == [mm.kl(a, b) for a, b in pairs]
    assert table["se"].tolist() == [mm.kl_se(a, b) for a, b in pairs]
    assert [mm.compare(a, b).kl for a, b in pairs] == table["kl"].tolist()
    near = mm.nearest("a", k=3)
    assert [float(near.sel(model=b)) for b in "bcd"] == [mm.kl("a", b) for b in "bcd"]


# ---------------------------------------------------------------------- one-row queries compute one row
@pytest.mark.parametrize("backend", ["blas", "numba", "numpy"])
def test_one_row_equals_the_row_of_all_pairs(backend):
    mm = lm.ModelMap(make_matrix(K=40, N=500, seed=3), backend=backend)
    kl, se = mm.kl(), mm.kl_se()
    for i in (0, 17, 39):
        name = f"m{i}"
        row, row_se = mm.kl(name), mm.kl_se(name, unit="nats")
        np.testing.assert_allclose(row.values, kl.values[i], rtol=1e-12)
        np.testing.assert_allclose(row_se.values, se.values[i] * mm.mean_bytes * np.log(2), rtol=1e-12)
        assert row.values[i] == 0.0 and row_se.values[i] == 0.0
        assert row.values.tolist() == [mm.kl(name, other) for other in mm.models]  # the pair doors, bit for bit
        np.testing.assert_array_equal(mm.kl(b=name).values, row.values)  # KL is symmetric
        assert row.dims == ("model",) and list(row.model.values) == list(mm.models)
        assert row.name == "kl" and row.attrs == {"units": "bits/byte", "reference_model": name}
        assert row_se.name == "kl_se" and row_se.attrs == {"units": "nats", "reference_model": name}


def test_one_row_known_answer():
    # a − b = (2, 0, −2, 0): var = 2, so KL = 1 nat per text; the scaled squared differences are
    # (½, 0, ½, 0) around their mean ¼, so SE = sqrt(4 · (¼)²) = ½ nat. c = a − 5 is a at another offset.
    a = np.full(4, -100.0)
    m = lm.LogLikelihoodMatrix([a, a - [2.0, 0.0, -2.0, 0.0], a - 5.0], models=["a", "b", "c"],
                               texts=["t0", "t1", "t2", "t3"], n_bytes=[100] * 4)
    mm = lm.ModelMap(m)
    with pytest.warns(lm.UnreliableEstimateWarning):
        se = mm.kl_se("a", unit="nats").values
    np.testing.assert_allclose(mm.kl("a", unit="nats").values, [0.0, 1.0, 0.0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(se, [0.0, 0.5, 0.0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(mm.kl(b="b").values, np.array([1.0, 0.0, 1.0]) / (100 * np.log(2)), rtol=1e-12)


def test_one_row_queries_never_build_the_k_by_k_matrix(monkeypatch):
    import importlib
    import tracemalloc

    K = 1000
    both = make_matrix(K=K + 1, N=40, seed=4)
    mm, new = lm.ModelMap(both.isel(model=slice(0, K)), backend="numpy"), both.isel(model=[K])
    mm.kl("m0")  # warm-up (imports, first calls)

    def refuse(*args, **kwargs):
        raise AssertionError("a one-row query ran the all-pairs kernel")

    monkeypatch.setattr(lm.ModelMap, "_all_pairs", refuse)
    monkeypatch.setattr(importlib.import_module("loglik_map.core._pair_queries"), "pairwise_kl_se", refuse)
    queries = {
        "kl(a)": lambda: mm.kl("m3"), "kl(b=)": lambda: mm.kl(b="m3"), "kl_se(a)": lambda: mm.kl_se("m3"),
        "compare": lambda: mm.compare("m3", "m4"), "nearest": lambda: mm.nearest("m3", k=5),
        "nearest(test)": lambda: mm.nearest("m3", k=5, test=True), "project": lambda: mm.project(new),
        "summary(pairs)": lambda: mm.summary([("m3", "m4"), ("m5", "m6")]),
    }
    for what, query in queries.items():
        tracemalloc.start()
        try:
            query()
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak < K * K * 8 / 4, f"{what} allocated {peak} bytes, a K × K float64 array is {K * K * 8}"
    with pytest.raises(AssertionError, match="all-pairs kernel"):
        mm.kl()  # the check can fail
