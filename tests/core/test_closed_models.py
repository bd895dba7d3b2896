"""Closed models placed from their samples: known answers, calibration on Markov chains, refusals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import loglik_map as lm
from loglik_map.core import closer_by_samples
from loglik_map.synthetic import make_closed_markov_example

LN2 = np.log(2.0)


def _matrix(values, n_bytes, **text_coords):
    values = np.asarray(values, dtype=float)
    return lm.LogLikelihoodMatrix(values, models=[f"m{i}" for i in range(values.shape[0])],
                                  texts=[f"t{k}" for k in range(values.shape[1])], n_bytes=n_bytes,
                                  text_coords=text_coords or None)


def test_known_answer_equal_lengths_is_the_spec_formula():
    rng = np.random.default_rng(0)
    n, B = 200, 500
    values = -B * 0.8 + rng.normal(size=(3, n)) * 5 + np.array([[0.0], [-3.0], [-10.0]])
    placed = lm.place_by_samples(_matrix(values, np.full(n, B)))
    d = values[0] - values[1]
    assert placed.attrs["nearest"] == "m0" and placed.attrs["reference"] == "m0"
    assert placed.kl_excess.sel(model="m1") == pytest.approx(d.mean() / (B * LN2), rel=1e-12)
    assert placed.se.sel(model="m1") == pytest.approx(d.std(ddof=1) / (np.sqrt(n) * B * LN2), rel=1e-12)
    assert placed.cross_entropy.sel(model="m2") == pytest.approx(-values[2].mean() / (B * LN2), rel=1e-12)
    assert list(placed.closeness_rank.values) == [0, 1, 2]
    assert placed.se.sel(model="m0") == 0 and np.isnan(placed.p_value.sel(model="m0"))


def test_cross_entropy_agrees_with_the_matrix_and_nats_are_per_sample():
    ex = make_closed_markov_example(n_samples=100, seed=2)
    placed = lm.place_by_samples(ex.matrix)
    np.testing.assert_allclose(placed.cross_entropy.values, ex.matrix.cross_entropy().values, rtol=1e-12)
    nats = lm.place_by_samples(ex.matrix, unit="nats")
    np.testing.assert_allclose(nats.kl_excess.values,
                               placed.kl_excess.values * ex.matrix.mean_bytes * LN2, rtol=1e-10)
    assert nats.attrs["units"] == "nats" and "H(q)" in placed.attrs["not_identified"]


def test_given_reference_and_the_paired_comparison_agree():
    ex = make_closed_markov_example(n_samples=150, seed=4)
    placed = lm.place_by_samples(ex.matrix, reference="open3")
    assert placed.attrs["reference_rule"] == "given" and placed.kl_excess.sel(model="open3") == 0
    cmp = closer_by_samples(ex.matrix, "open1", "open3")
    assert cmp.difference == pytest.approx(float(placed.kl_excess.sel(model="open1")), rel=1e-12)
    assert cmp.se == pytest.approx(float(placed.se.sel(model="open1")), rel=1e-12)
    assert cmp.closed == "closed" and cmp.n_samples == 150
    ci = cmp.confidence_interval()
    assert ci.low < cmp.difference < ci.high and "closed" in str(cmp)


def test_repeated_draws_count_as_often_as_drawn():
    rng = np.random.default_rng(1)
    values = -400 + rng.normal(size=(3, 40)) * 4
    n_bytes = rng.integers(300, 600, size=40)
    draws = rng.integers(1, 4, size=40)
    expanded = _matrix(np.repeat(values, draws, axis=1), np.repeat(n_bytes, draws))
    counted = _matrix(values, n_bytes, n_draws=draws)
    a, b = lm.place_by_samples(expanded), lm.place_by_samples(counted)
    for name in ("cross_entropy", "kl_excess", "se", "cross_entropy_se"):
        np.testing.assert_allclose(a[name].values, b[name].values, rtol=1e-12, atol=1e-15)
    assert b.attrs["n_samples"] == draws.sum() and b.attrs["n_unique_samples"] == 40


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-50, 50), min_size=12, max_size=12))
def test_a_constant_per_sample_cancels(shift):
    """Adding c_k to every model's log-likelihood of sample k changes no excess KL (it is not a model's)."""
    rng = np.random.default_rng(3)
    values = -300 + rng.normal(size=(3, 12)) * 3
    n_bytes = rng.integers(200, 400, size=12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", lm.UnreliableEstimateWarning)
        a = lm.place_by_samples(_matrix(values, n_bytes), reference="m0")
        b = lm.place_by_samples(_matrix(values + np.asarray(shift), n_bytes), reference="m0")
    np.testing.assert_allclose(a.kl_excess.values, b.kl_excess.values, atol=1e-9)
    np.testing.assert_allclose(a.se.values, b.se.values, atol=1e-9)


def test_intervals_cover_the_exact_differences_and_the_nearest_is_found():
    """The issue's goals: 95 % intervals cover the exact KL differences in ≥ 90 % of cases; the
    nearest open chain is found from 300 samples in ≥ 80 % of draws. The two nearest chains are
    1.75 SEs apart, so finding the nearest is not a foregone conclusion (≈ 96 % expected)."""
    base = make_closed_markov_example(n_open=4, spreads=[0.3, 0.3, 0.4, 0.55], seed=3)
    true_nearest = str(base.exact_kl.idxmin().item())
    rng = np.random.default_rng(0)
    covered, nearest = [], []
    for _ in range(50):
        ex = make_closed_markov_example(closed=base.closed, models=base.models, n_samples=300, min_length=32,
                                        max_length=128, seed=rng)
        for ref in ("open0", "open3"):
            placed = lm.place_by_samples(ex.matrix, reference=ref)
            exact = ex.exact_excess(ref).values
            inside = (placed.ci_low.values <= exact) & (exact <= placed.ci_high.values)
            covered.extend(np.delete(inside, ex.matrix.models.tolist().index(ref)))
        nearest.append(lm.place_by_samples(ex.matrix).attrs["nearest"] == true_nearest)
    assert np.mean(covered) >= 0.90, np.mean(covered)
    assert np.mean(nearest) >= 0.80, np.mean(nearest)
    assert np.mean(covered) <= 0.99  # not vacuous: the intervals are not far too wide


def test_refusals_and_warnings():
    ex = make_closed_markov_example(n_samples=40, seed=5)
    with pytest.raises(lm.errors.UnknownLabelError):
        lm.place_by_samples(ex.matrix, reference="nope")
    with pytest.raises(lm.errors.WrongTypeError):
        lm.place_by_samples(lm.ModelMap(ex.matrix))
    with pytest.raises(lm.LoglikMapError, match="at least 3 samples"):
        lm.place_by_samples(ex.matrix.sel(text=ex.matrix.texts[:2]))
    with pytest.warns(lm.UnreliableEstimateWarning, match="only 10 samples"):
        lm.place_by_samples(ex.matrix.sel(text=ex.matrix.texts[:10]))
    with pytest.raises(lm.LoglikMapError, match="clipped"):
        lm.place_by_samples(ex.matrix.clip(0.02))
    with pytest.raises(lm.LoglikMapError, match="confidence_level"):
        lm.place_by_samples(ex.matrix, confidence_level=95)
    hot = _matrix(ex.matrix.values, ex.matrix.n_bytes, temperature=np.full(40, 0.7))
    with pytest.warns(lm.LoglikMapWarning, match="temperature"):
        lm.place_by_samples(hot)
    two = _matrix(ex.matrix.values, ex.matrix.n_bytes, sampled_from=np.array(["a", "b"] * 20, dtype=object))
    with pytest.raises(lm.LoglikMapError, match="one closed model at a time"):
        lm.place_by_samples(two)
    bad = _matrix(ex.matrix.values, ex.matrix.n_bytes, n_draws=np.full(40, 0.5))
    with pytest.raises(lm.LoglikMapError, match="n_draws"):
        lm.place_by_samples(bad)
    mixed = lm.LogLikelihoodMatrix(ex.matrix.values[:2], models=["a", "b"], texts=ex.matrix.texts,
                                   n_bytes=ex.matrix.n_bytes, model_coords={"convention": ["reference", "bos"]})
    with pytest.raises(lm.LoglikMapError, match="convention"):
        lm.place_by_samples(mixed)
    assert lm.place_by_samples(mixed, allow_mixed_scoring=True).attrs["closed"] == "q"


def test_text_set_from_samples_counts_repeats_and_records_prompts():
    ts = lm.TextSet.from_samples(["x y", "z", "x y", "x y"], prompts=["p1", "p2", "p3", "p4"], model="api",
                                 temperature=1.0, top_p=1.0)
    coords = ts.text_coords()
    assert ts.texts == ["x y", "z"] and coords["n_draws"].tolist() == [3, 1]
    assert coords["prompt"].tolist() == ["p1", "p2"] and coords["sampled_from"].tolist() == ["api", "api"]
    joint = lm.TextSet.from_samples(["a", "b"], prompts="Q: ", include_prompts=True)
    assert joint.texts == ["Q: a", "Q: b"] and joint.text_coords()["prompt"].tolist() == ["Q: ", "Q: "]
    with pytest.raises(lm.LoglikMapError, match="repeats"):
        lm.TextSet.from_samples(["a", "a"], duplicates="error")
    with pytest.raises(lm.LoglikMapError, match="empty"):
        lm.TextSet.from_samples(["a", ""])
    with pytest.raises(lm.LoglikMapError, match="prompts"):
        lm.TextSet.from_samples(["a", "b"], prompts=["p"])
    with pytest.raises(lm.LoglikMapError, match="needs prompts"):
        lm.TextSet.from_samples(["a"], include_prompts=True)
    # the records reach a matrix scored on the texts, and the placement reads them
    m = lm.LogLikelihoodMatrix([[-5.0, -4.0], [-6.0, -4.5]], models=["a", "b"], texts=ts.ids, n_bytes=ts.n_bytes,
                               text_coords=ts.text_coords())
    with pytest.warns(lm.UnreliableEstimateWarning):
        placed = lm.place_by_samples(m)
    assert placed.attrs["closed"] == "api" and placed.attrs["n_samples"] == 4


def test_the_closed_models_page_runs_as_written(capsys):
    from pathlib import Path

    from tests.test_doc_snippets import HUB, python_blocks

    blocks = [b for b in python_blocks(Path(__file__).resolve().parents[2] / "docs" / "closed_models.rst")
              if not b.startswith(HUB)]
    assert len(blocks) == 1
    namespace: dict = {"__name__": "__snippet__"}
    exec(compile(blocks[0], "closed_models.rst", "exec"), namespace)
    assert "bits/byte" in capsys.readouterr().out


@settings(max_examples=50, deadline=None)
@given(st.lists(st.sampled_from(["a", "bb", "c c", "dé", "e"]), min_size=1, max_size=30))
def test_from_samples_keeps_every_draw(samples):
    ts = lm.TextSet.from_samples(samples)
    draws = ts.text_coords()["n_draws"]
    assert draws.sum() == len(samples) and len(set(ts.texts)) == len(ts)
    assert {t: int(n) for t, n in zip(ts.texts, draws)} == {t: samples.count(t) for t in set(samples)}
    assert ts.texts == list(dict.fromkeys(samples))  # first-drawn order
