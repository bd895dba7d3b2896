"""LogLikelihoodMatrix: construction, validation, selection, concatenation, preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

import loglik_map as lm

from ..conftest import make_matrix


def test_labels_coords_and_attrs(matrix):
    da = matrix.data
    assert da.dims == ("model", "text")
    assert list(matrix.models) == [f"m{i}" for i in range(5)]
    assert matrix.shape == (5, 300) and matrix.n_models == 5 and matrix.n_texts == 300
    assert list(da["family"].values) == ["a", "a", "b", "b", "c"]
    assert da["domain"].dims == ("text",)
    assert matrix.attrs["units"] == "nats"
    assert matrix.attrs["loglik_map_version"] == lm.__version__
    assert "created" in matrix.attrs
    assert matrix.mean_bytes == pytest.approx(np.mean(matrix.n_bytes))
    assert np.asarray(matrix).shape == (5, 300)
    assert np.array_equal(np.asarray(matrix), matrix.values)


def test_repr_is_readable(matrix):
    text = repr(matrix)
    assert "5 models × 300 texts" in text and "family" in text and "domain" in text


def test_values_are_copied_and_float64():
    vals = np.array([[-1, -2], [-3, -4]], dtype=np.int32)
    m = lm.LogLikelihoodMatrix(vals, models=["a", "b"], texts=["x", "y"], n_bytes=[1, 2])
    vals[0, 0] = 99
    assert m.values.dtype == np.float64 and m.values[0, 0] == -1.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(values=[[1.0, 2.0]], models=["a", "b"]), r"shape \(1, 2\) but there are 2 models"),
        (dict(values=[1.0, 2.0]), "two-dimensional"),
        (dict(values=np.zeros((1, 0)), texts=[]), "empty"),
        (dict(values=[[-1.0, np.nan]]), "model 'a' and text 'y'"),
        (dict(values=[[np.inf, 1.0]]), "finite"),
        (dict(n_bytes=[0, 3]), "text 'x' has 0"),
        (dict(n_bytes=[1.5, 3]), "whole numbers"),
        (dict(n_bytes=[1]), "one entry per text"),
        (dict(models=["a", "a"], values=[[1.0, 2.0], [1.0, 2.0]]), "model 'a' appears twice"),
        (dict(texts=["x", "x"]), "text 'x' appears twice"),
        (dict(models=[1]), "must be strings"),
        (dict(model_coords={"step": [1, 2]}), "one entry per model"),
        (dict(model_coords={"tag": np.array(["a", None], dtype=object)[:1]}), None),
        (dict(model_coords={"n_bytes": [1]}), "reserved"),
        (dict(cell_coords={"n_tokens": [1, 2]}), r"one entry per model and text, shape \(1, 2\)"),
        (dict(cell_coords={"n_tokens": [["a", "b"]]}), "must be numeric"),
        (dict(cell_coords={"step": [[1, 2]]}, model_coords={"step": [1]}), "given twice"),
        (dict(attrs={"flag": True}), "booleans"),
        (dict(attrs={"d": {"a": 1}}), "attributes must be"),
    ],
)
def test_bad_input_gets_a_clear_error(kwargs, message):
    base = dict(values=[[-1.0, -2.0]], models=["a"], texts=["x", "y"], n_bytes=[1, 3])
    base.update(kwargs)
    values = base.pop("values")
    if message is None:
        lm.LogLikelihoodMatrix(values, **base)  # valid: string coordinate
        return
    with pytest.raises(lm.LoglikMapError, match=message):
        lm.LogLikelihoodMatrix(values, **base)


def test_mixed_type_coordinate_is_refused():
    with pytest.raises(lm.LoglikMapError, match="mixes types"):
        lm.LogLikelihoodMatrix([[-1.0], [-2.0]], models=["a", "b"], texts=["x"], n_bytes=[1],
                               model_coords={"tag": np.array(["q8", None], dtype=object)})


def test_sel_and_isel_keep_both_dimensions(matrix):
    one = matrix.sel(model="m2")
    assert isinstance(one, lm.LogLikelihoodMatrix) and one.shape == (1, 300)
    assert np.array_equal(one.values[0], matrix.values[2])
    sub = matrix.isel(model=[0, 4], text=slice(0, 10))
    assert sub.shape == (2, 10) and list(sub.models) == ["m0", "m4"]
    assert list(sub.data["family"].values) == ["a", "c"]
    with pytest.raises(lm.LoglikMapError, match="model 'nope' is not in the matrix. Known models: 'm0'"):
        matrix.sel(model="nope")
    with pytest.raises(lm.LoglikMapError, match="empty"):
        matrix.isel(model=[])
    with pytest.raises(lm.LoglikMapError, match="only select along"):
        matrix.sel(family="a")


def test_where_models_filters_by_coordinate(matrix):
    assert list(matrix.where_models(family="b").models) == ["m2", "m3"]
    assert list(matrix.where_models(family=["a", "c"], step=0).models) == ["m0", "m4"]
    with pytest.raises(lm.LoglikMapError, match="model coordinate 'size' is not in the matrix"):
        matrix.where_models(size=1)


def test_drop_texts_and_models(matrix):
    dropped = matrix.drop_texts(["t0", "t5"])
    assert dropped.n_texts == 298 and "t5" not in set(dropped.texts)
    np.testing.assert_array_equal(dropped.values, np.delete(matrix.values, [0, 5], axis=1))
    with pytest.raises(lm.LoglikMapError, match="'zzz'"):
        matrix.drop_texts(["t1", "zzz"])
    assert list(matrix.drop_models(["m1"]).models) == ["m0", "m2", "m3", "m4"]


def test_from_dataarray_round_trips(matrix):
    again = lm.LogLikelihoodMatrix.from_dataarray(matrix.data)
    assert again.identical(matrix)
    bare = lm.LogLikelihoodMatrix.from_dataarray(matrix.data.drop_attrs())
    assert bare.attrs["units"] == "nats"
    tagged = lm.LogLikelihoodMatrix.from_dataarray(xr.DataArray(matrix.values, dims=("model", "text"),
                                                   coords=matrix.data.coords, attrs={"source": "mine"}))
    assert tagged.attrs["source"] == "mine" and tagged.attrs["units"] == "nats"
    with pytest.raises(lm.LoglikMapError, match="n_bytes"):
        lm.LogLikelihoodMatrix.from_dataarray(matrix.data.drop_vars("n_bytes"))
    with pytest.raises(lm.LoglikMapError, match="dims"):
        lm.LogLikelihoodMatrix.from_dataarray(xr.DataArray(np.zeros((2, 2)), dims=("a", "b")))


def test_concat_stacks_models_and_fills_missing_coords(matrix):
    extra = make_matrix(K=2, N=300, seed=0, model_coords={"quantization": ["8bit", "4bit"]})
    extra = lm.LogLikelihoodMatrix(extra.values, models=["q0", "q1"], texts=matrix.texts, n_bytes=matrix.n_bytes,
                                   model_coords={"quantization": ["8bit", "4bit"]})
    both = lm.LogLikelihoodMatrix.concat([matrix, extra])
    assert list(both.models) == [*matrix.models, "q0", "q1"]
    np.testing.assert_array_equal(both.values[:5], matrix.values)
    assert list(both.data["quantization"].values) == ["", "", "", "", "", "8bit", "4bit"]
    assert np.isnan(both.data["step"].values[5:]).all() and list(both.data["step"].values[:5]) == [0, 1000, 0, 1000, 0]
    assert list(both.data["domain"].values) == list(matrix.data["domain"].values)


def test_concat_names_the_first_difference(matrix):
    other = make_matrix(K=1, N=300, seed=1)
    renamed = lm.LogLikelihoodMatrix(other.values, models=["new"], texts=matrix.texts, n_bytes=matrix.n_bytes)
    shuffled_ids = matrix.texts.copy()
    shuffled_ids[[7, 8]] = shuffled_ids[[8, 7]]
    wrong_ids = lm.LogLikelihoodMatrix(other.values, models=["new"], texts=shuffled_ids, n_bytes=matrix.n_bytes)
    with pytest.raises(lm.LoglikMapError, match="position 7"):
        lm.LogLikelihoodMatrix.concat([matrix, wrong_ids])
    nb = matrix.n_bytes.copy()
    nb[3] += 1
    wrong_bytes = lm.LogLikelihoodMatrix(other.values, models=["new"], texts=matrix.texts, n_bytes=nb)
    with pytest.raises(lm.LoglikMapError, match="byte lengths differ for text 't3'"):
        lm.LogLikelihoodMatrix.concat([matrix, wrong_bytes])
    with pytest.raises(lm.LoglikMapError, match="model 'm0' appears in matrix 0 and matrix 1"):
        lm.LogLikelihoodMatrix.concat([matrix, matrix.sel(model="m0")])
    with pytest.raises(lm.LoglikMapError, match="texts"):
        lm.LogLikelihoodMatrix.concat([matrix, renamed.isel(text=slice(0, 10))])
    assert lm.LogLikelihoodMatrix.concat([matrix, renamed]).n_models == 6


def test_clip_raises_entries_below_the_quantile(matrix):
    clipped = matrix.clip(0.02)
    q = np.quantile(matrix.values, 0.02)
    np.testing.assert_array_equal(clipped.values, np.where(matrix.values < q, q, matrix.values))
    assert (matrix.values < q).sum() == pytest.approx(0.02 * matrix.values.size, abs=2)
    assert clipped.attrs["clip_lower_quantile"] == 0.02 and clipped.attrs["clip_value_nats"] == q
    np.testing.assert_array_equal(matrix.clip(0.0).values, matrix.values)
    with pytest.raises(lm.LoglikMapError, match="lower_quantile"):
        matrix.clip(1.5)


def test_entropy_is_the_best_models_cross_entropy_in_bits_per_byte():
    m = lm.LogLikelihoodMatrix([[-10.0, -30.0], [-8.0, -24.0]], models=["a", "b"], texts=["x", "y"], n_bytes=[10, 30])
    ce = m.cross_entropy()
    np.testing.assert_allclose(ce.values, [40 / 40 / np.log(2), 32 / 40 / np.log(2)])
    assert ce.attrs["units"] == "bits/byte"
    assert m.entropy() == pytest.approx(0.8 / np.log(2))


def test_cell_coordinates_follow_selection_concat_clip_and_dataarray(matrix):
    K, N = matrix.shape
    tokens = np.arange(K * N).reshape(K, N)
    m = lm.LogLikelihoodMatrix.from_dataarray(matrix.data.assign_coords(n_tokens=(("model", "text"), tokens)))
    assert m.data["n_tokens"].dims == ("model", "text") and "cell coords: n_tokens" in repr(m)
    sub = m.sel(model=["m3", "m1"], text=["t7", "t2"])
    np.testing.assert_array_equal(sub.data["n_tokens"].values, [[3 * N + 7, 3 * N + 2], [N + 7, N + 2]])
    np.testing.assert_array_equal(m.clip(0.02).data["n_tokens"].values, tokens)
    # transposed input DataArrays keep each entry with its model and text
    back = lm.LogLikelihoodMatrix.from_dataarray(m.data.transpose("text", "model"))
    np.testing.assert_array_equal(back.data["n_tokens"].values, tokens)
    other = make_matrix(K=2, N=N, model_coords={"family": ["z", "z"]})  # same texts and byte lengths
    other = lm.LogLikelihoodMatrix.from_dataarray(other.data.assign_coords(model=["x0", "x1"]))
    both = lm.LogLikelihoodMatrix.concat([m.isel(model=[0]), other])
    cell = both.data["n_tokens"].values
    np.testing.assert_array_equal(cell[0], tokens[0])
    assert np.isnan(cell[1:]).all()  # missing in the second matrix: NaN, never a made-up count
