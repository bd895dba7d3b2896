"""The atlas's numbers (exact neighbours, paired-test greying, 2-D faithfulness, lines) and its figure and table."""

from __future__ import annotations

import numpy as np
import pytest

import loglik_map as lm
from loglik_map.errors import LoglikMapError, UnknownLabelError
from loglik_map.plotting import _atlas_data
from loglik_map.plotting._atlas_data import _holm, atlas_data, kept_in_2d
from loglik_map.plotting._atlas_lines import edge_paths, resolve_edges
from loglik_map.synthetic import make_zoo_like_matrix

go = pytest.importorskip("plotly.graph_objects", reason="the atlas needs the 'viz' extra (plotly)")


@pytest.fixture(scope="module")
def markov_map():
    ex = lm.make_markov_example(n_families=3, members_per_family=4, n_texts=300, seed=1)
    return lm.ModelMap(ex.matrix.clip(0.02))


@pytest.fixture(scope="module")
def zoo():
    return lm.ModelMap(make_zoo_like_matrix(n_families=2, runs_per_family=2, n_checkpoints=4, n_layers=3, n_children=2,
                                            n_texts=200))


def test_neighbours_and_greying_equal_the_maps_own_queries(markov_map):
    mm, k = markov_map, 5
    data = atlas_data(mm, k=k, progress=False)
    table = mm.nearest(k=k, progress=False)
    assert (mm.models[data.neighbours] == table["neighbour"].values).all()
    np.testing.assert_allclose(data.kl, table["kl"].values)
    n_tied = 0
    for i, model in enumerate(mm.models):
        test = mm.nearest(model, k=k, test=True, correction="holm")
        assert list(test.model.values) == list(mm.models[data.neighbours[i]])
        assert not data.tied[i, 0]
        assert (data.tied[i, 1:] == ~test["distinguishable"].values[1:]).all(), model
        n_tied += data.tied[i].sum()
    assert 0 < n_tied < data.tied[:, 1:].size  # both outcomes occur, so the comparison can fail


def test_holm_rows_equal_the_maps_holm_with_missing_values():
    from loglik_map.core._paired_math import _holm as holm_1d

    rng = np.random.default_rng(3)
    p = rng.uniform(size=(6, 5))
    p[1, 2] = p[4, 0] = np.nan
    expected = np.array([holm_1d(row) for row in p])
    np.testing.assert_allclose(_holm(p), expected, equal_nan=True)


def test_kept_in_2d_known_answer():
    xy = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [7.0, 0.0]])  # 2-D nearest: 1, 0, 1, 2
    full = np.array([[1], [2], [1], [2]])
    np.testing.assert_array_equal(kept_in_2d(xy, full), [1.0, 0.0, 1.0, 1.0])
    # coinciding points: the model itself is left out wherever the tree lists it
    same = np.zeros((3, 2))
    np.testing.assert_array_equal(kept_in_2d(same, np.array([[1, 2], [0, 2], [0, 1]])), [1.0, 1.0, 1.0])


def test_a_map_that_is_two_dimensional_is_kept_whole_by_pca():
    # rank-2 log-likelihoods: PCA is an isometry of the map, so every model keeps all its neighbours
    rng = np.random.default_rng(5)
    Z = rng.normal(size=(40, 2))
    values = -600.0 + Z @ rng.normal(size=(2, 300)) * 5.0
    mm = lm.ModelMap(lm.LogLikelihoodMatrix(values, models=[f"m{i}" for i in range(40)],
                                            texts=[f"t{j}" for j in range(300)], n_bytes=np.full(300, 800)))
    data = atlas_data(mm, k=5, progress=False)
    np.testing.assert_array_equal(data.kept, 1.0)
    assert data.trustworthiness == pytest.approx(1.0)
    # and a picture that scrambles the positions keeps little
    scrambled = atlas_data(mm, k=5, embedding=rng.permutation(data.xy), progress=False)
    assert scrambled.kept.mean() < 0.5 and scrambled.trustworthiness < 0.8


def test_lines_follow_runs_layers_and_lineage(zoo):
    coords = _atlas_data.model_coords(zoo)
    kinds = resolve_edges("auto", coords, None)
    assert set(kinds) == {"checkpoints", "layers", "lineage"}
    runs = edge_paths("checkpoints", kinds["checkpoints"], coords, zoo.models)
    assert len(runs) == 4 and all(len(path) == 4 for path in runs)
    for path in runs:
        assert np.all(np.diff(coords["step"][path]) > 0) and len(set(coords["run"][path])) == 1
    layers = edge_paths("layers", kinds["layers"], coords, zoo.models)
    assert [list(coords["layer"][p]) for p in layers] == [[0.0, 1.0, 2.0]] * 2
    lineage = edge_paths("lineage", kinds["lineage"], coords, zoo.models)
    assert len(lineage) == 4 and all(coords["base_model"][c] == zoo.models[p] for p, c in lineage)
    with pytest.raises(LoglikMapError, match="needs the model coordinates 'layer'"):
        resolve_edges(["layers"], {"step": coords["step"]}, None)
    assert resolve_edges(None, coords, None) == {}


def test_figure_has_one_point_per_model_names_and_kl_to_the_pin_in_the_hover(zoo):
    pin = zoo.models[3]
    fig = lm.plotting.atlas(zoo, pin=pin, k=4, progress=False)
    assert isinstance(fig, go.Figure)
    models = next(t for t in fig.data if t.uid == "models")
    assert len(models.x) == len(zoo) and list(models.text) == list(zoo.models)
    kl = zoo.kl(pin, zoo.models[0])
    assert zoo.models[0] in models.hovertext[0] and f"KL to {pin}: {kl:.4g} ±" in models.hovertext[0]
    assert {t.uid for t in fig.data} >= {"lines-checkpoints", "lines-layers", "lines-lineage", "pin", "near", "tied"}
    # where a checkpoint went next: the next one of its run, with the KL ± SE of the step
    first, second = zoo.models[0], zoo.models[1]  # steps 0 and 1 of the first run
    assert f"next checkpoint: {second} ({zoo.kl(first, second):.4g} ±" in models.hovertext[0]
    last = int(np.flatnonzero(zoo.models == "fam0-s-seed0@4")[0])
    assert "next checkpoint" not in models.hovertext[last]
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert {"family", "step", "quantization", "neighbours kept in 2-D", "KL to the pinned model"} <= set(labels)
    assert "trustworthiness" in fig.layout.title.text
    meta = fig.layout.meta["atlas"]
    assert meta["k"] == 4 and meta["neighbours"].size == 4 * len(zoo)


def test_the_html_is_self_contained(zoo, tmp_path):
    path = tmp_path / "atlas.html"
    lm.plotting.atlas(zoo, k=3, color="family", edges=["checkpoints"], progress=False).write_html(path)
    html = path.read_text(encoding="utf-8")
    assert "<script src=" not in html and "plotly.js v" in html and "atlasSelect" in html


def test_given_positions_are_taken_in_map_order(zoo):
    pca = zoo.embed("pca", 2)
    shuffled = pca.isel(model=np.random.default_rng(0).permutation(len(zoo)))
    data = atlas_data(zoo, k=3, embedding=shuffled, progress=False)
    np.testing.assert_array_equal(data.xy, pca.values)
    assert data.embedding == "given"
    with pytest.raises(LoglikMapError, match="no position for 1 mapped model"):
        atlas_data(zoo, k=3, embedding=pca.isel(model=slice(1, None)), progress=False)


def test_refusals(zoo, monkeypatch):
    with pytest.raises(UnknownLabelError, match="colour"):
        lm.plotting.atlas(zoo, color="nonsense", k=3, progress=False)
    with pytest.raises(LoglikMapError, match=r"shape \(30, 2\)"):
        lm.plotting.atlas(zoo, embedding=np.zeros((3, 2)), k=3, progress=False)
    with pytest.raises(LoglikMapError, match="k must be"):
        lm.plotting.atlas(zoo, k=len(zoo), progress=False)
    monkeypatch.setattr(_atlas_data, "ATLAS_MAX_MODELS", 10)
    with pytest.raises(LoglikMapError, match=r"atlas_table\(map, 'atlas.parquet'\).*Embedding Atlas"):
        lm.plotting.atlas(zoo, k=3, progress=False)


def test_atlas_table_holds_positions_neighbours_kl_and_se(zoo, tmp_path):
    pq = pytest.importorskip("pyarrow.parquet", reason="the atlas table needs the 'viz' extra (pyarrow)")
    path = lm.plotting.atlas_table(zoo, tmp_path / "atlas.parquet", k=3, pin=zoo.models[0], progress=False)
    table = pq.read_table(path)
    frame = table.to_pandas()
    assert len(frame) == len(zoo) and list(frame["model"]) == list(zoo.models)
    table_nn = zoo.nearest(k=3, progress=False)
    assert [list(v) for v in frame["neighbour_names"]] == table_nn["neighbour"].values.tolist()
    np.testing.assert_allclose(np.stack(frame["neighbour_se"]), table_nn["se"].values)
    np.testing.assert_allclose(frame["kl_to_pin"], zoo.kl(zoo.models[0]).values)
    assert {"x", "y", "step", "base_model", "kept_in_2d"} <= set(frame.columns)
    assert frame["next_checkpoint"][0] == zoo.models[1] and frame["next_kl"][0] == pytest.approx(zoo.kl(*zoo.models[:2]))
    assert frame["next_checkpoint"].isna().sum() == frame["next_kl"].isna().sum() == len(zoo) - 4 * 3
    assert table.schema.metadata[b"loglik_map.units"] == b"bits/byte"
    with pytest.raises(LoglikMapError, match=".parquet"):
        lm.plotting.atlas_table(zoo, tmp_path / "atlas.csv", k=3, progress=False)


def test_command_line_writes_the_html_and_the_table(tmp_path, capsys):
    pytest.importorskip("h5netcdf", reason="saving a matrix needs the 'io' extra (h5netcdf)")
    pytest.importorskip("pyarrow", reason="the atlas table needs the 'viz' extra (pyarrow)")
    from loglik_map._cli import main

    matrix = make_zoo_like_matrix(n_families=1, runs_per_family=2, n_checkpoints=3, n_layers=2, n_children=1,
                                  n_texts=100)
    matrix.save(tmp_path / "zoo.nc")
    assert main(["atlas", str(tmp_path / "zoo.nc"), "--out", str(tmp_path / "atlas.html"), "--k", "3",
                 "--pin", str(matrix.models[0]), "--color", "step", "--edges", "checkpoints", "lineage"]) == 0
    html = (tmp_path / "atlas.html").read_text(encoding="utf-8")
    assert "atlasSelect" in html and "lines-lineage" in html and "lines-layers" not in html
    assert main(["atlas", str(tmp_path / "zoo.nc"), "--out", str(tmp_path / "atlas.parquet"), "--k", "3"]) == 0
    assert (tmp_path / "atlas.parquet").stat().st_size > 0
    assert "11 models" in capsys.readouterr().out
