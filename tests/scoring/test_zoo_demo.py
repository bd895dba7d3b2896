"""The miniature zoo and the demo, in their fast setting."""

from __future__ import annotations

import io

import numpy as np
import pytest

import loglik_map as lm
from loglik_map import zoo as zoo_mod
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
    assert lm.read_base_model(child) == [str(fast_zoo.final(fast_zoo.run_names[0]))]
    monkeypatch.setattr(zoo_mod, "_train", lambda *a, **k: (_ for _ in ()).throw(AssertionError("retrained")))
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
    specs = fast_zoo.specs()
    names = [s.label for s in specs]
    assert len(names) == len(set(names))
    runs = fast_zoo.config.runs
    deepest = max(runs, key=lambda r: (r.layers, r.hidden)).name
    n = len({runs[0].name, deepest})
    assert sum(s.quantization == "8bit" for s in specs) == n and sum(s.quantization == "4bit" for s in specs) == n
    assert sum(s.logit_lens for s in specs) == n
    assert sum(s.model.endswith("step24") and not s.quantization and not s.logit_lens for s in specs) == len(runs)


def test_demo_prints_every_section_and_writes_figures(fast_zoo, tmp_path):
    buf = io.StringIO()
    res = run_demo(tmp_path / "demo", fast=True, n_texts=60, zoo_dir=fast_zoo.root.parent, window=4, progress=False,
                   out=buf)
    text = buf.getvalue()
    for needle in ("Text-entropy estimate", "KL scale", "random seeds", "8-bit quantization", "adjacent layers",
                   "fine-tuned vs base", "Consecutive-checkpoint KL", "c_q =", "c_w =", "Hölder exponent"):
        assert needle in text, needle
    assert len(res.kl_scale) == 10
    counts = res.kl_scale["count"]
    assert (counts > 0).all(), counts[counts == 0]
    assert res.kl_scale.loc["random seeds", "paper_median"] == 0.12
    assert {p.name for p in res.figures} == {"map.png", "kl_scale.png", "consecutive_kl.png", "diffusion.png"}
    assert all(p.stat().st_size > 1000 for p in res.figures)
    assert np.isfinite(res.holder.alpha)
    buf2 = io.StringIO()
    run_demo(tmp_path / "demo", fast=True, n_texts=60, zoo_dir=fast_zoo.root.parent, window=4, progress=False, out=buf2)
    assert "0 scored" in buf2.getvalue()  # everything reused


def test_cli_demo_fast(fast_zoo, tmp_path, capsys):
    from loglik_map.cli import main

    code = main(["demo", "--fast", "--n-texts", "40", "--zoo-dir", str(fast_zoo.root.parent), "--out",
                 str(tmp_path / "out"), "--no-progress"])
    assert code == 0
    out = capsys.readouterr().out
    assert "KL scale" in out and "Hölder exponent" in out and (tmp_path / "out" / "map.png").is_file()
