"""No silently wrong number: what the matrix and the map refuse, warn about, and suggest (issue 9)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

import loglik_map as lm

from ..conftest import make_matrix, needs_storage


def _scored(values, models, *, convention="reference", long_texts="rolling", dropped=None, n_bytes=None):
    """A matrix carrying the records a scorer writes (convention, long-text mode, tokens dropped)."""
    values = np.asarray(values, dtype=float)
    K, N = values.shape
    dropped = np.zeros((K, N)) if dropped is None else np.asarray(dropped)
    return lm.LogLikelihoodMatrix(
        values, models=models, texts=[f"t{k}" for k in range(N)],
        n_bytes=np.full(N, 1000) if n_bytes is None else n_bytes,
        model_coords={"convention": [convention] * K, "long_texts": [long_texts] * K,
                      "n_texts_truncated": (dropped > 0).sum(axis=1)},
        cell_coords={"n_tokens_dropped": dropped}, attrs={"convention": convention},
    )


def _values(K=2, N=50, seed=0):
    rng = np.random.default_rng(seed)
    return -700 + rng.normal(scale=30, size=(K, N))


# ---------------------------------------------------------------------- values
def test_losses_instead_of_log_likelihoods_are_refused_with_the_fix():
    with pytest.raises(lm.LoglikMapError, match=r"all entries are positive.*Did you pass losses.*Negate them"):
        lm.LogLikelihoodMatrix(-_values(), models=["a", "b"], texts=[f"t{k}" for k in range(50)],
                               n_bytes=np.full(50, 1000))
    one_positive = _values()
    one_positive[1, 7] = 3.0
    with pytest.raises(lm.LoglikMapError, match=r"1 of 100 entries are positive, the first for model 'b' and text 't7'"):
        lm.LogLikelihoodMatrix(one_positive, models=["a", "b"], texts=[f"t{k}" for k in range(50)],
                               n_bytes=np.full(50, 1000))
    # rounding a hair above 0 (a memorised text, float32 sums) is not a loss
    rounding = _values()
    rounding[0, 0] = 1e-7
    m = lm.LogLikelihoodMatrix(rounding, models=["a", "b"], texts=[f"t{k}" for k in range(50)],
                               n_bytes=np.full(50, 1000))
    assert m.values[0, 0] == 1e-7


@pytest.mark.parametrize("bad", [-1e300, -2e7])
def test_magnitudes_no_log_likelihood_can_have_are_refused(bad):
    values = _values()
    values[0, 3] = bad  # 1,000-byte texts: -2e7 nats is -2e4 nats per byte
    with pytest.raises(lm.LoglikMapError, match=r"below -10000 nats per byte.*model 'a' and text 't3'"):
        lm.LogLikelihoodMatrix(values, models=["a", "b"], texts=[f"t{k}" for k in range(50)],
                               n_bytes=np.full(50, 1000))
    values[0, 3] = np.inf
    with pytest.raises(lm.LoglikMapError, match="must be finite"):
        lm.LogLikelihoodMatrix(values, models=["a", "b"], texts=[f"t{k}" for k in range(50)],
                               n_bytes=np.full(50, 1000))


def test_per_token_means_get_a_warning_with_the_hint():
    per_token = _values() / 400  # mean over ~400 tokens of 1,000-byte texts: ~0.002 nats/byte
    with pytest.warns(lm.LoglikMapWarning, match="look like per-token means"):
        lm.LogLikelihoodMatrix(per_token, models=["a", "b"], texts=[f"t{k}" for k in range(50)],
                               n_bytes=np.full(50, 1000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lm.LogLikelihoodMatrix(_values(), models=["a", "b"], texts=[f"t{k}" for k in range(50)],
                               n_bytes=np.full(50, 1000))  # real totals: no warning


@pytest.mark.parametrize("label, message", [
    ("a\x00b", "NUL"),
    ("caf\udce9", "lone surrogate"),
    (b"caf\xe9", "not valid UTF-8"),
    ("", "empty"),
])
def test_labels_must_be_text(label, message):
    with pytest.raises(lm.LoglikMapError, match=message):
        lm.LogLikelihoodMatrix([[-1.0, -2.0]], models=[label], texts=["x", "y"], n_bytes=[1, 3])
    with pytest.raises(lm.LoglikMapError, match=message):
        lm.LogLikelihoodMatrix([[-1.0, -2.0]], models=["a"], texts=["x", label], n_bytes=[1, 3])
    if label:  # strings coordinates may be empty (missing), never broken text
        with pytest.raises(lm.LoglikMapError, match=message):
            lm.LogLikelihoodMatrix([[-1.0, -2.0]], models=["a"], texts=["x", "y"], n_bytes=[1, 3],
                                   model_coords={"family": [label]})


# ---------------------------------------------------------------------- truncation
def test_map_entropy_and_cross_entropy_refuse_truncated_texts_unless_allowed():
    dropped = np.zeros((2, 50))
    dropped[0, [3, 9]] = [40, 12]
    dropped[1, 3] = 5
    m = _scored(_values(), ["a", "b"], long_texts="truncate", dropped=dropped)
    for call in (lambda: lm.ModelMap(m), m.entropy, m.cross_entropy):
        with pytest.raises(lm.LoglikMapError, match=r"2 of 50 texts lost tokens to truncation \(57 tokens in all, "
                                                    r"under 2 model\(s\): 'a', 'b'\).*allow_truncated=True"):
            call()
    assert list(m.truncated_texts()) == ["t3", "t9"]
    assert lm.ModelMap(m, allow_truncated=True).kl("a", "b") > 0
    assert np.isfinite(m.entropy(allow_truncated=True))
    whole = m.drop_texts(m.truncated_texts())
    assert lm.ModelMap(whole).n_texts == 48 and np.isfinite(whole.entropy())


def test_truncation_records_of_a_lazy_matrix_are_reduced_chunk_by_chunk():
    """A dask-backed n_tokens_dropped (a store opened with chunks=) gives the same checks through
    reductions over its chunks as they are (never rechunked into one K × N block)."""
    da_mod = pytest.importorskip("dask.array", reason="large-map tests need the 'parallel' extra (dask)")
    from loglik_map.core._scoring_checks import dropped_tokens, truncation_message

    dropped = np.zeros((4, 50))
    dropped[0, [3, 9]] = [40, 12]
    dropped[2, 3] = 5
    dropped[3, 7] = np.nan  # no record for that cell
    eager = _scored(_values(K=4), ["a", "b", "c", "d"], long_texts="truncate", dropped=dropped).data
    lazy = eager.assign_coords(n_tokens_dropped=(("model", "text"), da_mod.from_array(dropped, chunks=(2, 10))))
    largest = []

    def spy(block):
        largest.append(block.size)
        return block

    lazy = lazy.assign_coords(n_tokens_dropped=(("model", "text"),
                                                lazy["n_tokens_dropped"].data.map_blocks(spy, dtype=float)))
    got, want = dropped_tokens(lazy), dropped_tokens(eager)
    np.testing.assert_array_equal(got.per_model, [52, 0, 5, 0])
    np.testing.assert_array_equal(got.per_text, want.per_text)
    np.testing.assert_array_equal(got.recorded, [True, True, True, False])
    assert largest and max(largest) <= 2 * 10
    assert truncation_message(lazy, "x") == truncation_message(eager, "x")


def test_a_truncated_row_without_per_text_records_is_refused_too():
    m = _scored(_values(), ["a", "b"], long_texts="truncate")
    da = m.data.drop_vars("n_tokens_dropped").assign_coords(n_texts_truncated=("model", [0, 4]))
    with pytest.raises(lm.LoglikMapError, match="'b' were scored with long_texts='truncate' and cut texts"):
        lm.ModelMap(da)


# ---------------------------------------------------------------------- scoring conventions
def test_rows_of_different_conventions_are_not_stacked_or_mapped_without_an_override():
    ref = _scored(_values(seed=1), ["a", "b"], convention="reference")
    bos = _scored(_values(K=1, seed=2), ["c"], convention="bos")
    with pytest.raises(lm.LoglikMapError, match=r"model 'a' \(matrix 0\) was scored with convention='reference' and "
                                                r"model 'c' \(matrix 1\) with convention='bos'.*allow_mixed_scoring"):
        lm.LogLikelihoodMatrix.concat([ref, bos])
    both = lm.LogLikelihoodMatrix.concat([ref, bos], allow_mixed_scoring=True)
    assert both.attrs["convention"] == "mixed"  # never silently dropped
    assert list(both.data["convention"].values) == ["reference", "reference", "bos"]
    with pytest.raises(lm.LoglikMapError, match="ModelMap: model 'a' was scored with convention='reference'"):
        lm.ModelMap(both)
    assert lm.ModelMap(both, allow_mixed_scoring=True).kl("a", "c") > 0
    with pytest.raises(lm.LoglikMapError, match=r"project: .*\['reference'\].*\['bos'\]"):
        lm.ModelMap(ref).project(bos)
    # rows without records (built by hand, the published data) go with anything
    plain = lm.LogLikelihoodMatrix(_values(K=1, seed=3), models=["p"], texts=ref.texts, n_bytes=ref.n_bytes)
    assert lm.LogLikelihoodMatrix.concat([ref, plain]).n_models == 3


def test_truncated_rows_are_not_stacked_with_rows_that_scored_every_token():
    dropped = np.zeros((1, 50))
    dropped[0, 0] = 30
    cut = _scored(_values(K=1, seed=1), ["cut"], long_texts="truncate", dropped=dropped)
    rolled = _scored(_values(K=1, seed=2), ["rolled"], long_texts="rolling")
    with pytest.raises(lm.LoglikMapError, match=r"model 'cut' \(matrix 0\) lost tokens to truncation.*model 'rolled' "
                                                r"\(matrix 1\) scored every token"):
        lm.LogLikelihoodMatrix.concat([cut, rolled])
    # truncate mode that cut nothing gives what rolling gives: compatible
    uncut = _scored(_values(K=1, seed=3), ["uncut"], long_texts="truncate")
    assert lm.ModelMap(lm.LogLikelihoodMatrix.concat([uncut, rolled])).kl("uncut", "rolled") > 0


# ---------------------------------------------------------------------- clipping
def test_clipping_twice_is_a_no_op_that_says_so_or_refused():
    m = make_matrix()
    once = m.clip(0.02)
    with pytest.warns(lm.LoglikMapWarning, match="already clipped at the 0.02 quantile"):
        again = once.clip(0.02)
    assert again is once
    with pytest.raises(lm.LoglikMapError, match="already clipped at the 0.02 quantile; clipping it again at 0.05"):
        once.clip(0.05)
    with pytest.raises(lm.LoglikMapError, match="matrix 0 is clipped at the 0.02 quantile .* matrix 1 is not clipped"):
        lm.LogLikelihoodMatrix.concat([once.isel(model=[0]), m.isel(model=[1])])
    # pieces of one clipped matrix stack back
    assert lm.LogLikelihoodMatrix.concat([once.isel(model=[0]), once.isel(model=[1])]).n_models == 2


# ---------------------------------------------------------------------- names and coordinates
def test_rename_models_and_assign_model_coords():
    m = make_matrix(K=3)
    renamed = m.rename_models({"m0": "zero", "m2": "two"})
    assert list(renamed.models) == ["zero", "m1", "two"]
    np.testing.assert_array_equal(renamed.values, m.values)
    assert list(m.rename_models(str.upper).models) == ["M0", "M1", "M2"]
    with pytest.raises(lm.LoglikMapError, match="'m9' is not in the matrix"):
        m.rename_models({"m9": "x"})
    with pytest.raises(lm.LoglikMapError, match="two models the name 'm1'"):
        m.rename_models({"m0": "m1"})
    tagged = m.assign_model_coords(step=[0, 1000, 2000], family="pythia")
    assert list(tagged.data["step"].values) == [0, 1000, 2000]
    assert list(tagged.data["family"].values) == ["pythia"] * 3
    traj = lm.Trajectory(tagged, order="step")
    assert list(traj.models()) == ["m0", "m1", "m2"]
    with pytest.raises(lm.LoglikMapError, match="one entry per model"):
        m.assign_model_coords(step=[1, 2])
    with pytest.raises(lm.LoglikMapError, match="'n_bytes' is already a text coordinate"):
        m.assign_model_coords(n_bytes=1)
    with pytest.raises(lm.LoglikMapError, match="reserved"):
        m.assign_model_coords(model="x")


def test_unknown_labels_are_named_with_the_closest_ones():
    names = ["neox-s-seed0", "neox-s-seed1", "neox-m-seed0", "llama-s-seed0"]
    m = lm.LogLikelihoodMatrix(_values(K=4), models=names, texts=[f"text-{k}" for k in range(50)],
                               n_bytes=np.full(50, 1000), model_coords={"family": ["neox"] * 3 + ["llama"]})
    mm = lm.ModelMap(m)
    with pytest.raises(lm.LoglikMapError, match=r"model 'neox-s-sed1' is not on the map\. 'neox-s-sed1': did you "
                                                r"mean 'neox-s-seed1'"):
        mm.kl("neox-s-sed1", "neox-s-seed0")
    with pytest.raises(lm.LoglikMapError, match=r"model 'neox-m-sed0' is not in the matrix.*did you mean "
                                                r"'neox-m-seed0'"):
        m.sel(model="neox-m-sed0")
    with pytest.raises(lm.LoglikMapError, match=r"texts 'text-77', 'txt-3' are not in the matrix.*'txt-3': did you "
                                                r"mean 'text-3'"):
        m.sel(text=["text-1", "text-77", "txt-3"])
    with pytest.raises(lm.LoglikMapError, match="model coordinate 'famly' is not in the matrix.*did you mean 'family'"):
        m.where_models(famly="neox")
    with pytest.raises(lm.LoglikMapError, match="text 'text-99' is not in the matrix"):
        m.drop_texts(["text-99"])


def test_options_are_validated_when_given():
    m = make_matrix()
    with pytest.raises(lm.LoglikMapError, match=r"unknown backend 'cuda'; use one of \('auto', 'blas', 'numba', "
                                                r"'numpy'\)"):
        lm.ModelMap(m, backend="cuda")


def test_a_missing_extra_is_an_import_error_naming_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn.manifold", None)  # as if scikit-learn were not installed
    with pytest.raises(ImportError, match=r"pip install 'loglik_map\[plot\]'") as info:
        lm.ModelMap(make_matrix(K=6)).embed("tsne", perplexity=2)
    assert info.value.extra == "plot" and isinstance(info.value, lm.LoglikMapError)


def test_dataarray_built_by_hand_is_validated_like_the_constructor():
    da = xr.DataArray(-_values(), dims=("model", "text"),
                      coords={"model": ["a", "b"], "text": [f"t{k}" for k in range(50)],
                              "n_bytes": ("text", np.full(50, 1000))})
    with pytest.raises(lm.LoglikMapError, match="Did you pass losses"):
        lm.ModelMap(da)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
@pytest.mark.parametrize("how", ["constructor", "from_dataarray"])
def test_bits_are_converted_when_the_matrix_is_built_so_a_save_changes_nothing(tmp_path, how, suffix):
    needs_storage(suffix)
    # a matrix built with units="bits" was used as nats, then rescaled by save/open_matrix
    bits = _values(K=3, N=40)
    texts = [f"t{k}" for k in range(40)]
    if how == "constructor":
        m = lm.LogLikelihoodMatrix(bits, models=["a", "b", "c"], texts=texts, n_bytes=np.full(40, 1000),
                                   attrs={"units": "bits"})
    else:
        da = xr.DataArray(bits, dims=("model", "text"), attrs={"units": "bits"},
                          coords={"model": ["a", "b", "c"], "text": texts, "n_bytes": ("text", np.full(40, 1000))})
        m = lm.LogLikelihoodMatrix.from_dataarray(da)
    np.testing.assert_allclose(m.values, bits * np.log(2), rtol=1e-15)
    assert m.attrs["units"] == "nats" and m.attrs["units_converted_from"] == "bits"
    m.save(tmp_path / f"m{suffix}")
    back = lm.open_matrix(tmp_path / f"m{suffix}")
    np.testing.assert_array_equal(back.values, m.values)
    assert lm.ModelMap(back).kl("a", "b") == lm.ModelMap(m).kl("a", "b")


@pytest.mark.parametrize("units", ["furlongs", "", 3])
def test_unknown_units_are_refused_when_the_matrix_is_built(units):
    texts = [f"t{k}" for k in range(40)]
    with pytest.raises(lm.LoglikMapError, match="units"):
        lm.LogLikelihoodMatrix(_values(N=40), models=["a", "b"], texts=texts, n_bytes=np.full(40, 1000),
                               attrs={"units": units})
    da = xr.DataArray(_values(N=40), dims=("model", "text"), attrs={"units": units},
                      coords={"model": ["a", "b"], "text": texts, "n_bytes": ("text", np.full(40, 1000))})
    with pytest.raises(lm.LoglikMapError, match="units"):
        lm.LogLikelihoodMatrix.from_dataarray(da)


def test_complex_values_are_refused():
    values = _values(N=40).astype(complex) + 1e-3j
    with pytest.raises(lm.LoglikMapError, match="complex"):
        lm.LogLikelihoodMatrix(values, models=["a", "b"], texts=[f"t{k}" for k in range(40)], n_bytes=np.full(40, 1000))


def test_texts_given_as_one_string_are_refused():
    with pytest.raises(lm.errors.WrongTypeError, match=r"one str.*\[text\]"):
        lm.TextSet("one text, not a list of texts")


def test_a_difference_of_two_equal_kls_does_not_claim_a_larger_one():
    from loglik_map.core._paired import kl_difference

    m = make_matrix(4, 60)
    d = kl_difference(lm.ModelMap(m), ("m0", "m1"), ("m1", "m0"))  # the same KL twice
    assert d.difference == 0 and "larger" not in str(d) and "smaller" not in str(d) and "equal" in str(d)


def test_errors_are_also_the_standard_type_a_user_catches():
    mm = lm.ModelMap(make_matrix(K=4, N=64))
    with pytest.raises(KeyError) as unknown:
        mm.kl("m0", "nope")
    assert isinstance(unknown.value, lm.errors.UnknownLabelError) and isinstance(unknown.value, lm.LoglikMapError)
    assert str(unknown.value).startswith("model 'nope' is not on the map")  # a sentence, not KeyError's repr
    with pytest.raises(KeyError):
        make_matrix(K=3, N=10).sel(model="m9")
    with pytest.raises(TypeError) as wrong:
        lm.ModelMap([[1.0, 2.0]])
    assert isinstance(wrong.value, lm.errors.WrongTypeError) and isinstance(wrong.value, ValueError)
    with pytest.raises(lm.errors.WrongTypeError, match="text_id expects str"):
        lm.texts.text_id(b"bytes")
    with pytest.raises(ImportError) as missing:
        lm.errors.require_extra("no_such_module_xyz", "plot", "plotting")
    assert isinstance(missing.value, lm.errors.MissingExtraError) and missing.value.extra == "plot"
    assert "pip install 'loglik_map[plot]'" in str(missing.value)
