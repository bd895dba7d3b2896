"""Session fixtures: tiny models of several architectures, trained tokenizers, saved locally."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest

pytest.importorskip("torch", reason="scoring tests need the 'models' extra (torch, transformers)")
pytest.importorskip("transformers", reason="scoring tests need the 'models' extra (torch, transformers)")

from . import tiny


@pytest.fixture(scope="session")
def tokenizers():
    return {"neox": tiny.train_tokenizer("neox"), "llama": tiny.train_tokenizer("llama")}


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory, tokenizers):
    """Folders loadable with from_pretrained: GPT-NeoX (no BOS), Llama (BOS), GPT-2 (no BOS)."""
    root = tmp_path_factory.mktemp("models")
    out = {}
    for arch, tok in (("gpt_neox", "neox"), ("llama", "llama"), ("gpt2", "neox")):
        model = tiny.build_model(arch, tokenizers[tok])
        out[arch] = tiny.save(model, tokenizers[tok], root / arch)
    # a second GPT-NeoX "checkpoint": same architecture, different seed
    out["gpt_neox_b"] = tiny.save(tiny.build_model("gpt_neox", tokenizers["neox"], seed=5), tokenizers["neox"],
                                  root / "gpt_neox_b")
    return out


@pytest.fixture(scope="session")
def texts():
    import loglik_map as lm

    return lm.TextSet(tiny.sample_texts(24, seed=1))
