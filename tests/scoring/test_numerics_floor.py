"""The numerics floor: a model against itself in other dtypes, attention kernels and batchings."""

from __future__ import annotations

import numpy as np
import pytest

import loglik_map as lm
from loglik_map.scoring import Execution
from loglik_map.scoring._numerics_floor import FloorSetting, _Models, _pair_batched_differently, numerics_floor

from . import tiny


@pytest.fixture(scope="module")
def floor_texts():
    return lm.TextSet(tiny.sample_texts(40, seed=7))


@pytest.fixture(scope="module")
def floor(model_dirs, floor_texts):
    return numerics_floor(model_dirs["gpt_neox"], floor_texts,
                          variants=("float32", "eager", "one-by-one", "bfloat16"))


def test_identical_runs_give_zero_and_other_numerics_do_not(floor):
    f32 = floor.sel(variant="float32")
    for name in ("exact_kl", "map_kl", "loglik_shift", "max_abs_loglik_diff"):
        assert float(f32[name]) == 0.0, name
    assert float(f32.same_top) == 1.0
    for name in ("eager", "one-by-one"):  # float32 kernels: tiny but (on this CPU) not bit-identical
        assert 0 <= float(floor.exact_kl.sel(variant=name)) < 1e-8
        assert float(floor.map_kl.sel(variant=name)) < 1e-8
    bf16 = floor.sel(variant="bfloat16")
    assert float(bf16.exact_kl) > 1e-6 and float(bf16.map_kl) > 1e-6 and float(bf16.max_abs_loglik_diff) > 1e-3
    assert floor.attrs["floor"] == pytest.approx(float(floor.map_kl.max()))
    assert list(floor.batching.values) == ["batched", "batched", "one-by-one", "batched"]
    assert floor.attrs["reference"] == "float32, sdpa, batched" and floor.map_kl.attrs["units"] == "bits/byte"


def test_the_differently_batched_pair_is_exact_kl_when_batched_alike(model_dirs, floor_texts):
    """Known answer for the batching path: with both sides batched alike it is exact_kl itself."""
    models = _Models(model_dirs["gpt_neox"], "cpu", 8192, None)
    ref = models.scorer(FloorSetting(), "reference")
    half = models.scorer(FloorSetting(dtype="bfloat16"), "bf16")
    ours = _pair_batched_differently(ref, half, floor_texts, progress=False)
    theirs = lm.exact_kl(ref, half, floor_texts)
    np.testing.assert_allclose(ours.kl_ab.values, theirs.kl_ab.values, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(ours.logp_b.values, theirs.logp_b.values, rtol=1e-6)
    np.testing.assert_array_equal(ours.token_target.values, theirs.token_target.values)


def test_combinations_and_refusals(model_dirs, floor_texts):
    ds = numerics_floor(model_dirs["gpt_neox"], floor_texts[:34],
                        variants={"eager one by one": {"attention": "eager", "batching": "one-by-one"}})
    assert ds.variant.values.tolist() == ["eager one by one"] and ds.attention.item() == "eager"
    with pytest.raises(lm.LoglikMapError, match="unknown variant"):
        numerics_floor(model_dirs["gpt_neox"], floor_texts, variants=("int3",))
    with pytest.raises(lm.LoglikMapError, match="unknown dtype"):
        numerics_floor(model_dirs["gpt_neox"], floor_texts, variants={"x": {"dtype": "float8"}})
    with pytest.raises(lm.errors.WrongTypeError, match="hub id or a folder"):
        numerics_floor(object(), floor_texts)


def test_the_floor_flags_pairs_of_a_map(model_dirs, floor_texts, floor):
    m = lm.LogLikelihoodMatrix.concat([lm.HFScorer(model_dirs[k], execution=Execution(progress=False)).score(floor_texts)
                                       for k in ("gpt_neox", "gpt_neox_b")])
    table = lm.ModelMap(m).summary(floor=floor)
    assert not table.below_floor.any()  # two different random models are far above the bf16 floor
    assert table.attrs["floor"] == floor.attrs["floor"]
