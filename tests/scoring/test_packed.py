"""Padding-free packed scoring agrees with the model's own forward, or refuses the model."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loglik_map.errors import LoglikMapError
from loglik_map.scoring._packed import check_packing, pack_windows, packed_logprob_sums
from loglik_map.scoring._windows import Window

from .tiny import tiny_config

torch = pytest.importorskip("torch", reason="needs the 'models' extra (torch)")
transformers = pytest.importorskip("transformers", reason="needs the 'models' extra (transformers)")


def _windows(lengths, vocab=100, seed=0):
    rng = np.random.default_rng(seed)
    return [Window(i, tuple(rng.integers(0, vocab, n).tolist()), 1 + (i % 3 == 0) * min(2, n - 2))
            for i, n in enumerate(lengths)]


@given(st.lists(st.integers(2, 40), min_size=1, max_size=30), st.integers(40, 100))
@settings(max_examples=50, deadline=None)
def test_every_window_is_packed_once_and_no_row_overflows(lengths, max_tokens):
    windows = _windows(lengths)
    rows = pack_windows(windows, max_tokens)
    assert sorted(i for row in rows for i in row) == list(range(len(windows)))
    assert all(sum(len(windows[i].ids) for i in row) <= max_tokens for row in rows)


def test_a_window_longer_than_a_row_is_refused():
    with pytest.raises(LoglikMapError, match="raise max_tokens"):
        pack_windows(_windows([10, 50]), 40)


@pytest.mark.parametrize("arch", ["gpt_neox", "llama", "gpt2", "qwen2"])
def test_packed_rows_give_the_model_forward_numbers(arch):
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(tiny_config(arch, 100)).eval()
    windows = _windows([5, 17, 3, 30, 9, 12])
    assert check_packing(model, windows, 40) <= 1e-4
    # several windows really shared a row (otherwise the check proves nothing about packing)
    assert len(pack_windows(windows, 40)) < len(windows)
    assert model.config._attn_implementation != "loglik_map_varlen"  # restored


def test_packing_without_masking_would_be_caught():
    """The check is sensitive: the same rows without per-window attention disagree."""
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(tiny_config("gpt_neox", 100)).eval()
    windows = _windows([30, 9, 12])
    good = packed_logprob_sums(model, windows, 60)
    ids = torch.tensor([t for w in windows for t in w.ids])[None]
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
    start = len(windows[0].ids)
    w = windows[1]
    leaky = float(logp[start + w.score_from - 1:start + len(w.ids) - 1].gather(
        -1, ids[0, start + w.score_from:start + len(w.ids), None]).sum())
    assert abs(leaky - good[1]) > 1e-3


@pytest.mark.parametrize("config", [
    lambda: transformers.MambaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, state_size=4),
    lambda: transformers.BloomConfig(vocab_size=100, hidden_size=32, n_layer=2, n_head=2),
], ids=["mamba-recurrent-state", "bloom-own-attention"])
def test_models_that_cannot_be_packed_are_refused(config):
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(config()).eval()
    with pytest.raises(LoglikMapError, match="packed|cannot be packed"):
        check_packing(model, _windows([5, 17, 3, 30]), 60)
