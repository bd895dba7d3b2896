"""Resumable scoring runs: store layout, skipping, failures, crashes, dask, the CLI."""

from __future__ import annotations

import numpy as np
import pytest

import loglik_map as lm
from loglik_map._cli import main
from loglik_map.scoring import _runs as runs


@pytest.fixture
def specs(model_dirs):
    return [
        lm.ModelSpec(str(model_dirs["gpt_neox"]), name="neox-a"),
        lm.ModelSpec(str(model_dirs["gpt_neox_b"]), name="neox-b"),
        lm.ModelSpec(str(model_dirs["llama"]), name="llama", logit_lens=True),
    ]


def _same_matrix(a: lm.LogLikelihoodMatrix, b: lm.LogLikelihoodMatrix) -> None:
    assert list(a.models) == list(b.models) and list(a.texts) == list(b.texts)
    np.testing.assert_array_equal(a.values, b.values)
    for name in a.data.coords:
        np.testing.assert_array_equal(a.data[name].values, b.data[name].values)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, model_dirs, texts):
    store = tmp_path_factory.mktemp("runs") / "full"
    specs = [lm.ModelSpec(str(model_dirs["gpt_neox"]), name="neox-a"),
             lm.ModelSpec(str(model_dirs["gpt_neox_b"]), name="neox-b"),
             lm.ModelSpec(str(model_dirs["llama"]), name="llama", logit_lens=True)]
    summary = lm.score_models(specs, texts, store, progress=False)
    assert summary.ok and summary.scored == ("neox-a", "neox-b", "llama@lens")
    return lm.open_matrix(store)


def test_store_holds_every_row_in_run_order(uninterrupted, model_dirs, texts):
    m = uninterrupted
    assert list(m.models) == ["neox-a", "neox-b", "llama@layer0", "llama@layer1", "llama@layer2"]
    single = lm.HFScorer(str(model_dirs["gpt_neox"]), name="neox-a").score(texts)
    np.testing.assert_array_equal(m.values[0], single.values[0])
    layer = m.data["layer"].values
    assert np.isnan(layer[:2]).all() and list(layer[2:]) == [0, 1, 2]
    assert list(m.data["convention"].values) == ["reference"] * 5
    assert list(m.data["scoring_path"].values) == ["fast"] * 5  # the self-check's path, kept in the store
    assert list(m.data["final_norm"].values[2:]) == ["model.norm"] * 3
    tokens = m.data["n_tokens"].values  # per model and text, through the Zarr store
    np.testing.assert_array_equal(tokens[0], single.data["n_tokens"].values[0])
    assert (tokens[2:] == tokens[2]).all() and (tokens > 0).all()


def test_rerun_skips_finished_models(tmp_path, specs, texts):
    store = tmp_path / "store"
    lm.score_models(specs[:1], texts, store, progress=False)
    summary = lm.score_models(specs[:2], texts, store, progress=False)
    assert summary.skipped == ("neox-a",) and summary.scored == ("neox-b",)
    with pytest.raises(lm.LoglikMapError, match="different text set"):
        lm.score_models(specs[:1], texts[:5], store, progress=False)


def test_a_failing_model_is_recorded_and_the_run_goes_on(tmp_path, specs, texts):
    store = tmp_path / "store"
    bad = lm.ModelSpec(str(tmp_path / "no-such-model"), name="broken")
    summary = lm.score_models([specs[0], bad, specs[1]], texts, store, progress=False)
    assert summary.scored == ("neox-a", "neox-b") and list(summary.failed) == ["broken"]
    assert "no such folder" in summary.failed["broken"] and "FAILED broken" in str(summary)
    rec = lm.io.store_failures(store)["broken"]
    assert rec["spec"]["model"].endswith("no-such-model") and "Traceback" in rec["traceback"]
    assert list(lm.open_matrix(store).models) == ["neox-a", "neox-b"]
    again = lm.score_models([specs[0], bad], texts, store, progress=False, retry_failed=False)
    assert again.skipped == ("neox-a", "broken")


def test_killed_run_resumes_to_the_uninterrupted_matrix(tmp_path, specs, texts, monkeypatch, uninterrupted):
    store = tmp_path / "store"
    real = runs._score_one
    calls = []

    def dies_on_second(spec, *args):
        calls.append(spec.label)
        if len(calls) == 2:
            # a half-written result, as a kill during writing would leave it
            (store / "models" / f".{lm.io._runstore.row_key(spec.label)}.dead.partial").mkdir()
            raise KeyboardInterrupt  # like SIGINT/SIGKILL: not an Exception, the run stops
        return real(spec, *args)

    monkeypatch.setattr(runs, "_score_one", dies_on_second)
    with pytest.raises(KeyboardInterrupt):
        lm.score_models(specs, texts, store, progress=False)
    assert list(lm.open_matrix(store).models) == ["neox-a"]  # finished work kept
    monkeypatch.setattr(runs, "_score_one", real)
    summary = lm.score_models(specs, texts, store, progress=False)
    assert summary.skipped == ("neox-a",) and summary.scored == ("neox-b", "llama@lens")
    assert not list((store / "models").glob(".*.partial"))
    _same_matrix(lm.open_matrix(store), uninterrupted)


def test_dask_cluster_executor(tmp_path, specs, texts, uninterrupted):
    distributed = pytest.importorskip("distributed", reason="dask tests need the 'parallel' extra")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            summary = lm.score_models(specs, texts, tmp_path / "store", executor=client.get_executor(), progress=False)
    assert summary.ok and set(summary.scored) == {"neox-a", "neox-b", "llama@lens"}
    _same_matrix(lm.open_matrix(tmp_path / "store"), uninterrupted)


def test_cli_score(tmp_path, model_dirs, texts, capsys):
    models = tmp_path / "models.txt"
    models.write_text(f"# two models\n{model_dirs['gpt_neox']} name=neox-a\n{model_dirs['llama']} name=llama\n",
                      encoding="utf-8")
    texts_path = tmp_path / "texts.jsonl"
    texts.to_jsonl(texts_path)
    store = tmp_path / "store"
    code = main(["score", "--models", str(models), "--texts", str(texts_path), "--store", str(store), "--no-progress"])
    assert code == 0
    assert "2 scored" in capsys.readouterr().out
    assert list(lm.open_matrix(store).models) == ["neox-a", "llama"]
    models.write_text(f"{tmp_path / 'missing'} name=gone\n", encoding="utf-8")
    code = main(["score", "--models", str(models), "--texts", str(texts_path), "--store", str(store), "--no-progress"])
    assert code == 1 and "FAILED gone" in capsys.readouterr().out
    models.write_text("x revsion=1\n", encoding="utf-8")
    assert main(["score", "--models", str(models), "--texts", str(texts_path), "--store", str(store)]) == 2
    assert "cannot read 'revsion=1'" in capsys.readouterr().out
