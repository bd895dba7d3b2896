"""``loglik-map info|kl|map|scale`` on a small run store give the API's numbers; ``--texts mini``."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import loglik_map as lm
from loglik_map._cli import _build_parser, _load_texts, main
from loglik_map.io._runstore.layout import failure_path
from loglik_map.io._runstore.writing import init_store, write_result

from .conftest import needs_storage

needs_storage()  # the commands read saved matrices and run stores


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    """A run store as score_models leaves it: checkpoints of one run, an 8-bit copy, a failure, a pending model."""
    path = tmp_path_factory.mktemp("cli") / "run.store"
    texts = lm.load_texts("mini").sample(60, seed=1)
    rng = np.random.default_rng(3)
    base = -np.asarray(texts.n_bytes) * 0.6 + rng.normal(scale=5, size=len(texts))
    rows = {f"pythia@{s}": (base - 0.1 * k + rng.normal(scale=1 + k, size=len(texts)), s, "none")
            for k, s in enumerate((1000, 2000, 3000, 4000))}
    rows["pythia@4000[8bit]"] = (rows["pythia@4000"][0] + rng.normal(scale=2, size=len(texts)), np.nan, "8bit")
    init_store(path, texts, [*rows, "broken", "later"])
    for name, (values, step, quant) in rows.items():
        row = lm.LogLikelihoodMatrix(values[None, :], models=[name], texts=texts.ids, n_bytes=texts.n_bytes,
                                     model_coords={"step": [step], "source_model": ["pythia"],
                                                   "revision": [f"step{name.split('@')[1][:4]}"],
                                                   "quantization": [quant], "convention": ["reference"]},
                                     text_coords=texts.text_coords(), attrs={"convention": "reference"})
        write_result(path, name, row)
    failure_path(path, "broken").write_text(json.dumps({"model": "broken", "error": "OSError: no such model"}))
    return path


def run(capsys, *argv: str) -> str:
    assert main(list(argv)) == 0
    return capsys.readouterr().out


@pytest.fixture(scope="module")
def api_map(store) -> lm.ModelMap:
    return lm.ModelMap(lm.open_matrix(store).clip(0.02))


def test_kl_json_and_csv_are_the_apis_numbers(store, api_map, capsys):
    expected = api_map.summary()
    got = pd.DataFrame(json.loads(run(capsys, "kl", str(store), "--format", "json")))
    pd.testing.assert_frame_equal(got, expected, check_exact=True, check_like=False)
    csv = pd.read_csv(io.StringIO(run(capsys, "kl", str(store), "--format", "csv", "--unit", "nats",
                                      "--pair", "pythia@1000", "pythia@2000", "--confidence-level", "0.9")))
    est = api_map.compare("pythia@1000", "pythia@2000", unit="nats")
    ci = est.confidence_interval(0.9)
    assert csv.kl.item() == est.kl and csv.se.item() == pytest.approx(est.se, rel=1e-12)
    assert (csv.ci_low.item(), csv.ci_high.item()) == pytest.approx((ci.low, ci.high), rel=1e-12)
    table = run(capsys, "kl", str(store), "--models", "pythia@1000", "pythia@3000")
    assert "pythia@1000" in table and f"{api_map.kl('pythia@1000', 'pythia@3000'):.6f}" in table


def test_kl_clip_option_and_a_clipped_matrix(store, tmp_path, capsys):
    raw = lm.ModelMap(lm.open_matrix(store))
    got = json.loads(run(capsys, "kl", str(store), "--clip", "0", "--format", "json", "--pair", "pythia@1000",
                         "pythia@4000"))
    assert got[0]["kl"] == raw.kl("pythia@1000", "pythia@4000")
    saved = tmp_path / "clipped.nc"
    lm.open_matrix(store).clip(0.05).save(saved)
    assert main(["kl", str(saved)]) == 2  # saved at 0.05, asked for the default 0.02
    assert "--clip 0.05" in capsys.readouterr().out
    out = json.loads(run(capsys, "kl", str(saved), "--clip", "0.05", "--format", "json"))
    assert len(out) == 10


def test_scale_gives_kl_scale_of_the_settings_the_coordinates_define(store, api_map, capsys):
    got = pd.DataFrame(json.loads(run(capsys, "scale", str(store), "--format", "json"))).set_index("setting")
    assert list(got.index) == ["consecutive checkpoints", "8-bit quantization", "random pairs of all models"]
    expected = lm.kl_scale(api_map, {
        "consecutive checkpoints": lm.consecutive_checkpoints("step", by="source_model"),
        "8-bit quantization": lm.original_vs("quantization", "none", "8bit", by=("source_model", "revision")),
        "random pairs of all models": lm.random_pairs(200)})
    for col in ("count", "median", "mean", "median_se"):
        np.testing.assert_array_equal(got[col].to_numpy(float), expected[col].to_numpy(float))
    assert got.loc["8-bit quantization", "paper_median"] == 0.44 and got.loc["8-bit quantization", "count"] == 1
    table = run(capsys, "scale", str(store))
    assert f"{expected.loc['consecutive checkpoints', 'median']:.6f}" in table and "..." not in table
    assert "no pairs: 4-bit quantization" in table


def test_info_lists_finished_failed_and_pending_models(store, capsys):
    facts = json.loads(run(capsys, "info", str(store), "--format", "json"))
    assert facts["kind"] == "run store" and facts["shape"] == [5, 60]
    assert facts["failed"] == {"broken": "OSError: no such model"} and facts["pending"] == ["later"]
    text = run(capsys, "info", str(store))
    assert "finished: 5, failed: 1, pending: 1" in text and "(model: 5, text: 60)" in text


def test_info_counts_a_finished_logit_lens_spec_as_finished(tmp_path, capsys):
    """A logit-lens spec writes one row per layer, named by layer: its label is no row's name."""
    path = tmp_path / "lens.store"
    texts = lm.load_texts("mini").sample(20, seed=2)
    init_store(path, texts, ["tiny@100", "tiny@100 (lens)", "later"])
    rng = np.random.default_rng(0)
    for label, names in (("tiny@100", ["tiny@100"]), ("tiny@100 (lens)", [f"tiny@100@layer{k}" for k in range(3)])):
        rows = lm.LogLikelihoodMatrix(-rng.uniform(100, 200, size=(len(names), len(texts))), models=names,
                                      texts=texts.ids, n_bytes=texts.n_bytes, text_coords=texts.text_coords())
        write_result(path, label, rows)
    facts = json.loads(run(capsys, "info", str(path), "--format", "json"))
    assert facts["pending"] == ["later"] and len(facts["finished"]) == 4


def test_map_saves_the_figure(store, tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="plot tests need the 'plot' extra (matplotlib)")
    out = tmp_path / "map.png"
    assert "5 models" in run(capsys, "map", str(store), "--out", str(out), "--color", "step", "--label", "pythia@1000")
    assert out.stat().st_size > 5000
    heat = tmp_path / "heat.png"
    run(capsys, "map", str(store), "--out", str(heat), "--heatmap")
    assert heat.stat().st_size > 5000


def test_texts_may_name_a_built_in_set(tmp_path):
    models = tmp_path / "models.txt"
    models.write_text("EleutherAI/pythia-70m\n")
    args = _build_parser().parse_args(["score", "--models", str(models), "--texts", "mini", "--store", "s"])
    assert args.texts == "mini" and len(_load_texts(args.texts)) == len(lm.load_texts("mini"))
    with pytest.raises(SystemExit):
        _build_parser().parse_args(["score", "--models", str(models), "--texts", "minni", "--store", "s"])


# ---------------------------------------------------------------------- what the CLI refuses (issue 27, item 12)
@pytest.fixture(scope="module")
def odd_labels(tmp_path_factory) -> Path:
    """A saved matrix whose labels carry a terminal escape and spreadsheet formulas."""
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("odd") / "odd.nc"
    lm.LogLikelihoodMatrix(-600 + rng.normal(scale=5, size=(4, 50)), models=["a", "b\x1b[31mRED", '=HYPERLINK("x")', "-1+2"],
                           texts=[f"t{k}" for k in range(50)], n_bytes=np.full(50, 1000),
                           model_coords={"step": [1, 2, 3, 4]}).save(path)
    return path


def fails(capsys, *argv: str) -> str:
    """Run a command that must fail cleanly (exit 2, a message, no traceback); its output."""
    try:
        assert main(list(argv)) == 2
    except SystemExit as exit_:  # argparse's refusal of an argument
        assert exit_.code == 2
    out = capsys.readouterr()
    assert "Traceback" not in out.out + out.err
    return out.out + out.err


@pytest.mark.parametrize("command", ["kl", "scale"])
def test_out_never_replaces_the_input_nor_an_existing_file_unasked(odd_labels, store, tmp_path, capsys, command):
    before = odd_labels.read_bytes()
    assert "the input" in fails(capsys, command, str(odd_labels), "--out", str(odd_labels), "--overwrite")
    assert odd_labels.read_bytes() == before
    assert "the input" in fails(capsys, command, str(store), "--out", str(store / "loglik_map_store.json"),
                                "--overwrite")
    lm.open_matrix(store)
    out = tmp_path / "table.csv"
    out.write_text("keep me")
    assert "--overwrite" in fails(capsys, command, str(odd_labels), "--out", str(out), "--format", "csv")
    assert out.read_text() == "keep me"
    assert main([command, str(odd_labels), "--out", str(out), "--format", "csv", "--overwrite"]) == 0
    assert out.read_text().startswith(("a,b,kl", "setting,"))


@pytest.mark.parametrize("clip, message", [("nan", "between 0"), ("-1", "between 0"), ("0.999", "every KL becomes 0"),
                                           ("x", "must be a number")])
def test_clip_must_be_a_sensible_quantile(odd_labels, capsys, clip, message):
    assert message in fails(capsys, "kl", str(odd_labels), "--clip", clip)


def test_errors_are_messages_not_tracebacks(odd_labels, tmp_path, capsys):
    assert "does not exist" in fails(capsys, "kl", str(odd_labels), "--out", str(tmp_path / "missing" / "t.csv"))
    assert "'nonexistent' is not on the map" in fails(capsys, "scale", str(odd_labels), "--by", "nonexistent")
    binary = tmp_path / "models.txt"
    binary.write_bytes(bytes(range(256)) * 2)
    assert "not a text file" in fails(capsys, "score", "--models", str(binary), "--texts", "mini", "--store",
                                      str(tmp_path / "s"))
    pytest.importorskip("matplotlib", reason="plot tests need the 'plot' extra (matplotlib)")
    assert "use one of" in fails(capsys, "map", str(odd_labels), "--out", str(tmp_path / "x.xyz"))
    assert not (tmp_path / "x.xyz").exists()


def test_labels_cannot_drive_the_terminal_or_a_spreadsheet(odd_labels, capsys):
    for argv in (["kl", str(odd_labels)], ["kl", str(odd_labels), "--format", "csv"], ["info", str(odd_labels)],
                 ["kl", str(odd_labels), "--format", "json"], ["kl", str(odd_labels), "--models", "b\x1b[31mREX"]):
        main(argv)
        out = capsys.readouterr().out
        assert "\x1b" not in out and ("\\x1b" in out or "\\u001b" in out), argv
    csv = pd.read_csv(io.StringIO(run(capsys, "kl", str(odd_labels), "--format", "csv")), dtype=str)
    cells = set(csv.a) | set(csv.b)
    assert {"'=HYPERLINK(\"x\")", "'-1+2", "a"} <= cells and not any(c.startswith(("=", "-", "+", "@")) for c in cells)
    assert json.loads(run(capsys, "kl", str(odd_labels), "--format", "json"))[0]["b"] == "b\x1b[31mRED"
