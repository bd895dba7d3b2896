"""The unembedding: float32 logits from 16-bit weights, the fused kernel's guard, batch budgets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import loglik_map as lm
from loglik_map.scoring import Execution
from loglik_map.scoring import _batching as batching
from loglik_map.scoring import _unembed as unembed
from loglik_map.scoring._windows import encode_text, encode_texts

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")


@pytest.fixture(autouse=True)
def _no_grad():
    with torch.no_grad():  # as the scorers run
        yield


def _exact_logprobs(hidden, weight, bias, targets):
    logits = hidden.double() @ weight.double().T + (bias.double() if bias is not None else 0)
    return (logits.gather(1, targets[:, None]).squeeze(1) - torch.logsumexp(logits, dim=1)).float()


def test_half_precision_heads_give_float32_logits_not_16_bit_ones():
    """bf16 weights: the products are exact in float32; rounding the logits to bf16 (8 bits of
    mantissa) would move a logit of 10 by up to 0.03 nats, and a text's sum by far more."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 500, bias=True).to(torch.bfloat16)
    hidden = (3 * torch.randn(40, 64)).to(torch.bfloat16)
    got = unembed.Head(linear).logits(hidden)
    exact = hidden.double() @ linear.weight.double().T + linear.bias.double()
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.double().numpy(), exact.numpy(), rtol=0, atol=1e-4)
    rounded = linear(hidden).float().double()  # what a bf16 matrix product returns
    assert (rounded - exact).abs().max() > 100 * (got.double() - exact).abs().max()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_chunked_log_probabilities_are_exact_in_any_chunking(dtype):
    torch.manual_seed(1)
    linear = torch.nn.Linear(32, 300, bias=False).to(dtype)
    hidden, targets = torch.randn(257, 32).to(dtype), torch.randint(0, 300, (257,))
    exact = _exact_logprobs(hidden, linear.weight, None, targets)
    for rows in (1, 7, 128, 1000):
        got = unembed.target_logprobs(None, unembed.Head(linear), hidden, targets, rows_per_chunk=rows)
        np.testing.assert_allclose(got.numpy(), exact.numpy(), rtol=0, atol=2e-4)


def test_a_wrong_fast_path_is_caught_by_its_guard(monkeypatch):
    """Why the fused kernel is checked before it is trusted: a kernel that miscompiles on some
    device (simulated here by an off-by-one in the vocabulary) would otherwise change every
    log-likelihood silently. The guard compares it once with the chunked computation, warns, and
    the results stay right."""
    torch.manual_seed(2)
    linear = torch.nn.Linear(16, 50, bias=False)
    head = unembed.Head(linear)
    hidden, targets = torch.randn(30, 16), torch.randint(1, 50, (30,))
    exact = _exact_logprobs(hidden, linear.weight, None, targets)

    def broken(head, hidden, targets):  # scores the neighbouring token
        return unembed._chunked(None, head, hidden, targets - 1, 128)

    monkeypatch.setattr(unembed, "_fused_applies", lambda config, head, hidden: True)
    monkeypatch.setattr(unembed, "_fused", broken)
    monkeypatch.setattr(unembed, "_fused_verdict", {})
    with pytest.warns(RuntimeWarning, match="fused unembedding kernel differs"):
        got = unembed.target_logprobs(None, head, hidden, targets, rows_per_chunk=128)
    np.testing.assert_allclose(got.numpy(), exact.numpy(), atol=1e-5)
    assert unembed._fused_verdict == {head.key(): False}
    again = unembed.target_logprobs(None, head, hidden, targets, rows_per_chunk=128)  # no second check
    np.testing.assert_allclose(again.numpy(), exact.numpy(), atol=1e-5)
    # an unguarded call of the broken kernel would have been wrong
    assert (broken(head, hidden, targets) - exact).abs().max() > 0.1


def test_a_kernel_that_fails_to_compile_falls_back_with_a_warning(monkeypatch):
    linear = torch.nn.Linear(8, 20, bias=False)
    hidden, targets = torch.randn(5, 8), torch.randint(0, 20, (5,))

    def fails(*args):
        raise RuntimeError("PTX assembly failed")

    monkeypatch.setattr(unembed, "_fused_applies", lambda config, head, hidden: True)
    monkeypatch.setattr(unembed, "_fused", fails)
    monkeypatch.setattr(unembed, "_fused_verdict", {})
    with pytest.warns(RuntimeWarning, match="failed .*PTX assembly failed.*chunked"):
        got = unembed.target_logprobs(None, unembed.Head(linear), hidden, targets, rows_per_chunk=128)
    np.testing.assert_allclose(got.numpy(), _exact_logprobs(hidden, linear.weight, None, targets).numpy(), atol=1e-5)


def test_fused_is_refused_where_it_cannot_run():
    linear = torch.nn.Linear(8, 20, bias=False)
    with pytest.raises(lm.LoglikMapError, match="unembed='fused' needs a CUDA device"):
        unembed.target_logprobs(None, unembed.Head(linear), torch.randn(2, 8), torch.zeros(2, dtype=torch.long),
                                rows_per_chunk=128, method="fused")
    with pytest.raises(lm.LoglikMapError, match="unknown unembed 'fast'"):
        lm.HFScorer("x", execution=Execution(unembed="fast"))


@pytest.mark.parametrize("bad", [0, -5, 2.5, "big", True])
def test_batch_tokens_must_be_a_positive_integer_or_auto(bad):
    with pytest.raises(lm.LoglikMapError, match="batch_tokens must be a positive integer or 'auto'"):
        lm.HFScorer("x", execution=Execution(batch_tokens=bad))


def test_automatic_batch_budget_follows_free_memory_and_the_kept_states():
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    cfg = GPTNeoXConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=128)
    model = GPTNeoXForCausalLM(cfg)
    assert batching.auto_batch_tokens(model) == batching.CPU_BATCH_TOKENS  # on a CPU
    per_token = 4 * (10 * 32 + 3 * 128 + 32) + 64
    free = 2 * 2**30 + 2 * 40_000 * per_token
    assert batching.auto_batch_tokens(model, free_bytes=free) == 40_000
    lens = batching.auto_batch_tokens(model, n_states=3, free_bytes=free)
    assert lens == int(40_000 * per_token / (per_token + 2 * 4 * 32))
    assert batching.auto_batch_tokens(model, free_bytes=10**15) == batching.MAX_BATCH_TOKENS
    assert batching.auto_batch_tokens(model, free_bytes=0) == 2048


def test_batched_tokenization_equals_one_call_per_text(tokenizers):
    texts = ["Hello there.", "A second, longer text with more words in it than the first one.", "x y"]
    for name in ("neox", "llama"):
        for convention in ("reference", "bos"):
            kw = dict(convention=convention, max_length=6, long_texts="rolling", stride=3)
            one_by_one = [encode_text(tokenizers[name], t, i, **kw) for i, t in enumerate(texts)]
            assert encode_texts(tokenizers[name], texts, **kw) == one_by_one


@needs_cuda
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("shape", [(300, 768, 50304, False), (129, 1024, 1000, True), (5, 2048, 4099, False)])
def test_fused_kernel_matches_float64_on_a_gpu(dtype, shape):
    pytest.importorskip("triton", reason="the fused unembedding needs triton (installed with CUDA builds of torch)")
    from loglik_map.scoring._triton_unembed import fused_target_logprobs

    n, d, vocab, bias = shape
    torch.manual_seed(3)
    hidden = torch.randn(n, d, device="cuda").to(dtype)
    weight = (torch.randn(vocab, d, device="cuda") * 3 / d**0.5).to(dtype)
    b = torch.randn(vocab, device="cuda").to(dtype) if bias else None
    targets = torch.randint(0, vocab, (n,), device="cuda")
    got = fused_target_logprobs(hidden, weight, b, targets)
    exact = _exact_logprobs(hidden, weight, b, targets)
    assert got.shape == (n,) and torch.isfinite(got).all()
    torch.testing.assert_close(got, exact, rtol=0, atol=2e-3)
