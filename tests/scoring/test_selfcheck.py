"""The self-check at load: the model's own forward defines log p; the fast path proves itself or steps aside."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import loglik_map as lm
from loglik_map.scoring import Execution, Windowing
from loglik_map.scoring._head import trace_head

from . import tiny, zoo

pytestmark = pytest.mark.filterwarnings("ignore:model .* long_texts='truncate' cut:loglik_map.LoglikMapWarning")


def _reference(model, tok, texts):
    return np.array([tiny.reference_loglik(model, tok, t, 64) for t in texts])


def _subclass_with_forward(model, change):
    """The same weights in a subclass whose forward changes the logits with ``change``."""
    base_cls = type(model)

    class Changed(base_cls):
        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            out.logits = change(out.logits)
            return out

    Changed.__name__ = f"Changed{base_cls.__name__}"
    new = Changed(model.config).eval()
    new.load_state_dict(model.state_dict())
    return new


def test_a_soft_cap_and_scale_in_the_forward_are_traced_and_applied(tokenizers, texts):
    tok = tokenizers["llama"]
    model = _subclass_with_forward(tiny.build_model("llama", tok), lambda z: 2.0 * torch.tanh(z * 1.5 / 2.0))
    scorer = lm.HFScorer(model, tokenizer=tok, name="capped", windowing=Windowing(max_length=64, long_texts="truncate"))
    got = scorer.score(texts[:4])
    check = scorer.self_check()
    assert check.path.label == "fast" and check.plan.transform.kind == "tanh"
    assert check.plan.transform.scale == pytest.approx(2.0, rel=1e-5)
    assert check.plan.transform.inner == pytest.approx(0.75, rel=1e-4)
    np.testing.assert_allclose(got.values[0], _reference(model, tok, texts[:4]), atol=1e-4)
    assert got.data.coords["scoring_path"].values.tolist() == ["fast"]


def test_a_scale_of_the_hidden_state_before_the_head_is_traced(tokenizers, texts):
    tok = tokenizers["neox"]
    model = zoo.build("minicpm3", tok)  # its forward divides the last hidden state before lm_head
    scorer = lm.HFScorer(model, tokenizer=tok, name="minicpm3", windowing=Windowing(max_length=64, long_texts="truncate"))
    got = scorer.score(texts[:3])
    plan = scorer.self_check().plan
    assert plan.hidden_scale == pytest.approx(model.config.dim_model_base / model.config.hidden_size, rel=1e-5)
    assert scorer.self_check().path.label == "fast"
    np.testing.assert_allclose(got.values[0], _reference(model, tok, texts[:3]), atol=1e-4)


def test_an_untraceable_head_falls_back_to_the_models_own_logits_or_is_refused(tokenizers, texts):
    tok = tokenizers["llama"]
    bias = torch.linspace(-3, 3, len(tok))  # not elementwise the same for every logit: not a scale or soft cap
    model = _subclass_with_forward(tiny.build_model("llama", tok), lambda z: z + bias)
    scorer = lm.HFScorer(model, tokenizer=tok, name="odd", windowing=Windowing(max_length=64, long_texts="truncate"))
    with pytest.warns(lm.LoglikMapWarning, match=r"'odd' \(ChangedLlamaForCausalLM\).*'model_forward' path"):
        got = scorer.score(texts[:5])
    assert got.data.coords["scoring_path"].values.tolist() == ["model_forward"]
    np.testing.assert_allclose(got.values[0], _reference(model, tok, texts[:5]), atol=1e-4)
    short = Windowing(max_length=64, long_texts="truncate")
    strict = lm.HFScorer(model, tokenizer=tok, name="odd", windowing=short, execution=Execution(fallback="error"))
    with pytest.raises(lm.LoglikMapError, match="fallback='error' refuses"):
        strict.score(texts[:2])
    with pytest.raises(lm.LoglikMapError, match=r"ChangedLlamaForCausalLM.*logit lens is not defined.*not a scale or soft cap"):
        lm.LogitLensScorer(model, tokenizer=tok, name="odd", windowing=short).score(texts[:2])


def test_a_model_that_is_not_causal_under_padding_gets_a_mask(tokenizers, texts):
    tok = tokenizers["neox"]
    model = zoo.build("bert", tok)  # BERT as a decoder without is_decoder: it attends to the padding
    assert not model.config.is_decoder
    scorer = lm.HFScorer(model, tokenizer=tok, name="bert", windowing=Windowing(max_length=64, long_texts="truncate"))
    with pytest.warns(lm.LoglikMapWarning, match="depend on the padding|differs"):
        got = scorer.score(texts[:6])
    assert scorer.self_check().path.label == "fast_masked"
    np.testing.assert_allclose(got.values[0], _reference(model, tok, texts[:6]), atol=1e-4)
    # the padding-sensitivity test itself: other filler tokens change the unmasked scores
    lens = lm.LogitLensScorer(model, tokenizer=tok, name="bert", windowing=Windowing(max_length=64, long_texts="truncate"))
    with pytest.warns(lm.LoglikMapWarning):
        layers = lens.score(texts[:6])
    np.testing.assert_allclose(layers.values[-1], got.values[0], atol=1e-6)
    assert set(layers.data.coords["final_norm"].values) == {"none"}  # post-LN: no final norm


def test_the_trace_finds_the_final_norm_and_the_layer_count_without_a_list(tokenizers):
    tok = tokenizers["llama"]
    for arch, norm in (("llama", "model.norm"), ("gpt2", "transformer.ln_f"), ("opt", "model.decoder.final_layer_norm"),
                       ("gpt_neox", "gpt_neox.final_layer_norm"), ("phi", "model.final_layernorm")):
        model = tiny.build_model(arch, tok)
        plan = trace_head(model, torch.tensor([tok.encode("the trace of a short text")]))
        assert plan.problem is None and plan.lens_problem is None, arch
        assert plan.final_norm_name == norm, arch
        assert plan.n_states == model.config.num_hidden_layers + 1
        assert plan.linear_head and plan.transform.kind == "identity"


def test_fallback_option_is_checked():
    with pytest.raises(lm.LoglikMapError, match="unknown fallback 'quiet'"):
        lm.HFScorer("x", execution=Execution(fallback="quiet"))
