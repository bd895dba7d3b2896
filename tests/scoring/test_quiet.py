"""Scoring is quiet: bitsandbytes' known notices are filtered (nothing else is); one progress-bar default."""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import warnings

import pytest

import loglik_map as lm
from loglik_map.scoring import Execution, Loading
from loglik_map.scoring import _hf as hf
from loglik_map.scoring._quiet import KNOWN_NOISE, quiet_third_party

CAST = "MatMul8bitLt: inputs will be cast from torch.float32 to float16 during quantization"
GEMM = ("Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'. Please make sure "
        "you already `pip install kernels` and the kernels >= 0.11.1")


def needs_bitsandbytes() -> None:
    """Skip without bitsandbytes, without importing it (its import logs the gemm notice: the scorer must hide it)."""
    if importlib.util.find_spec("bitsandbytes") is None:
        pytest.skip("quantization tests need the 'quant' extra (bitsandbytes)")


def test_known_notices_are_dropped_by_logger_and_level_and_everything_else_kept(caplog):
    cast_logger = logging.getLogger("bitsandbytes.autograd._functions")
    gemm_logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    other = logging.getLogger("another_library")
    with caplog.at_level(logging.WARNING), warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_third_party():
            for _ in range(16):
                cast_logger.warning("MatMul8bitLt: inputs will be cast from %s to float16 during quantization",
                                    "torch.float32")
            gemm_logger.warning(GEMM)
            gemm_logger.warning("Could not fetch gemm_4bit_forward: pass trust_remote_code=True")  # another wording
            cast_logger.error("MatMul8bitLt: CUDA error: an illegal memory access")
            other.warning("another library's warning")
            # older bitsandbytes warn instead of logging: filtered by the module that warns and the category
            warnings.warn_explicit(CAST, UserWarning, "_functions.py", 1, module="bitsandbytes.autograd._functions")
            warnings.warn("a real warning", UserWarning, stacklevel=1)
        cast_logger.warning(CAST)  # outside the block: shown again
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["MatMul8bitLt: CUDA error: an illegal memory access", "another library's warning", CAST]
    assert [str(w.message) for w in seen] == ["a real warning"]
    assert all(logging.getLogger(name).level == logging.NOTSET for name, _ in KNOWN_NOISE)  # restored


def test_importing_bitsandbytes_inside_the_filter_prints_none_of_its_notices():
    """A fresh process: bitsandbytes' CPU backend (and the kernels package it asks) log at import."""
    needs_bitsandbytes()
    import subprocess
    import sys

    code = ("import logging; from loglik_map.scoring._quiet import quiet_third_party\n"
            "with quiet_third_party():\n    import bitsandbytes\n"
            "logging.getLogger('bitsandbytes.backends.cpu.ops').warning('shown after the block')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "gemm_4bit" not in out.stderr and "publisher trust" not in out.stderr, out.stderr
    assert "shown after the block" in out.stderr


def test_an_8bit_model_scores_without_the_cast_notice(model_dirs, texts, caplog):
    needs_bitsandbytes()
    with caplog.at_level(logging.WARNING):
        lm.HFScorer(str(model_dirs["gpt_neox"]), loading=Loading(quantization="8bit"),
                    execution=Execution(progress=False)).score(texts[:4])
    assert not [r for r in caplog.records if "MatMul8bitLt" in r.getMessage() or "gemm_4bit" in r.getMessage()]


def test_without_the_filter_the_notice_would_show(model_dirs, texts, caplog, monkeypatch):
    needs_bitsandbytes()
    monkeypatch.setattr(hf, "quiet_third_party", contextlib.nullcontext)
    with caplog.at_level(logging.WARNING):
        lm.HFScorer(str(model_dirs["gpt_neox"]), loading=Loading(quantization="8bit"),
                    execution=Execution(progress=False)).score(texts[:4])
    assert any("MatMul8bitLt" in r.getMessage() for r in caplog.records)


def test_one_progress_default_across_the_api(model_dirs, texts, capsys, tmp_path):
    import inspect

    for fn in (lm.score_models, lm.demo.build_zoo, lm.demo.run_demo):
        assert inspect.signature(fn).parameters["progress"].default is None, fn
    assert lm.scoring.Execution().progress is None
    folder = str(model_dirs["gpt_neox"])
    lm.HFScorer(folder, name="shown").score(texts[:3])
    assert "shown" in capsys.readouterr().err  # the tqdm bar, by default
    with lm.set_options(progress=False):
        lm.HFScorer(folder, name="hidden").score(texts[:3])
        lm.score_models([lm.ModelSpec(folder, name="quiet")], texts[:3], tmp_path / "s")
    assert capsys.readouterr().err == ""
    with pytest.raises(lm.LoglikMapError, match="use True or False"):
        lm.set_options(progress="yes")
