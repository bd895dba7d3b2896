"""Old spellings of renamed names keep working for one release, each with a DeprecationWarning naming the new one."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import loglik_map as lm
from tests.conftest import make_matrix


@pytest.fixture(scope="module")
def mm():
    return lm.ModelMap(make_matrix(K=4, N=64))


def test_model_map_coordinates_is_points(mm):
    with pytest.warns(DeprecationWarning, match=r"ModelMap.coordinates is deprecated.*ModelMap.points"):
        old = mm.coordinates
    assert old is mm.points


def test_projection_fields_are_points_and_se(mm):
    proj = lm.ModelMap(make_matrix(K=4, N=64).isel(model=[0, 1])).project(make_matrix(K=4, N=64).isel(model=[2, 3]))
    with pytest.warns(DeprecationWarning, match=r"ModelProjection.coordinates is deprecated.*ModelProjection.points"):
        assert proj.coordinates is proj.points
    with pytest.warns(DeprecationWarning, match=r"ModelProjection.kl_se is deprecated.*ModelProjection.se"):
        assert proj.kl_se is proj.se
    assert proj.se.name == "se" and proj.points.name == "points"


def test_embed_random_state_is_seed(mm):
    with pytest.warns(DeprecationWarning, match=r"embed\(random_state=...\) is deprecated.*seed="):
        old = mm.embed("pca", random_state=3)
    np.testing.assert_array_equal(old.values, mm.embed("pca", seed=3).values)
    assert "seed" in inspect.signature(lm.ModelMap.embed).parameters
    assert "random_state" not in inspect.signature(lm.ModelMap.embed).parameters


def test_synthetic_random_state_is_seed():
    with pytest.warns(DeprecationWarning, match="make_markov_example"):
        old = lm.make_markov_example(n_families=1, members_per_family=2, n_texts=20, random_state=5)
    new = lm.make_markov_example(n_families=1, members_per_family=2, n_texts=20, seed=5)
    assert old.matrix.identical(new.matrix)
    with pytest.warns(DeprecationWarning, match="takagi_landsberg"):
        a = lm.takagi_landsberg(np.zeros((3, 2)) + 0.1, 0.5, dim_out=4, random_state=1)
    np.testing.assert_array_equal(a, lm.takagi_landsberg(np.zeros((3, 2)) + 0.1, 0.5, dim_out=4, seed=1))


def test_random_pairs_within_is_by(mm):
    with pytest.warns(DeprecationWarning, match=r"random_pairs\(within=...\) is deprecated.*by="):
        lm.random_pairs(2, within="family", seed=0)


def test_trajectory_steps_is_positions():
    m = make_matrix(K=4, N=64).assign_model_coords(step=[0, 1, 2, 3])
    traj = lm.Trajectory(lm.ModelMap(m))
    with pytest.warns(DeprecationWarning, match="positions"):
        old = traj.steps()
    np.testing.assert_array_equal(old, traj.positions())


def test_fit_stderr_is_se():
    fit = lm.fit_power_law(np.arange(1.0, 6.0), np.arange(1.0, 6.0) ** 0.5 * [1, 1.1, 0.9, 1, 1.05])
    with pytest.warns(DeprecationWarning, match="PowerLawFit.se"):
        assert fit.stderr == fit.se


def test_errors_are_also_the_standard_type_a_user_catches(mm):
    with pytest.raises(KeyError) as unknown:
        mm.kl("m0", "nope")
    assert isinstance(unknown.value, lm.UnknownLabelError) and isinstance(unknown.value, lm.LoglikMapError)
    assert str(unknown.value).startswith("model 'nope' is not on the map")  # a sentence, not KeyError's repr
    with pytest.raises(KeyError):
        make_matrix(K=3, N=10).sel(model="m9")
    with pytest.raises(TypeError) as wrong:
        lm.ModelMap([[1.0, 2.0]])
    assert isinstance(wrong.value, lm.WrongTypeError) and isinstance(wrong.value, ValueError)
    with pytest.raises(lm.WrongTypeError, match="text_id expects str"):
        lm.text_id(b"bytes")
    with pytest.raises(ImportError) as missing:
        lm.errors.require_extra("no_such_module_xyz", "plot", "plotting")
    assert isinstance(missing.value, lm.MissingExtraError) and missing.value.extra == "plot"
    assert "pip install 'loglik_map[plot]'" in str(missing.value)


def test_grouping_keywords_same_and_match_are_by():
    with pytest.warns(DeprecationWarning, match=r"differing_only_in\(same=...\) is deprecated.*by="):
        lm.differing_only_in("seed", same=("size",))
    with pytest.warns(DeprecationWarning, match=r"original_vs\(match=...\) is deprecated.*by="):
        lm.original_vs("quantization", "none", "8bit", match=("source_model",))


def test_deprecation_warnings_point_at_the_callers_line_however_deep_the_call(mm):
    # the shorthand string is reached four calls deep inside kl_scale; the warning names this file
    m = make_matrix(K=4, N=64).assign_model_coords(base_model=["", "m0", "", "m2"])
    with pytest.warns(DeprecationWarning, match="shorthand rule 'child vs parent'") as caught:
        lm.kl_scale(m, {"fine-tuned vs base": "child vs parent"})
    assert {w.filename for w in caught} == {__file__}
