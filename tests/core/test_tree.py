"""ModelMap.tree: the replicate maps, the observed tree, the p-values' calibration, the result's views."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.cluster import hierarchy
from scipy.spatial.distance import squareform

import loglik_map as lm
from loglik_map.core._multiscale import multiscale_fit
from loglik_map.core._tree import linkage_function, replicate_kl
from loglik_map.core._tree_lineage import lineage_clades
from loglik_map.errors import LoglikMapError

from ..conftest import make_matrix


def _matrix(X: np.ndarray, n_bytes: np.ndarray | None = None) -> lm.LogLikelihoodMatrix:
    K, N = X.shape
    return lm.LogLikelihoodMatrix(X - 300.0, models=[f"m{i}" for i in range(K)], texts=[f"t{k}" for k in range(N)],
                                  n_bytes=np.full(N, 1000) if n_bytes is None else n_bytes)


@pytest.fixture(scope="module")
def markov(markov_families) -> lm.synthetic.MarkovExample:
    return markov_families


@pytest.fixture(scope="module")
def markov_tree(markov) -> lm.core.ModelTree:
    return lm.ModelMap(markov.matrix).tree(n_boot=100, seed=0, progress=False)


# ---------------------------------------------------------------------- the replicates
def test_a_replicate_is_the_map_of_the_drawn_texts():
    """KL from counts (two products) = the KL of a ModelMap built on the drawn texts, repeats included."""
    m = make_matrix(K=6, N=120, seed=4)
    mm = lm.ModelMap(m)
    rng = np.random.default_rng(0)
    draws = [rng.integers(0, 120, size=n) for n in (60, 120, 168)]
    pairs = np.triu_indices(6, 1)
    for idx in draws:  # one size per call: every row of W sums to the same n'
        W = np.bincount(idx, minlength=120)[None, :].astype(float)
        got = replicate_kl(mm.points.values, m.n_bytes.astype(float), W, pairs)[0]
        drawn = lm.LogLikelihoodMatrix(m.values[:, idx], models=m.models, texts=[f"d{k}" for k in range(idx.size)],
                                       n_bytes=m.n_bytes[idx])
        want = lm.ModelMap(drawn).kl().values[pairs]
        np.testing.assert_allclose(got, want, rtol=1e-9)


@pytest.mark.parametrize("method", ["average", "complete", "single", "weighted", "ward"])
def test_the_replicate_linkage_is_scipys(method):
    rng = np.random.default_rng(1)
    for K in (2, 3, 9, 40):
        y = rng.random(K * (K - 1) // 2)
        np.testing.assert_array_equal(linkage_function(method)(y), hierarchy.linkage(y, method=method))


@pytest.mark.parametrize("metric", ["kl", "euclidean"])
def test_the_tree_is_the_linkage_of_the_maps_distances(metric):
    mm = lm.ModelMap(make_matrix(K=7, N=200, seed=2))
    tree = mm.tree(metric=metric, n_boot=10, scales=(0.8, 1.0, 1.2), seed=0, progress=False)
    d = mm.kl().values if metric == "kl" else np.sqrt(mm.kl().values)
    want = hierarchy.linkage(squareform(d, checks=False), method="average")
    np.testing.assert_allclose(np.sort(tree.linkage[:, 2]), want[:, 2], rtol=1e-9)
    assert tree.unit == ("bits/byte" if metric == "kl" else "sqrt(bits/byte)")
    assert sorted(tree.order) == sorted(mm.models) and len(tree.clades) == 6
    assert tree.clades.members.iloc[-1] == tuple(mm.models)  # the root


def test_the_counts_and_fit_follow_pvclusts_scales():
    """Replicate sizes ⌊r·N⌋ (pvclust drops repeated ones); r = n'/N; the p-values are msfit's of the counts."""
    mm = lm.ModelMap(make_matrix(K=5, N=25, seed=0))
    tree = mm.tree(n_boot=20, scales=(0.5, 0.52, 0.6, 1.0), seed=0, progress=False)
    assert tree.counts.n_drawn.values.tolist() == [12, 13, 15, 25]
    np.testing.assert_allclose(tree.scales, [12 / 25, 13 / 25, 15 / 25, 1.0])
    assert tree.counts.values.max() <= 20 and np.all(tree.counts.values[-1] == 20)  # the root is in every tree
    fit = multiscale_fit(tree.counts.values, tree.scales, 20)
    pd.testing.assert_series_equal(tree.clades.au, fit.au.rename_axis("clade"), check_names=False)


def test_the_same_seed_gives_the_same_tree_and_progress_is_reported():
    mm = lm.ModelMap(make_matrix(K=6, N=80, seed=5))
    seen = []
    a = mm.tree(n_boot=30, seed=7, progress=lambda done, total: seen.append((done, total)))
    b = mm.tree(n_boot=30, seed=7, progress=False)
    pd.testing.assert_frame_equal(a.clades, b.clades)
    assert seen[-1] == (300, 300)


def test_on_a_dask_cluster_the_tree_is_the_same():
    distributed = pytest.importorskip("distributed", reason="needs the parallel extra (dask.distributed)")
    mm = lm.ModelMap(make_matrix(K=6, N=80, seed=5))
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        there = mm.tree(n_boot=30, seed=7, progress=False, client=client)
    pd.testing.assert_frame_equal(there.clades, mm.tree(n_boot=30, seed=7, progress=False).clades)


@settings(max_examples=15)
@given(seed=st.integers(0, 2**16), K=st.integers(3, 7))
def test_the_support_does_not_depend_on_constants_or_the_models_order(seed, K):
    """Per-model and per-text constants leave the map unchanged, and so every replicate and count;
    the models' order changes nothing either (the replicates draw texts, not models)."""
    rng = np.random.default_rng(seed)
    N = 40
    X = rng.normal(size=(K, N)) + rng.normal(size=(3, N))[rng.integers(0, 3, size=K)] - 300.0
    shifted = X - rng.uniform(0, 50, size=(K, 1)) - rng.uniform(0, 50, size=(1, N))
    perm = rng.permutation(K)
    trees = [lm.ModelMap(_matrix(Y)).tree(n_boot=10, scales=(0.7, 1.0, 1.3), seed=seed, progress=False)
             for Y in (X, shifted)]
    names = np.array([f"m{i}" for i in range(K)])
    permuted = lm.LogLikelihoodMatrix(X[perm], models=names[perm], texts=[f"t{k}" for k in range(N)],
                                      n_bytes=np.full(N, 1000))
    trees.append(lm.ModelMap(permuted).tree(n_boot=10, scales=(0.7, 1.0, 1.3), seed=seed, progress=False))

    def counts(tree):
        return {frozenset(m): tuple(c) for m, c in zip(tree.clades.members, tree.counts.values)}

    assert counts(trees[0]) == counts(trees[1]) == counts(trees[2])


# ---------------------------------------------------------------------- calibration
def test_markov_families_are_supported(markov, markov_tree):
    """Each family (three chains perturbing one family chain) is a clade with AU ≥ 0.95."""
    families = {f: tuple(markov.matrix.models[markov.matrix.data.family.values == f]) for f in ("family0", "family1",
                                                                                            "family2")}
    for members in families.values():
        row = markov_tree.support(members)
        assert row.au >= 0.95, (members, row.au)
    assert {tuple(sorted(m)) for m in markov_tree.significant(max_only=True).members} == {
        tuple(sorted(m)) for m in families.values()}


@pytest.mark.slow
def test_au_is_unbiased_on_a_smooth_boundary():
    """The AU test's promise (Shimodaira 2002): for a group exactly on its region's boundary, P(AU ≥ 0.95) = 5 %.

    Three models with m1 and m2 equally far from m0 (and farther from each other): the group
    {m0, m1} is on the boundary d(m0, m1) = d(m0, m2). Over 200 maps its AU should be uniform;
    with 400 maps × 100 replicates we measured P(AU ≥ 0.95) = 0.050 and P(AU ≤ 0.05) = 0.045.
    The bounds are ±3 binomial SEs around 5 % for 200 maps; the KS test checks the whole distribution.
    """
    rng = np.random.default_rng(1)
    au = []
    for rep in range(200):
        base = rng.normal(size=150)
        X = np.vstack([base, base + rng.normal(size=150), base + rng.normal(size=150)])
        tree = lm.ModelMap(_matrix(X)).tree(n_boot=50, seed=rep, progress=False, clades={"01": ["m0", "m1"]})
        au.append(tree.tests.au.iloc[0])
    au = np.asarray(au)
    assert 0.005 <= np.mean(au >= 0.95) <= 0.095
    assert stats.kstest(au, "uniform").pvalue > 1e-3


@pytest.mark.slow
def test_au_on_maps_with_every_pair_equally_far_apart():
    """No group is real; AU ≥ 0.95 should come up in about 5 % of the tree's clades or fewer.

    Four models with independent noise around one text difficulty: every pair is equally far
    apart (the star tree, the apex of every clade's region, where AU is conservative). Measured
    with 100 maps × 200 replicates: 3.5 % of clades (K = 10: 1 %); BP ≥ 0.95: 0.5 %. The bound
    is 5 % plus 3 binomial SEs for the 120 clades here.
    """
    rng = np.random.default_rng(0)
    au = []
    for rep in range(60):
        tree = lm.ModelMap(_matrix(rng.normal(size=(4, 150)))).tree(n_boot=60, seed=rep, progress=False)
        au.extend(tree.clades.au.iloc[:-1])
    assert np.mean(np.asarray(au) >= 0.95) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / len(au))


# ---------------------------------------------------------------------- the result
def test_significant_max_only_keeps_the_largest_supported_clades(markov_tree):
    every = markov_tree.significant()
    top = markov_tree.significant(max_only=True)
    assert set(top.index) <= set(every.index) and len(top) <= len(every)
    members = [set(m) for m in top.members]
    assert all(a.isdisjoint(b) for i, a in enumerate(members) for b in members[i + 1:])
    assert (every.au >= 0.95).all() and len(markov_tree.clades) - 1 not in every.index  # root left out
    assert len(markov_tree.significant(0.5, pv="bp")) >= len(markov_tree.significant(pv="bp"))
    with pytest.raises(LoglikMapError, match="pv must be"):
        markov_tree.significant(pv="xx")


def test_newick_has_every_leaf_and_the_au_labels(markov_tree):
    text = markov_tree.to_newick()
    assert text.endswith(";") and text.count("(") == text.count(")") == len(markov_tree.clades)
    leaves = re.findall(r"[(,]([^(),:;]+):", text)
    assert leaves == list(markov_tree.order)
    labels = [int(x) for x in re.findall(r"\)(\d+)", text)]
    assert labels == [round(100 * a) for a in markov_tree.clades.au]
    assert "(" in markov_tree.to_newick(None, branch_lengths=False) and ":" not in markov_tree.to_newick(
        None, branch_lengths=False)


def test_newick_quotes_names_that_need_it():
    X = np.random.default_rng(0).normal(size=(3, 40)) - 100.0
    m = lm.LogLikelihoodMatrix(X, models=["a b", "it's", "c_d"], texts=[f"t{k}" for k in range(40)],
                               n_bytes=np.full(40, 100))
    text = lm.ModelMap(m).tree(n_boot=10, scales=(0.8, 1, 1.2), seed=0, progress=False).to_newick()
    assert "'a b'" in text and "'it''s'" in text and "'c_d'" in text


def test_a_tested_group_of_the_tree_has_its_clades_p_values(markov, markov_tree):
    clade = markov_tree.clades.iloc[0]
    tree = lm.ModelMap(markov.matrix).tree(n_boot=100, seed=0, progress=False,
                                           clades={"first": clade.members, "across": ["family0-member0",
                                                                                      "family1-member0"]})
    assert tree.tests.loc["first", "au"] == clade.au and tree.tests.loc["first", "clade"] == 0
    assert tree.tests.loc["across", "clade"] == -1 and tree.tests.loc["across", "au"] < 0.05
    assert tree.support(["family1-member0", "family0-member0"]).au < 0.05
    with pytest.raises(LoglikMapError, match="not a clade of the tree"):
        markov_tree.support(["family1-member0", "family0-member0"])


def test_card_lineages_the_texts_reject_are_flagged(markov):
    cards = pd.DataFrame({"model": ["family0-member1", "family0-member2", "family2-member0"],
                          "parent": ["family0-member0", "family0-member0", "family1-member0"]})
    tree = lm.ModelMap(markov.matrix).tree(n_boot=100, seed=0, progress=False, clades=cards)
    check = tree.check_lineage()
    assert list(check.index) == ["lineage of family0-member0", "lineage of family1-member0"]
    assert check.loc["lineage of family0-member0", "supported"] and not check.loc["lineage of family0-member0",
                                                                                   "rejected"]
    assert check.loc["lineage of family1-member0", "rejected"]  # a card claiming a parent in another family
    pd.testing.assert_frame_equal(tree.check_lineage(cards), check)
    plain = lm.ModelMap(markov.matrix).tree(n_boot=10, seed=0, progress=False)
    with pytest.raises(LoglikMapError, match="built without a lineage"):
        plain.check_lineage()
    with pytest.raises(LoglikMapError, match=r"tree\(clades=lineage\)"):
        plain.check_lineage(cards)


def test_lineage_clades_follow_chains_and_siblings_of_unmapped_bases():
    cards = pd.DataFrame({"model": ["a", "b", "c", "x", "y"], "parent": [None, "a", "b", "hub/base", "hub/base"]})
    got = lineage_clades(cards, ["a", "b", "c", "x", "y"])
    assert got == {"lineage of a": ("a", "b", "c"), "lineage of b": ("b", "c"), "lineage of hub/base": ("x", "y")}


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"linkage": "median"}, "unknown linkage"),
    ({"metric": "cosine"}, "unknown metric"),
    ({"linkage": "ward"}, "Ward linkage needs Euclidean"),
    ({"n_boot": 5}, "n_boot must be an integer ≥ 10"),
    ({"scales": (1.0, 1.0)}, "at least 3"),
    ({"scales": (0.0, 1.0, 2.0)}, "positive"),
    ({"clades": [["m0"]]}, "needs from 2 to"),
    ({"clades": [["m0", "nope"]]}, "nope"),
    ({"clades": "m0"}, "got str"),
])
def test_bad_arguments_are_refused(kwargs, match):
    mm = lm.ModelMap(make_matrix(K=4, N=50))
    with pytest.raises(LoglikMapError, match=match):
        mm.tree(**{"n_boot": 10, **kwargs})


def test_two_models_make_no_tree():
    with pytest.raises(LoglikMapError, match="at least 3 models"):
        lm.ModelMap(make_matrix(K=2, N=50)).tree(n_boot=10)


def test_the_repr_says_what_was_done(markov_tree):
    text = repr(markov_tree)
    assert "100 replicates × 10 scales r = 0.5, 0.6, …, 1.4 of 400 texts" in text
    assert "AU ≥ 0.95:" in text and "average on KL" in text
