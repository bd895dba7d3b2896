"""Storage round trips and the shimo-lab/modelmap importer."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

import loglik_map as lm

from ..conftest import needs_storage


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_round_trip_keeps_everything(matrix, tmp_path, suffix):
    needs_storage(suffix)
    tokens = np.arange(matrix.values.size).reshape(matrix.shape)
    m = lm.LogLikelihoodMatrix.from_dataarray(matrix.data.assign_attrs(convention="reference", note=["a", "b"])
                                              .assign_coords(n_tokens=(("model", "text"), tokens)))
    path = tmp_path / f"ll{suffix}"
    m.save(path)
    back = lm.open_matrix(path)
    assert back.identical(m)
    np.testing.assert_array_equal(back.values, m.values)
    assert list(back.data["family"].values) == ["a", "a", "b", "b", "c"]
    assert back.attrs["created"] == m.attrs["created"]
    np.testing.assert_array_equal(back.data["n_tokens"].values, tokens)


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_save_refuses_to_overwrite(matrix, tmp_path, suffix):
    needs_storage(suffix)
    path = tmp_path / f"ll{suffix}"
    matrix.save(path)
    with pytest.raises(lm.LoglikMapError, match="exists"):
        matrix.isel(model=[0]).save(path)
    assert lm.open_matrix(path).n_models == 5  # nothing lost
    matrix.isel(model=[0]).save(path, overwrite=True)
    assert lm.open_matrix(path).n_models == 1


def test_unknown_format_and_missing_file(matrix, tmp_path):
    with pytest.raises(lm.LoglikMapError, match=r"\.nc .*\.zarr"):
        matrix.save(tmp_path / "ll.csv")
    with pytest.raises(lm.LoglikMapError, match="no such file"):
        lm.open_matrix(tmp_path / "missing.nc")


def _write_texts(tmp_path, texts):
    texts_path = tmp_path / "texts.jsonl"
    with open(texts_path, "w", encoding="utf-8") as fh:
        for k, t in enumerate(texts):
            fh.write(json.dumps({"text": t, "pile_set_name": "Pile-CC" if k % 2 else "Github",
                                 "pile_idx": 100 + k, "chunk_idx": k % 3}) + "\n")
    return texts_path


def _write_modelmap(tmp_path, texts, vectors, fmt="pkl"):
    texts_path = _write_texts(tmp_path, texts)
    path = tmp_path / f"ll.{fmt}"
    if fmt == "pkl":
        with open(path, "wb") as fh:
            pickle.dump(vectors, fh)
    elif fmt == "npz":
        np.savez(path, models=np.array(list(vectors)), log_likelihood=np.vstack(list(vectors.values())))
    else:
        rows = ["model," + ",".join(f"t{k}" for k in range(len(texts)))]
        rows += [f'"{name}",' + ",".join(repr(float(x)) for x in vec) for name, vec in vectors.items()]
        path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path, texts_path


_VECTORS = {"EleutherAI/pythia-70m": np.array([-500.0, -300.0, -700.0]),
            "meta-llama/Llama-2-7b-hf, v2": np.array([-400.0, -250.0, -520.0])}


@pytest.mark.parametrize("fmt", ["pkl", "npz", "csv"])
def test_from_modelmap_imports_the_published_format(tmp_path, fmt):
    texts = ["héllo wörld " * 30, "print('x')\n" * 40, "日本語のテキスト" * 20]
    path, jl = _write_modelmap(tmp_path, texts, _VECTORS, fmt)
    m = lm.LogLikelihoodMatrix.from_modelmap(path, jl, trust_pickle=(fmt == "pkl"))
    assert list(m.models) == list(_VECTORS)
    assert list(m.texts) == [lm.texts.text_id(t) for t in texts]
    assert list(m.n_bytes) == [len(t.encode("utf-8")) for t in texts]
    assert list(m.data["domain"].values) == ["Github", "Pile-CC", "Github"]
    assert list(m.data["pile_idx"].values) == [100, 101, 102]
    np.testing.assert_array_equal(m.values[1], _VECTORS["meta-llama/Llama-2-7b-hf, v2"])
    assert m.attrs["convention"] == "reference"


class _RunsCode:
    """Unpickling this creates a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_from_modelmap_never_unpickles_without_consent(tmp_path):
    jl = _write_texts(tmp_path, ["a" * 300])
    marker = tmp_path / "code-ran"
    crafted = tmp_path / "crafted.pkl"
    crafted.write_bytes(pickle.dumps(_RunsCode(marker)))
    with pytest.raises(lm.LoglikMapError, match="trust_pickle=True") as info:
        lm.LogLikelihoodMatrix.from_modelmap(crafted, jl)
    assert "runs whatever code" in str(info.value) and "convert_modelmap_pickle" in str(info.value)
    assert not marker.exists()
    # an .npz cannot carry code: object arrays are refused, not unpickled
    np.savez(tmp_path / "crafted.npz", models=np.array([_RunsCode(marker)], dtype=object),
             log_likelihood=np.zeros((1, 1)))
    with pytest.raises(lm.LoglikMapError, match="crafted.npz"):
        lm.LogLikelihoodMatrix.from_modelmap(tmp_path / "crafted.npz", jl)
    assert not marker.exists()


def test_convert_modelmap_pickle_once_then_read_the_npz(tmp_path):
    from loglik_map.io import convert_modelmap_pickle

    texts = ["x" * 300, "y" * 400, "z" * 500]
    pkl, jl = _write_modelmap(tmp_path, texts, _VECTORS)
    with pytest.raises(lm.LoglikMapError, match="trust_pickle"):
        convert_modelmap_pickle(pkl, tmp_path / "mm.npz")
    convert_modelmap_pickle(pkl, tmp_path / "mm.npz", trust_pickle=True)
    with pytest.raises(lm.LoglikMapError, match="exists"):
        convert_modelmap_pickle(pkl, tmp_path / "mm.npz", trust_pickle=True)
    from_npz = lm.LogLikelihoodMatrix.from_modelmap(tmp_path / "mm.npz", jl)
    from_pkl = lm.LogLikelihoodMatrix.from_modelmap(pkl, jl, trust_pickle=True)
    np.testing.assert_array_equal(from_npz.values, from_pkl.values)
    assert list(from_npz.models) == list(from_pkl.models)


def test_from_modelmap_names_a_wrong_length_vector(tmp_path):
    pkl, jl = _write_modelmap(tmp_path, ["a" * 300, "b" * 300], {"ok": np.zeros(2) - 1, "bad": np.zeros(3) - 1})
    with pytest.raises(lm.LoglikMapError, match="model 'bad' has 3 values"):
        lm.LogLikelihoodMatrix.from_modelmap(pkl, jl, trust_pickle=True)


def test_from_modelmap_disambiguates_repeated_texts(tmp_path):
    pkl, jl = _write_modelmap(tmp_path, ["same" * 80, "same" * 80], {"m": np.array([-300.0, -310.0])})
    with pytest.warns(UserWarning, match="repeat"):
        m = lm.LogLikelihoodMatrix.from_modelmap(pkl, jl, trust_pickle=True)
    assert m.texts[1] == m.texts[0] + "#1"
