"""The numerics floor beside tables of KLs: ModelMap.summary(floor=) and kl_scale(floor=)."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import loglik_map as lm
from loglik_map.core._floor import below_floor, floor_bits_per_byte


@pytest.fixture
def mm():
    rng = np.random.default_rng(0)
    base = -700 + rng.normal(size=(1, 400)) * 30
    noise = np.array([[0.0], [0.02], [3.0]]) * rng.normal(size=(3, 400))  # b is a hair from a, c far
    m = lm.LogLikelihoodMatrix(base + noise, models=["a", "b", "c"], texts=[f"t{k}" for k in range(400)],
                               n_bytes=np.full(400, 1000), model_coords={"family": ["x", "x", "x"]})
    return lm.ModelMap(m)


def test_summary_flags_pairs_below_the_floor(mm):
    plain = mm.summary()
    kl_ab = float(plain.kl[(plain.a == "a") & (plain.b == "b")].iloc[0])
    floor = 10 * kl_ab
    table = mm.summary(floor=floor)
    expected = plain.kl + 2 * plain.se < floor
    assert table.below_floor.tolist() == expected.tolist() == [True, False, False]
    assert (table["floor"] == floor).all() and table.attrs["floor"] == floor
    nats = mm.summary(floor=floor, unit="nats")
    assert nats["floor"].iloc[0] == pytest.approx(floor * 1000 * np.log(2))
    assert nats.below_floor.tolist() == table.below_floor.tolist()
    assert "below_floor" not in plain


def test_a_numerics_floor_result_is_read_by_its_floor_attribute(mm):
    ds = xr.Dataset({"map_kl": ("variant", [0.0, 1e-3])}, attrs={"floor": 1e-3, "floor_units": "bits/byte"})
    assert floor_bits_per_byte(ds) == 1e-3
    assert mm.summary([("a", "b")], floor=ds).below_floor.item() == bool(below_floor(
        mm.summary([("a", "b")]).kl, mm.summary([("a", "b")]).se, 1e-3)[0])
    with pytest.raises(lm.LoglikMapError, match="no 'floor'"):
        floor_bits_per_byte(xr.Dataset())
    with pytest.raises(lm.LoglikMapError, match="bits/byte"):
        floor_bits_per_byte(xr.Dataset(attrs={"floor": 1.0, "floor_units": "nats"}))
    for bad in (-1.0, float("nan")):
        with pytest.raises(lm.LoglikMapError, match="finite KL"):
            mm.summary(floor=bad)
    with pytest.raises(lm.errors.WrongTypeError):
        mm.summary(floor="bf16")


def test_kl_scale_counts_the_pairs_below_the_floor(mm):
    table = mm.summary()
    floor = float(table.kl.iloc[0]) * 10
    scale = lm.kl_scale(mm, {"close": [("a", "b")], "all": [("a", "b"), ("a", "c"), ("b", "c")]}, floor=floor)
    assert scale.loc["close", "n_below_floor"] == 1 and scale.loc["all", "n_below_floor"] == 1
    assert scale.attrs["floor"] == floor and (scale["floor"] == floor).all()
    assert "n_below_floor" not in lm.kl_scale(mm, {"close": [("a", "b")]})
