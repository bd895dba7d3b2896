"""The miniature zoo and the demo, in their fast setting."""

from __future__ import annotations

import importlib.util
import io

import numpy as np
import pytest

import loglik_map as lm
from loglik_map.demo import _zoo as zoo_mod
from loglik_map.demo import run_demo


@pytest.fixture(scope="module")
def fast_zoo(tmp_path_factory):
    return zoo_mod.build_zoo(tmp_path_factory.mktemp("zoo"), zoo_mod.ZooConfig.fast(), progress=False)


def test_zoo_has_every_checkpoint_child_and_is_cached(fast_zoo, monkeypatch):
    cfg = fast_zoo.config
    assert cfg.checkpoints == (0, 1, 2, 4, 8, 12, 16, 20, 24)
    for run in fast_zoo.run_names:
        for s in cfg.checkpoints:
            assert (fast_zoo.checkpoint(run, s) / "model.safetensors").is_file()
    child = fast_zoo.child("python_docs")
    assert lm.io.read_base_model(child) == [str(fast_zoo.final(fast_zoo.run_names[0]))]
    monkeypatch.setattr(zoo_mod, "train_steps", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
    again = zoo_mod.build_zoo(fast_zoo.root.parent, cfg, progress=False)
    assert again.root == fast_zoo.root


def test_zoo_training_is_deterministic(fast_zoo, tmp_path):
    from safetensors.numpy import load_file

    cfg = zoo_mod.ZooConfig.fast()
    one_run = zoo_mod.ZooConfig(**{**cfg.__dict__, "runs": cfg.runs[:1], "finetune_domains": ()})
    other = zoo_mod.build_zoo(tmp_path, one_run, progress=False)
    a = load_file(fast_zoo.final(fast_zoo.run_names[0]) / "model.safetensors")
    b = load_file(other.final(other.run_names[0]) / "model.safetensors")
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    first = load_file(fast_zoo.checkpoint(fast_zoo.run_names[0], 0) / "model.safetensors")
    assert any(not np.array_equal(first[k], a[k]) for k in a)  # training changed the weights


def test_specs_cover_every_setting(fast_zoo):
    specs = fast_zoo.specs(loading=lm.scoring.Loading(device="cpu"))
    assert all(s.loading is not None and s.loading.device == "cpu" for s in specs)  # quantized copies included
    quant = [s.loading.quantization if s.loading is not None else None for s in specs]
    names = [s.label for s in specs]
    assert len(names) == len(set(names))
    runs = fast_zoo.config.runs
    deepest = max(runs, key=lambda r: (r.layers, r.hidden)).name
    n = len({runs[0].name, deepest})
    assert quant.count("8bit") == n and quant.count("4bit") == n
    assert sum(s.logit_lens for s in specs) == n
    assert sum(s.model.endswith("step24") and not q and not s.logit_lens for s, q in zip(specs, quant)) == len(runs)


@pytest.fixture(scope="module")
def fast_demo(fast_zoo, tmp_path_factory):
    """One run of the fast demo: its result, what it printed, and its output folder."""
    out_dir = tmp_path_factory.mktemp("demo") / "demo"
    buf = io.StringIO()
    res = run_demo(out_dir, fast=True, n_texts=60, zoo_dir=fast_zoo.root.parent, window=4, progress=False, out=buf)
    return res, buf.getvalue(), out_dir


def test_demo_prints_every_section_and_writes_figures(fast_zoo, fast_demo):
    res, text, out_dir = fast_demo
    for needle in ("Text-entropy estimate", "KL scale", "random seeds", "8-bit quantization", "adjacent layers",
                   "fine-tuned vs base", "Consecutive-checkpoint KL", "c_q =", "c_w =", "Hölder exponent"):
        assert needle in text, needle
    assert len(res.kl_scale) == 10
    counts = res.kl_scale["count"]
    assert (counts > 0).all(), counts[counts == 0]
    assert res.kl_scale.loc["random seeds", "paper_median"] == 0.12
    atlas = {"atlas.html"} if importlib.util.find_spec("plotly") else set()
    assert {p.name for p in res.figures} == {"map.png", "kl_scale.png", "consecutive_kl.png", "diffusion.png"} | atlas
    assert all(p.stat().st_size > 1000 for p in res.figures)
    assert np.isfinite(res.holder.alpha)
    buf2 = io.StringIO()
    run_demo(out_dir, fast=True, n_texts=60, zoo_dir=fast_zoo.root.parent, window=4, progress=False, out=buf2)
    assert "0 scored" in buf2.getvalue()  # everything reused


def test_demo_kl_scale_is_the_papers_per_setting_pipeline(fast_demo):
    """Each setting measured as the paper does (per-setting preprocessing, the library's pair
    rules), the 8-bit pair a model and its copy (not a logit-lens row), and no claim the numbers
    do not support."""
    res, text, _ = fast_demo
    raw, table = res.matrix, res.kl_scale
    assert "clip_lower_quantile" not in raw.attrs  # the map as scored; settings preprocess themselves
    pre = table["preprocessing"]
    assert pre["random seeds"].startswith("own") and pre["model sizes"].startswith("own")
    assert pre["random seeds"] != pre["model sizes"]  # the seed runs have their own recipe
    assert pre["consecutive checkpoints, last 50k steps"] == pre["model sizes"]
    for name in ("8-bit quantization", "fine-tuned vs base", "random pairs within a model type", "adjacent layers"):
        assert pre[name].startswith("as given"), name
    assert table.loc["random seeds", "n_texts"] < raw.n_texts == table.loc["8-bit quantization", "n_texts"]
    mm = lm.ModelMap(raw)
    quant = lm.original_vs("quantization", "none", "8bit")(mm)
    assert quant and all("@layer" not in a and b == a + "[8bit]" for a, b in quant)
    assert table.loc["8-bit quantization", "median"] == pytest.approx(np.median([mm.kl(a, b) for a, b in quant]))
    rand = lm.random_pairs(lineage="base_model")(mm)
    assert table.loc["random pairs across all models", "count"] == len(rand)
    assert "expected to resemble" not in text and "Spearman" in text
    assert "paper late in training" not in text and "not comparable" in text


def test_no_demo_or_zoo_scoring_drops_a_token(fast_zoo, fast_demo):
    """The figures the demo prints cover whole texts: no spec truncates, no text loses a token."""
    from transformers import AutoTokenizer

    for cfg in (zoo_mod.ZooConfig(), zoo_mod.ZooConfig.fast()):
        assert cfg.seq_len <= cfg.max_positions  # trained on every position the models have
    for spec in fast_zoo.specs():
        assert spec.scorer().windowing.long_texts == "rolling", spec.label
        truncating = lm.scoring.Windowing(long_texts="truncate")
        assert spec.scorer(windowing=truncating).windowing.long_texts == "rolling", spec.label  # a run's cannot change it
    res, text, _ = fast_demo
    data = res.matrix.data
    assert not data["n_tokens_dropped"].values.any() and (data["n_texts_truncated"].values == 0).all()
    assert set(data["long_texts"].values) == {"rolling"}
    # every token after the first of every text was scored, under every model (one tokenizer in the zoo)
    tok = AutoTokenizer.from_pretrained(fast_zoo.final(fast_zoo.run_names[0]))
    texts = lm.load_texts("mini").sample(60, seed=42)
    n_tokens = np.array([len(tok(t)["input_ids"]) for t in texts])
    assert (n_tokens > fast_zoo.config.max_positions).mean() > 0.9  # the fast zoo needs its rolling windows
    order = [list(texts.ids).index(t) for t in res.matrix.texts]
    np.testing.assert_array_equal(data["n_tokens"].values, np.broadcast_to(n_tokens[order] - 1, data.shape))
    assert "none dropped" in text


def test_cli_demo_fast(fast_zoo, tmp_path, capsys):
    from loglik_map._cli import main

    code = main(["demo", "--fast", "--n-texts", "40", "--zoo-dir", str(fast_zoo.root.parent), "--out",
                 str(tmp_path / "out"), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "KL scale" in out and "Hölder exponent" in out and (tmp_path / "out" / "map.png").is_file()
    with pytest.raises(SystemExit) as exit_info:  # flags are checked when given
        main(["demo", "--fast", "--n-texts", "0", "--zoo-dir", str(fast_zoo.root.parent), "--out", str(tmp_path / "x")])
    assert exit_info.value.code == 2 and "--n-texts: must be at least 2, got 0" in capsys.readouterr().err


def test_the_demo_checks_for_bitsandbytes_without_importing_it():
    """Importing bitsandbytes logs its CPU backend's gemm_4bit notice; only the scorer, inside the
    filter, may import it, so the demo's check must not."""
    import subprocess
    import sys

    code = ("import sys; from loglik_map.demo._run import quantization_available; quantization_available(); "
            "print('bitsandbytes' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False" and "gemm_4bit" not in out.stderr
