"""Scoring's plumbing written once: texts coerced at the entry, one torch accessor, one progress helper."""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import json
import pkgutil
import subprocess
import sys

import numpy as np
import pytest

import loglik_map as lm
import loglik_map.scoring
from loglik_map.scoring import Execution, Loading, Windowing


def _scoring_functions():
    for info in pkgutil.iter_modules(loglik_map.scoring.__path__):
        if "triton" in info.name:
            continue  # needs triton (a GPU); it takes no torch argument either
        module = importlib.import_module(f"loglik_map.scoring.{info.name}")
        for name, obj in vars(module).items():
            if inspect.isfunction(obj) and obj.__module__ == module.__name__:
                yield f"{module.__name__}.{name}", obj
            elif inspect.isclass(obj) and obj.__module__ == module.__name__:
                for meth_name, meth in vars(obj).items():
                    if inspect.isfunction(meth):
                        yield f"{module.__name__}.{name}.{meth_name}", meth


def test_no_scoring_function_takes_the_torch_module_as_an_argument():
    takers = [name for name, func in _scoring_functions() if "torch" in inspect.signature(func).parameters]
    assert not takers, f"use loglik_map.scoring._torch.torch_module() instead of a torch parameter: {takers}"


@pytest.mark.parametrize("bad", [{"one text", "two texts"}, 42])
def test_public_scoring_entries_refuse_what_is_not_texts(bad, tmp_path):
    with pytest.raises(lm.errors.WrongTypeError, match="TextSet or a sequence of strings"):
        lm.score_models(["some/model"], bad, tmp_path / "store", progress=False)


# ---------------------------------------------------------------------- the settings groups
def test_a_spec_group_replaces_the_runs_group_as_a_whole(tmp_path):
    run_loading = Loading(device="cpu", dtype="float32")
    plain = lm.ModelSpec(str(tmp_path))
    own = lm.ModelSpec(str(tmp_path), loading=Loading(quantization="8bit"), windowing=Windowing(max_length=32))
    assert plain.scorer(loading=run_loading).loading == run_loading
    scorer = own.scorer(loading=run_loading, windowing=Windowing(convention="bos"), execution=Execution(batch_tokens=7))
    assert scorer.loading == Loading(quantization="8bit")  # not merged: device and dtype are the spec's defaults
    assert scorer.windowing == Windowing(max_length=32) and scorer.execution.batch_tokens == 7
    assert own.label.endswith("[8bit]") and scorer.name == own.label


def test_a_logit_lens_spec_carries_its_final_norm_to_the_scorer(tmp_path):
    spec = lm.ModelSpec(str(tmp_path), logit_lens=True, final_norm="gpt_neox.final_layer_norm",
                        execution=Execution(batch_tokens=64))
    scorer = spec.scorer(execution=Execution(batch_tokens=8))
    assert isinstance(scorer, lm.LogitLensScorer) and scorer.final_norm == "gpt_neox.final_layer_norm"
    assert scorer.execution.batch_tokens == 64  # the spec's group, not the run's


def test_score_models_labels_rows_with_the_runs_quantization(tmp_path):
    # the run's Loading reaches the label (the store's key), not only the scorer
    summary = lm.score_models([str(tmp_path / "missing")], ["a text to score"], tmp_path / "store", progress=False,
                              loading=Loading(quantization="4bit"))
    assert list(summary.failed) == ["missing[4bit-nf4]"]


def test_the_failure_record_keeps_the_spec_with_its_groups_as_json(tmp_path):
    torch = pytest.importorskip("torch", reason="needs the 'models' extra (torch)")
    transformers = pytest.importorskip("transformers", reason="needs the 'models' extra (transformers)")
    bnb = transformers.BitsAndBytesConfig(load_in_8bit=True)
    specs = [lm.ModelSpec(str(tmp_path / "gone"), name="a", loading=Loading(dtype=torch.float16)),
             lm.ModelSpec(str(tmp_path / "gone"), name="b", loading=Loading(quantization=bnb),
                          execution=Execution(progress=lambda done, total: None))]
    summary = lm.score_models(specs, ["a text to score"], tmp_path / "store", progress=False)
    assert set(summary.failed) == {"a", "b"}
    folder = tmp_path / "store"
    records = [json.loads(p.read_text(encoding="utf-8")) for p in folder.rglob("*.json")]
    recs = {r["model"]: r for r in records if "spec" in r}
    assert set(recs) == {"a", "b"}
    assert recs["a"]["spec"]["loading"]["dtype"] == "torch.float16"
    assert '"load_in_8bit": true' in recs["b"]["spec"]["loading"]["quantization"]  # its repr, settings and all
    assert recs["b"]["spec"]["execution"]["progress"].startswith("<function")
    assert recs["a"]["spec"]["windowing"] is None  # neither the spec nor the run gave one: the defaults
    assert recs["a"]["spec"]["execution"] == dataclasses.asdict(Execution(progress=False))  # the run's batch bars


def test_the_models_file_maps_each_key_to_its_group(tmp_path):
    from loglik_map._cli import read_model_specs

    models = tmp_path / "models.txt"
    models.write_text("some/model name=a max_length=32 device=cpu batch_tokens=512 trust_remote_code=true\n"
                      "other/model quantization=8bit long_texts=truncate\n", encoding="utf-8")
    a, b = read_model_specs(str(models), {"dtype": "float32", "convention": "bos", "logit_lens": False})
    assert a.name == "a" and a.loading == Loading(dtype="float32", device="cpu", trust_remote_code=True)
    assert a.windowing == Windowing(convention="bos", max_length=32) and a.execution == Execution(batch_tokens=512)
    assert b.loading == Loading(dtype="float32", quantization="8bit") and b.execution is None
    assert b.windowing == Windowing(convention="bos", long_texts="truncate")
    models.write_text("some/model max_lenght=32\n", encoding="utf-8")
    with pytest.raises(lm.LoglikMapError, match=r"models.txt:1: cannot read 'max_lenght=32'.*did you mean 'max_length'"):
        read_model_specs(str(models))
    models.write_text("some/model stride=8 max_length=8\n", encoding="utf-8")
    with pytest.raises(lm.LoglikMapError, match="models.txt:1: stride must be smaller than max_length = 8"):
        read_model_specs(str(models))


# ---------------------------------------------------------------------- one progress helper
class _Calls:
    def __init__(self):
        self.calls = []

    def __call__(self, done, total):
        self.calls.append((done, total))


def test_a_progress_callable_follows_a_scorer_to_the_end(model_dirs, texts):
    calls = _Calls()
    lm.HFScorer(str(model_dirs["gpt_neox"]), execution=Execution(batch_tokens=64, progress=calls)).score(texts[:6])
    assert len(calls.calls) > 1 and calls.calls[-1][0] == calls.calls[-1][1]
    assert [d for d, _ in calls.calls] == sorted(d for d, _ in calls.calls)


def test_a_progress_callable_counts_the_models_of_a_run(model_dirs, texts, tmp_path):
    calls = _Calls()
    specs = [lm.ModelSpec(str(model_dirs["gpt_neox"]), name="a"), lm.ModelSpec(str(model_dirs["gpt_neox_b"]), name="b")]
    assert lm.score_models(specs, texts[:3], tmp_path / "store", progress=calls).ok
    assert calls.calls == [(1, 2), (2, 2)]


def test_a_progress_callable_follows_a_map_query():
    calls = _Calls()
    values = -np.random.default_rng(0).gamma(50.0, 2.0, size=(12, 40))
    mm = lm.ModelMap(lm.LogLikelihoodMatrix(values, models=[f"m{i}" for i in range(12)],
                                            texts=[f"t{j}" for j in range(40)], n_bytes=np.full(40, 100)))
    mm.nearest(k=2, block_size=4, progress=calls)
    assert calls.calls and calls.calls[-1][0] == calls.calls[-1][1] == 6  # 3 row blocks: 6 block pairs


@pytest.mark.parametrize("bad", ["yes", 1, 0.5])
def test_progress_must_be_a_bool_none_or_a_callable(bad, tmp_path):
    with pytest.raises(lm.errors.WrongTypeError, match="progress must be True, False, None or a callable"):
        lm.score_models(["some/model"], ["a text"], tmp_path / "store", progress=bad)


def test_tqdm_is_imported_only_when_a_bar_is_drawn():
    code = ("import sys, loglik_map._progress as p\n"
            "with p.progress_reporter(False, 3) as r: r.update(3)\n"
            "with p.progress_reporter(lambda d, t: None, 3) as r: r.update(3)\n"
            "assert 'tqdm' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True)
