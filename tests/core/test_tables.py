"""Tidy tables: ModelMap.summary, the matrix and results as pandas objects."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import loglik_map as lm

from ..conftest import make_matrix


@pytest.fixture
def mm(matrix):
    return lm.ModelMap(matrix)


def test_summary_of_all_pairs_matches_kl_se_and_each_pairs_interval(mm):
    table = mm.summary()
    K = len(mm)
    assert list(table.columns) == ["a", "b", "kl", "se", "ci_low", "ci_high", "unit"]
    assert len(table) == K * (K - 1) // 2
    assert set(zip(table.a, table.b)) == {(a, b) for i, a in enumerate(mm.models) for b in mm.models[i + 1:]}
    kl, se = mm.kl(), mm.kl_se()
    for row in table.itertuples():
        assert row.kl == pytest.approx(float(kl.sel(model=row.a, model_=row.b)), rel=1e-9)
        assert row.se == pytest.approx(float(se.sel(model=row.a, model_=row.b)), rel=1e-6)
        ci = mm.compare(row.a, row.b).confidence_interval(0.95)
        assert (row.ci_low, row.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-6)
    assert (table.unit == "bits/byte").all() and table.attrs["units"] == "bits/byte"
    assert table.attrs["n_texts"] == mm.n_texts and table.attrs["confidence_level"] == 0.95


def test_summary_in_nats_and_at_another_level_scales_and_widens(mm):
    bits, nats = mm.summary(), mm.summary(unit="nats", confidence_level=0.99)
    factor = mm.mean_bytes * np.log(2)
    np.testing.assert_allclose(nats.kl, bits.kl * factor, rtol=1e-12)
    np.testing.assert_allclose(nats.se, bits.se * factor, rtol=1e-12)
    assert (nats.ci_high - nats.kl > (bits.ci_high - bits.kl) * factor).all()
    assert (nats.unit == "nats").all()


def test_summary_takes_the_kl_scale_rules_lists_and_settings(mm):
    rule = lm.consecutive_checkpoints("step", by="family")
    by_rule = mm.summary(rule)
    expected = lm.kl_scale_pairs(mm, {"s": rule})
    assert list(zip(by_rule.a, by_rule.b)) == list(zip(expected.a, expected.b)) == [("m0", "m1"), ("m2", "m3")]
    np.testing.assert_allclose(by_rule.kl, expected.kl)
    listed = mm.summary([("m4", "m0")])
    assert listed[["a", "b"]].to_numpy().tolist() == [["m4", "m0"]]
    both = mm.summary({"checkpoints": rule, "given": [("m4", "m0")]})
    assert list(both.columns[:3]) == ["setting", "a", "b"]
    assert both.setting.tolist() == ["checkpoints", "checkpoints", "given"]
    np.testing.assert_allclose(both.ci_high, pd.concat([by_rule, listed]).ci_high)
    with pytest.raises(lm.errors.WrongTypeError, match="is a KLSetting.*kl_scale_pairs"):  # the core knows no settings
        mm.summary(lm.KLSetting(rule))


def test_summary_refuses_what_it_cannot_apply(mm):
    with pytest.raises(lm.LoglikMapError, match="is a string"):
        mm.summary("consecutive checkpoints")
    with pytest.raises(lm.LoglikMapError, match="own preprocessing"):
        mm.summary(lm.KLSetting(lm.consecutive_checkpoints(), lm.PretrainingPreprocessing()))
    with pytest.raises(lm.LoglikMapError, match="confidence_level"):
        mm.summary(confidence_level=95)
    with pytest.raises(lm.LoglikMapError, match="'nope' is not on the map"):
        mm.summary([("m0", "nope")])


def test_summary_warns_when_few_texts_make_the_intervals_unreliable():
    small = lm.ModelMap(make_matrix(K=3, N=12))
    with pytest.warns(lm.UnreliableEstimateWarning):
        small.summary()


def test_matrix_to_pandas_and_to_dataframe(matrix):
    wide = matrix.to_pandas()
    assert wide.shape == matrix.shape and list(wide.index) == list(matrix.models)
    np.testing.assert_array_equal(wide.to_numpy(), matrix.values)
    tidy = matrix.to_dataframe()
    assert len(tidy) == matrix.n_models * matrix.n_texts and tidy.index.names == ["model", "text"]
    assert tidy.loc[("m2", "t7"), "loglik"] == matrix.values[2, 7]
    assert {"n_bytes", "family", "step", "domain"} <= set(tidy.columns)
    assert tidy.loc[("m2", "t7"), "family"] == "b" and tidy.attrs["units"] == "nats"


def test_results_as_rows(mm, matrix):
    est = mm.compare("m0", "m3")
    row = est.to_dataframe()
    assert len(row) == 1 and row.loc[0, "kl"] == est.kl
    assert row.loc[0, "ci_low"] == pytest.approx(est.confidence_interval().low)
    fit = lm.fit_power_law(np.arange(1, 11), 2.0 * np.arange(1, 11) ** 0.8 * np.exp(np.sin(np.arange(10)) / 50))
    d = fit.to_dict()
    assert d["exponent"] == fit.exponent and d["ci_high"] == pytest.approx(fit.confidence_interval().high)
    proj = mm.project(matrix.isel(model=[1]).rename_models({"m1": "new"}))
    tidy = proj.to_dataframe()
    assert len(tidy) == len(mm) and tidy.a.unique().tolist() == ["new"]
    np.testing.assert_allclose(tidy.kl, proj.kl.values[0])
    assert tidy.loc[tidy.b == "m1", "kl"].item() == pytest.approx(0.0, abs=1e-12)
