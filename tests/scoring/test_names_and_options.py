"""Scorers and specs: short stable names, steps and coordinates, options checked when given (issue 9)."""

from __future__ import annotations

import dataclasses
import shutil
import sys

import numpy as np
import pytest

import loglik_map as lm
from loglik_map._cli import main
from loglik_map.scoring import Execution, Loading, Windowing

from . import tiny


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, model_dirs, tokenizers):
    """Three checkpoint folders of one run, named as training scripts name them: run/step0, step10, step20."""
    run = tmp_path_factory.mktemp("runs") / "neox-tiny"
    shutil.copytree(model_dirs["gpt_neox"], run / "step0")
    shutil.copytree(model_dirs["gpt_neox_b"], run / "step10")
    tiny.save(tiny.build_model("gpt_neox", tokenizers["neox"], seed=9), tokenizers["neox"], run / "step20")
    return run


def _no_hub(monkeypatch):
    """Make any hub or loading call fail loudly, to prove an error came before it."""
    import transformers

    def boom(*args, **kwargs):
        raise AssertionError("the hub or a model was consulted")

    for cls in (transformers.AutoTokenizer, transformers.AutoConfig, transformers.AutoModelForCausalLM):
        monkeypatch.setattr(cls, "from_pretrained", boom)


# ---------------------------------------------------------------------- names and steps
def test_default_names_are_short_and_stable(model_dirs, checkpoints):
    assert lm.HFScorer(str(model_dirs["llama"])).name == "llama"  # the folder's base name, not its path
    step = lm.HFScorer(checkpoints / "step10")
    assert step.name == "neox-tiny@step10" and step.coords == {"step": 10}  # checkpoint folders keep their run
    assert step.model_id == str(checkpoints / "step10")  # the full path stays, as the source_model coordinate
    hub = lm.HFScorer("EleutherAI/pythia-160m", revision="step1000", loading=Loading(quantization="8bit"))
    assert hub.name == "EleutherAI/pythia-160m@step1000[8bit]" and hub.coords == {"step": 1000}
    assert lm.HFScorer("EleutherAI/pythia-160m", revision="main").coords == {}
    assert lm.ModelSpec(str(checkpoints / "step20"), logit_lens=True).label == "neox-tiny@step20@lens"
    assert lm.ModelSpec("EleutherAI/pythia-160m", revision="step143000").step == 143000


def test_in_memory_models_are_named_after_their_origin_or_need_a_name(model_dirs, tokenizers):
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(model_dirs["gpt2"])
    assert lm.HFScorer(loaded, tokenizer=tokenizers["neox"]).name == "gpt2"
    built = tiny.build_model("gpt_neox", tokenizers["neox"])
    with pytest.raises(lm.LoglikMapError, match="built in memory.*pass name="):
        lm.HFScorer(built, tokenizer=tokenizers["neox"])
    assert lm.HFScorer(built, tokenizer=tokenizers["neox"], name="mine").name == "mine"


def test_logit_lens_rows_carry_layer_parent_name_and_coordinates(checkpoints, texts):
    rows = lm.LogitLensScorer(checkpoints / "step20", coords={"seed": 9, "family": "neox"}).score(texts[:4])
    assert list(rows.models) == [f"neox-tiny@step20@layer{layer}" for layer in range(3)]
    data = rows.data
    assert list(data["layer"].values) == [0, 1, 2]
    assert list(data["parent_model"].values) == ["neox-tiny@step20"] * 3
    assert list(data["step"].values) == [20] * 3 and list(data["seed"].values) == [9] * 3
    assert list(data["family"].values) == ["neox"] * 3


def test_steps_and_coords_contradictions_are_refused():
    import numpy as np

    spec = lm.ModelSpec("EleutherAI/pythia-160m", step=np.int64(5), coords={"seed": np.int64(1)})
    assert spec.coords == {"seed": 1, "step": 5} and type(spec.coords["seed"]) is int  # JSON-safe in failure records
    with pytest.raises(lm.LoglikMapError, match="step=2000 contradicts revision 'step1000'"):
        lm.ModelSpec("EleutherAI/pythia-160m", revision="step1000", step=2000)
    with pytest.raises(lm.LoglikMapError, match="'convention' cannot be a model coordinate name"):
        lm.ModelSpec("EleutherAI/pythia-160m", coords={"convention": "x"})
    with pytest.raises(lm.LoglikMapError, match="a model coordinate is a number or a string"):
        lm.ModelSpec("EleutherAI/pythia-160m", coords={"seed": [1, 2]})


def test_a_trajectory_over_scored_checkpoints_works_from_the_step_coordinate(checkpoints, texts, tmp_path):
    specs = [lm.ModelSpec(str(checkpoints / f"step{s}")) for s in (0, 10, 20)]
    specs.append(lm.ModelSpec("EleutherAI/pythia-160m", revision="step1000"))  # fails offline; the run goes on
    summary = lm.score_models(specs, texts, tmp_path / "store", progress=False)
    assert summary.scored == ("neox-tiny@step0", "neox-tiny@step10", "neox-tiny@step20")
    matrix = lm.open_matrix(tmp_path / "store")
    assert list(matrix.data["step"].values) == [0, 10, 20]
    traj = lm.Trajectory(matrix, order="step")
    steps = traj.step_kl()
    assert list(steps["step"].values) == [0, 10] and list(steps["step_next"].values) == [10, 20]
    assert (steps["kl"].values > 0).all()
    mm = lm.ModelMap(matrix)
    assert steps["kl"].values[0] == pytest.approx(mm.kl("neox-tiny@step0", "neox-tiny@step10"), rel=1e-10)


# ---------------------------------------------------------------------- errors before any work
def test_a_missing_folder_is_named_before_any_hub_lookup(tmp_path, monkeypatch):
    _no_hub(monkeypatch)
    for missing in (str(tmp_path / "no-such-model"), tmp_path / "no-such-model", "./models/run/step24"):
        with pytest.raises(lm.LoglikMapError, match="no such folder"):
            lm.HFScorer(missing)
    spec = lm.ModelSpec(str(tmp_path / "no-such-model"))  # a spec may name a folder of the machine that scores it
    with pytest.raises(lm.LoglikMapError, match="no such folder"):
        spec.scorer()
    from loglik_map.scoring._naming import local_folder

    assert local_folder("EleutherAI/pythia-70m") is None  # a hub id is not a folder


def test_texts_too_short_to_score_are_found_before_the_model_loads(model_dirs, monkeypatch):
    import transformers

    def no_model(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_model)
    texts = lm.TextSet(["A long enough text to score.", "a", "Another text that is fine.", "b"])
    with pytest.raises(lm.LoglikMapError, match=rf"2 text\(s\) have fewer than 2 tokens under convention "
                                                rf"'reference'.*{texts.ids[1]!r} \('a'\), {texts.ids[3]!r} \('b'\).*"
                                                "convention='bos'"):
        lm.HFScorer(str(model_dirs["gpt_neox"])).score(texts)


def test_max_length_beyond_the_models_context_is_refused(model_dirs, texts):
    with pytest.raises(lm.LoglikMapError, match="max_length=128 exceeds the 64 positions of 'gpt_neox'"):
        lm.HFScorer(str(model_dirs["gpt_neox"]), windowing=Windowing(max_length=128)).score(texts[:2])


@pytest.mark.parametrize("group, kwargs, message", [
    (Loading, dict(quantization="int8"), "unknown quantization 'int8'"),
    (Loading, dict(dtype="int8"), "unknown dtype 'int8'"),
    (Loading, dict(device="gpu"), "device 'gpu' is not a device"),
    (Loading, dict(trust_remote_code="yes"), "trust_remote_code must be True or False, got 'yes'"),
    (Windowing, dict(long_texts="truncated"), r"unknown long_texts 'truncated'; use one of \('rolling', 'truncate', 'error'\)"),
    (Windowing, dict(convention="eos"), r"unknown convention 'eos'; use one of \('reference', 'bos'\)"),
    (Windowing, dict(max_length=1), "max_length must be an integer ≥ 2, got 1"),
    (Windowing, dict(max_length=16, stride=16), "stride must be smaller than max_length = 16"),
    (Execution, dict(batch_tokens=0), "batch_tokens must be a positive integer or 'auto', got 0"),
    (Execution, dict(batch_tokens=2.5), "batch_tokens must be a positive integer"),
    (Execution, dict(unembed="fast"), "unknown unembed 'fast'"),
    (Execution, dict(fallback="ignore"), r"unknown fallback 'ignore'; use one of \('warn', 'error'\)"),
    (Execution, dict(progress="yes"), "progress must be True, False, None or a callable"),
])
def test_settings_groups_are_checked_when_made_naming_the_field(group, kwargs, message):
    with pytest.raises(lm.LoglikMapError, match=message):
        group(**kwargs)


def test_settings_groups_are_frozen_and_refuse_unknown_fields():
    with pytest.raises(TypeError, match="max_lenght"):
        Windowing(max_lenght=512)  # type: ignore[call-arg]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Loading().dtype = "float16"  # type: ignore[misc]
    assert Execution(batch_tokens=np.int64(4096)).batch_tokens == 4096


def test_scorers_and_specs_take_the_groups_and_refuse_anything_else(monkeypatch):
    _no_hub(monkeypatch)
    scorer = lm.HFScorer("EleutherAI/pythia-70m", windowing=Windowing(max_length=512))
    assert scorer.windowing.max_length == 512 and scorer.loading == Loading() and scorer.execution == Execution()
    with pytest.raises(lm.errors.WrongTypeError, match=r"windowing= takes a loglik_map.scoring.Windowing, got dict; "
                                                       r"for a mapping write windowing=loglik_map.scoring.Windowing"):
        lm.HFScorer("EleutherAI/pythia-70m", windowing={"max_length": 512})  # type: ignore[arg-type]
    with pytest.raises(lm.errors.WrongTypeError, match="loading= takes a loglik_map.scoring.Loading, got Windowing"):
        lm.ModelSpec("EleutherAI/pythia-70m", loading=Windowing())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_length"):
        lm.HFScorer("EleutherAI/pythia-70m", max_length=512)  # type: ignore[call-arg]
    with pytest.raises(lm.LoglikMapError, match="'n_bytes' cannot be a model coordinate name"):
        lm.ModelSpec("EleutherAI/pythia-70m", coords={"step": "x", "n_bytes": 1})
    with pytest.raises(lm.LoglikMapError, match="final_norm is an option of the logit lens"):
        lm.ModelSpec("EleutherAI/pythia-70m", final_norm="model.norm")


def test_a_missing_extra_raises_import_error_naming_it(model_dirs, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed
    with pytest.raises(ImportError, match=r"scoring needs torch, which is not installed: pip install "
                                          r"'loglik_map\[models\]'") as info:
        lm.HFScorer(str(model_dirs["gpt_neox"])).score(["a text to score"])
    assert info.value.extra == "models" and info.value.name == "torch"


def test_cli_models_file_values_are_checked(tmp_path, model_dirs, texts, capsys):
    texts_path = tmp_path / "texts.jsonl"
    texts.to_jsonl(texts_path)
    models = tmp_path / "models.txt"
    args = ["score", "--models", str(models), "--texts", str(texts_path), "--store", str(tmp_path / "s"),
            "--no-progress"]
    for line, message in ((f"{model_dirs['gpt_neox']} logit_lens=ture", "logit_lens='ture'; use true or false"),
                          (f"{model_dirs['gpt_neox']} quantization=int8", ":1: unknown quantization 'int8'"),
                          (f"{model_dirs['gpt_neox']} step=early", "step='early'; use a whole number")):
        models.write_text(line + "\n", encoding="utf-8")
        assert main(args) == 2
        assert message in capsys.readouterr().out
    models.write_text(f"{model_dirs['gpt_neox']} step=7 name=n\n", encoding="utf-8")
    assert main(args) == 0
    m = lm.open_matrix(tmp_path / "s")
    assert list(m.models) == ["n"] and m.data["step"].values[0] == 7 and m.data["long_texts"].values[0] == "rolling"
    with pytest.raises(SystemExit):
        main([*args, "--batch-tokens", "0"])
    assert "--batch-tokens: must be at least 1, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["score", "--models", str(tmp_path / "nope.txt"), "--texts", str(texts_path), "--store", "x"])
    assert "--models: no such file" in capsys.readouterr().err


def test_a_run_wide_dtype_reaches_every_model(model_dirs, texts, tmp_path):
    # exact_kl(dtype=...) and score_models(dtype=...) failed with "multiple values for keyword argument 'dtype'"
    fp32 = Loading(dtype="float32")
    ds = lm.exact_kl(str(model_dirs["gpt_neox"]), str(model_dirs["gpt_neox_b"]), texts[:3], loading=fp32)
    assert ds.attrs["dtype_a"] == ds.attrs["dtype_b"] == "float32"
    own = lm.ModelSpec(str(model_dirs["gpt_neox_b"]), loading=Loading(dtype="bfloat16"))  # replaces the run's
    summary = lm.score_models([str(model_dirs["gpt_neox"]), own], texts[:3], tmp_path / "store", progress=False,
                              loading=fp32)
    assert summary.ok, summary.failed
    assert list(lm.open_matrix(tmp_path / "store").data["dtype"].values) == ["float32", "bfloat16"]


@pytest.mark.parametrize("layer", ["1", 1.5, True])
def test_a_layer_must_be_a_whole_number(model_dirs, texts, layer):
    with pytest.raises(lm.errors.WrongTypeError, match="layer_a must be a whole layer number"):
        lm.exact_kl(str(model_dirs["gpt_neox"]), str(model_dirs["gpt_neox"]), texts[:2], layer_a=layer, layer_b=1)
