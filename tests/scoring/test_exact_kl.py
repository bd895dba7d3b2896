"""Exact token-level KL between models sharing a vocabulary (issue 15): against brute force, by hand
on a two-token vocabulary, for quantized copies and logit-lens layers, and refusals."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

import loglik_map as lm
from loglik_map.scoring import Execution, Loading, Windowing
from loglik_map.scoring._architectures import find_final_norm
from loglik_map.scoring._kl_summary import QUANTILES, select_texts
from loglik_map.scoring._vocabulary import tokenizer_difference

from . import tiny


def _full_logprobs(model, ids, layer=None):
    """float64 log-softmax of full-vocabulary logits, one window at once (layer: the logit lens)."""
    with torch.no_grad():
        if layer is None:
            logits = model(ids, use_cache=False).logits[0]
        else:
            out = model(ids, use_cache=False, output_hidden_states=True)
            h = out.hidden_states[layer][0]
            logits = model.get_output_embeddings()(find_final_norm(model)(h))
    return torch.log_softmax(logits.double(), dim=-1)


def _brute_force(model_a, model_b, tokenizer, texts, *, layers=(None, None), max_length=64):
    """Per-text KL(a‖b), KL(b‖a) and log-likelihoods, float64 from the logits, one window at a time.

    The windows are the scorer's (rolling by default: a text longer than ``max_length`` tokens is
    several overlapping windows, each scoring its new tokens), cut here by ``encode_texts``; every
    window runs on its own, unpadded, and every scored position's full distribution is compared.
    """
    from loglik_map.scoring._windows import encode_texts

    encoded = encode_texts(tokenizer, list(texts.texts if hasattr(texts, "texts") else texts),
                           convention="reference", max_length=max_length, long_texts="rolling")
    out = np.zeros((4, len(encoded)))
    for k, enc in enumerate(encoded):
        for w in enc.windows:
            ids = torch.tensor([w.ids])
            s = slice(w.score_from - 1, len(w.ids) - 1)
            la = _full_logprobs(model_a, ids, layers[0])[s]
            lb = _full_logprobs(model_b, ids, layers[1])[s]
            target = ids[0, w.score_from:]
            rows = torch.arange(target.numel())
            out[:, k] += [float((la.exp() * (la - lb)).sum()), float((lb.exp() * (lb - la)).sum()),
                          float(la[rows, target].sum()), float(lb[rows, target].sum())]
    assert any(len(e.windows) > 1 for e in encoded)  # long texts really are in rolling windows
    return out


@pytest.fixture(scope="module")
def neox_pair(model_dirs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    a = AutoModelForCausalLM.from_pretrained(model_dirs["gpt_neox"]).eval()
    b = AutoModelForCausalLM.from_pretrained(model_dirs["gpt_neox_b"]).eval()
    return a, b, AutoTokenizer.from_pretrained(model_dirs["gpt_neox"])


def test_exact_kl_equals_brute_force_in_both_directions(model_dirs, neox_pair, texts):
    texts = texts[:12]
    ds = lm.exact_kl(str(model_dirs["gpt_neox"]), str(model_dirs["gpt_neox_b"]), texts, execution=Execution(batch_tokens=300))
    kl_ab, kl_ba, lp_a, lp_b = _brute_force(*neox_pair, texts)
    np.testing.assert_allclose(ds.kl_ab.values, kl_ab, rtol=1e-6)
    np.testing.assert_allclose(ds.kl_ba.values, kl_ba, rtol=1e-6)
    assert not np.allclose(kl_ab, kl_ba, rtol=1e-2)  # the directions really differ
    np.testing.assert_allclose(ds.logp_a.values, lp_a, atol=1e-4)
    np.testing.assert_allclose(ds.logp_b.values, lp_b, atol=1e-4)
    # units and bookkeeping
    assert list(ds.text.values) == list(texts.ids) and ds.kl_ab.dtype == np.float64
    np.testing.assert_allclose(ds.kl_ab_bpb.values, ds.kl_ab.values / (texts.n_bytes * math.log(2)))
    np.testing.assert_allclose(ds.kl_sym.values, (ds.kl_ab.values + ds.kl_ba.values) / 2)
    assert int(ds.n_tokens.sum()) == ds.sizes["token"]
    np.testing.assert_allclose(float(ds.kl_ab_bits_per_byte),
                               ds.kl_ab.values.mean() / (texts.n_bytes.mean() * math.log(2)))
    # the same numbers whatever the batching
    one = lm.exact_kl(str(model_dirs["gpt_neox"]), str(model_dirs["gpt_neox_b"]), texts[:4], execution=Execution(batch_tokens=1))
    np.testing.assert_allclose(one.kl_ab.values, ds.kl_ab.values[:4], rtol=1e-6)


def test_summary_statistics_follow_llama_cpp(model_dirs, texts):
    ds = lm.exact_kl(str(model_dirs["gpt_neox"]), str(model_dirs["gpt_neox_b"]), texts)
    x = ds.token_kl_ab.values.astype(np.float64)
    n = x.size
    assert float(ds.token_kl_ab_mean) == pytest.approx(x.mean())
    # llama.cpp's mean_and_uncertainty: sqrt((Σx²/n − mean²) / (n − 1))
    assert float(ds.token_kl_ab_mean_se) == pytest.approx(math.sqrt(((x**2).mean() - x.mean() ** 2) / (n - 1)))
    srt = np.sort(x)
    for q in (0.999, 0.99, 0.9, 0.1, 0.01):  # its percentile: linear interpolation at q (n − 1)
        pos = q * (n - 1)
        lo = int(pos)
        expected = (1 - (pos - lo)) * srt[lo] + (pos - lo) * srt[min(lo + 1, n - 1)]
        assert float(ds.token_kl_ab_quantiles.sel(quantile=q)) == pytest.approx(expected, rel=1e-6)
    assert float(ds.token_kl_ab_quantiles.sel(quantile=1.0)) == srt[-1]
    assert float(ds.token_kl_ab_quantiles.sel(quantile=0.5)) == pytest.approx(np.median(x))
    assert list(ds["quantile"].values) == list(QUANTILES)
    report = lm.scoring.exact_kl_report(ds)
    for line in ("Mean    KLD:", "99.9%   KLD:", "Median  KLD:", " 0.1%   KLD:", "RMS Δp    :", "Same top p:"):
        assert line in report
    # a selection of texts carries its tokens and recomputed statistics
    code = select_texts(ds, np.arange(ds.sizes["text"]) % 2 == 0)
    assert code.sizes["text"] == 12 and int(code.n_tokens.sum()) == code.sizes["token"]
    assert float(code.token_kl_ab_mean) == pytest.approx(
        x[np.isin(ds.token_text.values, np.arange(0, 24, 2))].mean())


# ---------------------------------------------------------------------- a two-token vocabulary, by hand
def _two_token_model(folder, tokenizer, s: float, t: float):
    """A GPT-NeoX whose blocks add nothing: the final norm maps the current token a/b to (±1, ∓1) + β,
    β = (½, ½), and the head gives logit(0) − logit(1) = ±s + t: p(next = a | current a) = σ(s + t),
    p(next = a | current b) = σ(−s + t)."""
    import transformers as tf

    config = tf.GPTNeoXConfig(vocab_size=2, hidden_size=2, num_hidden_layers=1, num_attention_heads=1,
                              intermediate_size=4, max_position_embeddings=32, layer_norm_eps=1e-12,
                              bos_token_id=None, eos_token_id=None, pad_token_id=None)
    model = tf.AutoModelForCausalLM.from_config(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "attention.dense" in name or "dense_4h_to_h" in name:
                p.zero_()
        model.gpt_neox.embed_in.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        model.gpt_neox.final_layer_norm.weight.fill_(1.0)
        model.gpt_neox.final_layer_norm.bias.fill_(0.5)
        model.get_output_embeddings().weight.copy_(torch.tensor([[s / 2 + t, -s / 2 + t], [0.0, 0.0]]))
    return tiny.save(model, tokenizer, folder)


def _bernoulli_kl(p: float, q: float) -> float:
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def test_two_token_vocabulary_by_hand(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.WordLevel({"a": 0, "b": 1}, unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    a = _two_token_model(tmp_path / "a", tok, s=math.log(4.0), t=0.0)  # current a: p(a) = 0.8; b: 0.2
    b = _two_token_model(tmp_path / "b", tok, s=0.2, t=0.6)  # current a: σ(0.8); b: σ(0.4) — top is always a
    pa = {"a": 0.8, "b": 0.2}
    pb = {"a": sig(0.8), "b": sig(0.4)}
    texts = ["a b b a a", "b b b a", "a a a a a b"]
    ds = lm.exact_kl(str(a), str(b), texts)
    kl_ab, kl_ba, dp, same = [], [], [], []
    for text in texts:
        toks = text.split()
        for cur, nxt in itertools.pairwise(toks):  # the first token is conditioning only (no BOS)
            kl_ab.append(_bernoulli_kl(pa[cur], pb[cur]))
            kl_ba.append(_bernoulli_kl(pb[cur], pa[cur]))
            p_true_a = pa[cur] if nxt == "a" else 1 - pa[cur]
            p_true_b = pb[cur] if nxt == "a" else 1 - pb[cur]
            dp.append(p_true_b - p_true_a)
            same.append(cur == "a")  # a's top: the current token; b's top: always a
    np.testing.assert_allclose(ds.token_kl_ab.values, kl_ab, rtol=1e-5)
    np.testing.assert_allclose(ds.token_kl_ba.values, kl_ba, rtol=1e-5)
    np.testing.assert_allclose(ds.token_dp.values, dp, atol=1e-6)
    assert ds.token_same_top.values.tolist() == same
    assert ds.token_target.values.tolist() == [1, 2, 3, 4, 1, 2, 3, 1, 2, 3, 4, 5]
    p = np.mean(same)
    assert float(ds.same_top) == pytest.approx(p)
    assert float(ds.same_top_se) == pytest.approx(math.sqrt(p * (1 - p) / (len(same) - 1)))
    assert float(ds.token_dp_rms) == pytest.approx(math.sqrt(np.mean(np.square(dp))), rel=1e-5)
    assert float(ds.token_dp_mean) == pytest.approx(np.mean(dp), abs=1e-6)
    np.testing.assert_allclose(ds.kl_ba.values, [sum(kl_ba[:4]), sum(kl_ba[4:7]), sum(kl_ba[7:])], rtol=1e-5)


# ---------------------------------------------------------------------- quantized copies, logit lens, windows
@pytest.mark.parametrize("quantization", ["8bit", "4bit"])
def test_quantized_copy_against_its_original(quantization, model_dirs, texts):
    pytest.importorskip("bitsandbytes", reason="quantization tests need the 'quant' extra (bitsandbytes)")
    texts = texts[:12]
    folder = str(model_dirs["gpt_neox"])
    ds = lm.exact_kl(folder, lm.ModelSpec(folder, loading=Loading(quantization=quantization)), texts)
    assert ds.attrs["model_b"].endswith("8bit]" if quantization == "8bit" else "4bit-nf4]")
    other = lm.exact_kl(folder, str(model_dirs["gpt_neox_b"]), texts)
    assert 0 < float(ds.kl_sym_bits_per_byte) < float(other.kl_sym_bits_per_byte) / 10
    assert float(ds.same_top) > float(other.same_top)
    np.testing.assert_allclose(ds.logp_b.values,
                               lm.HFScorer(folder, loading=Loading(quantization=quantization)).score(texts).values[0], atol=1e-4)


def test_two_logit_lens_layers_of_one_model_in_one_forward_pass(model_dirs, texts):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    texts = texts[:12]
    folder = str(model_dirs["llama"])
    scorer = lm.HFScorer(folder, execution=Execution(batch_tokens=400))
    model = scorer._load().model
    calls = []
    # counts the scoring passes; the head check's one probe of 8 tokens (traced once per model) is not one
    handle = model.base_model.register_forward_pre_hook(
        lambda module, args, kwargs: calls.append(1) if kwargs.get("input_ids", args[0] if args else None).shape != (1, 8)
        else None, with_kwargs=True)
    try:
        ds = lm.exact_kl(scorer, scorer, texts, layer_a=1, layer_b=-1)
    finally:
        handle.remove()
    from loglik_map.scoring._windows import plan_batches

    windows = [w for e in scorer.encode(texts) for w in e.windows]
    assert len(calls) == len(plan_batches(windows, 400))  # one forward pass per batch for both layers
    ref_model = AutoModelForCausalLM.from_pretrained(folder).eval()
    kl_ab, kl_ba, _, _ = _brute_force(ref_model, ref_model, AutoTokenizer.from_pretrained(folder), texts,
                                            layers=(1, None))
    np.testing.assert_allclose(ds.kl_ab.values, kl_ab, rtol=1e-6)
    np.testing.assert_allclose(ds.kl_ba.values, kl_ba, rtol=1e-6)
    lens = lm.LogitLensScorer(folder).score(texts)
    np.testing.assert_allclose(ds.logp_a.values, lens.values[1], atol=1e-4)
    assert ds.attrs["model_a"].endswith("@layer1") and ds.attrs["layer_b"] == -1
    # a logit-lens ModelSpec names its layers; the last layer is the model itself
    spec = lm.ModelSpec(folder, logit_lens=True)
    zero = lm.exact_kl(spec, folder, texts[:4], layer_a=2)
    assert np.all(zero.kl_ab.values == 0) and np.all(zero.token_same_top.values)
    with pytest.raises(lm.LoglikMapError, match="layer_a="):
        lm.exact_kl(spec, folder, texts[:4])
    with pytest.raises(lm.LoglikMapError, match="out of range"):
        lm.exact_kl(folder, folder, texts[:4], layer_a=0, layer_b=7)
    with pytest.raises(lm.LoglikMapError, match="same model at the same layer"):
        lm.exact_kl(folder, folder, texts[:4])


def test_long_texts_use_the_scorers_windows(model_dirs, tokenizers):
    texts = lm.TextSet([" ".join(tiny.corpus())[:900], " ".join(tiny.corpus())[2000:2300]])
    a, b = str(model_dirs["gpt_neox"]), str(model_dirs["gpt_neox_b"])
    ds = lm.exact_kl(a, b, texts, windowing=Windowing(max_length=32, long_texts="rolling"))
    rolled = lm.HFScorer(a, windowing=Windowing(max_length=32, long_texts="rolling")).score(texts)
    np.testing.assert_allclose(ds.logp_a.values, rolled.values[0], atol=1e-4)
    assert ds.n_tokens.values.tolist() == rolled.data["n_tokens"].values[0].tolist()
    # every target once, in order, across windows
    first = ds.token_target.values[ds.token_text.values == 0]
    assert first.tolist() == list(range(1, first.size + 1)) and first.size > 32
    assert ds.n_tokens_dropped.values.tolist() == [0, 0]
    with pytest.warns(lm.LoglikMapWarning, match=r"cut 2 of 2 texts to their first 32 tokens"):
        trunc = lm.exact_kl(a, b, texts, windowing=Windowing(max_length=32, long_texts="truncate"))
    assert trunc.attrs["n_texts_truncated"] == 2 and trunc.n_tokens.values.tolist() == [31, 31]
    truncating = lm.HFScorer(a, windowing=Windowing(max_length=32, long_texts="truncate"))
    assert trunc.n_tokens_dropped.values.tolist() == [e.n_dropped for e in truncating.encode(texts)]
    assert trunc.n_tokens_dropped.values.min() > 0
    with pytest.raises(lm.LoglikMapError, match="max_length=100 exceeds the 64 positions"):
        lm.exact_kl(a, b, texts, windowing=Windowing(max_length=100))
    with pytest.raises(lm.LoglikMapError, match="convention"):
        lm.exact_kl(lm.HFScorer(a), lm.HFScorer(b, windowing=Windowing(convention="bos")), texts)


def test_pairs_with_different_tokenizers_are_refused_naming_the_difference(model_dirs, tokenizers):
    neox_scorer, llama_scorer = lm.HFScorer(str(model_dirs["gpt_neox"])), lm.HFScorer(str(model_dirs["llama"]))
    with pytest.raises(lm.LoglikMapError, match="do not share a tokenizer .special tokens differ"):
        lm.exact_kl(neox_scorer, llama_scorer, ["some text here"])
    assert neox_scorer._loaded is None and llama_scorer._loaded is None  # refused before any weights load
    neox = tokenizers["neox"]
    assert tokenizer_difference(neox, tiny.train_tokenizer("neox", vocab_size=300)) == \
        "vocabulary sizes differ: 384 vs 300 tokens"
    import json

    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    spec = json.loads(neox.backend_tokenizer.to_str())
    merges = spec["model"]["merges"]
    merges[3], merges[4] = merges[4], merges[3]
    swapped = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
                                      bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    assert tokenizer_difference(neox, swapped).startswith("BPE merges differ: merge 3 is")
    vocab = spec["model"]["vocab"]
    first, second = sorted(vocab, key=vocab.get)[300:302]
    vocab[first], vocab[second] = vocab[second], vocab[first]
    renumbered = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)),
                                         bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    assert tokenizer_difference(neox, renumbered) == \
        f"vocabularies differ: token {first!r} is id 300 vs id 301"
    assert tokenizer_difference(neox, tiny.train_tokenizer("neox")) is None
    # gpt2 and gpt_neox folders share the tokenizer: accepted across architectures
    ds = lm.exact_kl(str(model_dirs["gpt_neox"]), str(model_dirs["gpt2"]), ["a text to compare on"])
    assert float(ds.kl_ab.values[0]) > 0


def test_tiny_kls_keep_their_digits(model_dirs, neox_pair, texts, tmp_path):
    """A copy with weights perturbed by 1e-4 (KL ~1e-6 nats per token, below the float32 rounding of
    log p at the logits' scale): the textbook Σ p_a (log p_a − log p_b) in float32 is off by ~15 %
    per text here; the form exact_kl uses agrees with float64 to 1e-3."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dirs["gpt_neox"]).eval()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + 1e-4 * torch.randn(p.shape, generator=g))
    folder = tiny.save(model, neox_pair[2], tmp_path / "perturbed")
    ds = lm.exact_kl(str(model_dirs["gpt_neox"]), str(folder), texts)
    kl_ab, kl_ba, _, _ = _brute_force(neox_pair[0], model, neox_pair[2], texts)
    assert 1e-8 < float(ds.token_kl_ab_mean) < 1e-5
    np.testing.assert_allclose(ds.kl_ab.values, kl_ab, rtol=1e-3)
    np.testing.assert_allclose(ds.kl_ba.values, kl_ba, rtol=1e-3)
    assert np.all(ds.token_kl_ab.values > 0)


def test_huge_kls_where_the_exponentials_overflow():
    """Logit differences of hundreds of nats overflow exp in float32; those rows use the textbook form."""
    from loglik_map.scoring._exact_kl_run import pair_chunk

    g = torch.Generator().manual_seed(0)
    za = torch.randn(64, 300, generator=g) * torch.tensor([1.0, 60.0]).repeat_interleave(32)[:, None]
    zb = torch.randn(64, 300, generator=g) * 60
    la, lb = torch.log_softmax(za.double(), -1), torch.log_softmax(zb.double(), -1)
    targets = torch.randint(0, 300, (64,), generator=g)
    kl_ab, kl_ba, _ta, tb, same = pair_chunk(za.clone(), zb.clone(), targets)
    np.testing.assert_allclose(kl_ab, (la.exp() * (la - lb)).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(kl_ba, (lb.exp() * (lb - la)).sum(-1), rtol=1e-5)
    np.testing.assert_allclose(tb, lb[torch.arange(64), targets], rtol=1e-5)
    assert same.tolist() == (za.argmax(-1) == zb.argmax(-1)).tolist()


@pytest.mark.parametrize("offset", [5.0, 30.0, -30.0])
def test_logits_shifted_by_a_constant_have_zero_kl(offset):
    """Heads that differ by a bias common to the vocabulary give the same distribution: KL 0, not
    the float32 rounding of E_p[Δ] at the offset's scale (1.7e-5 and 8e-5 nats at 5 and 30 before)."""
    from loglik_map.scoring._exact_kl_run import pair_chunk

    g = torch.Generator().manual_seed(0)
    za = torch.randn(64, 8192, generator=g) * 3
    targets = torch.randint(0, 8192, (64,), generator=g)
    kl_ab, kl_ba, *_ = pair_chunk(za.clone(), za - offset, targets)
    assert float(kl_ab.abs().max()) < 1e-9 and float(kl_ba.abs().max()) < 1e-9
    assert float(kl_ab.min()) >= 0 and float(kl_ba.min()) >= 0
    # a KL of ~5e-7 nats on top of the offset: within 1e-8 nats of float64 (the float32 rounding
    # of Δ at 30 nats, ~2e-6 per logit, is all that is left; the textbook float32 sum errs ~5e-7)
    zb = za - offset + 1e-3 * torch.randn(64, 8192, generator=g)
    la, lb = torch.log_softmax(za.double(), -1), torch.log_softmax(zb.double(), -1)
    kl_ab, kl_ba, *_ = pair_chunk(za.clone(), zb.clone(), targets)
    np.testing.assert_allclose(kl_ab, (la.exp() * (la - lb)).sum(-1), rtol=1e-3, atol=1e-8)
    np.testing.assert_allclose(kl_ba, (lb.exp() * (lb - la)).sum(-1), rtol=1e-3, atol=1e-8)


# ---------------------------------------------------------------------- the estimator beside the exact value
@pytest.mark.filterwarnings("ignore::loglik_map.UnreliableEstimateWarning")
@pytest.mark.filterwarnings("error::loglik_map.LoglikMapWarning")
def test_estimator_beside_the_exact_kl_for_the_pairs_of_a_map(model_dirs, texts):
    texts = texts[:12]
    a, b, llama = str(model_dirs["gpt_neox"]), str(model_dirs["gpt_neox_b"]), str(model_dirs["llama"])
    matrix = lm.LogLikelihoodMatrix.concat([
        lm.HFScorer(a, name="a").score(texts), lm.HFScorer(b, name="b").score(texts),
        lm.HFScorer(llama, name="llama").score(texts), lm.LogitLensScorer(a, name="a").score(texts)])
    mm = lm.ModelMap(matrix)
    shuffled = texts[list(range(len(texts)))[::-1]]  # matched by id, whatever the order
    with pytest.warns(lm.UnreliableEstimateWarning, match="only 12 texts"):  # the map's SE says so here too
        df = lm.scoring.estimator_vs_exact(mm, shuffled, {"seeds": [("a", "b"), ("a", "llama")],
                                                  "layers": lm.adjacent_layers("layer", by="source_model")})
    assert df.setting.tolist() == ["seeds", "seeds", "layers", "layers"]
    assert df[["a", "b"]].values.tolist()[2:] == [["a@layer0", "a@layer1"], ["a@layer1", "a@layer2"]]
    seeds = df.iloc[0]
    ds = lm.exact_kl(a, b, texts)
    assert seeds.exact_ab == pytest.approx(float(ds.kl_ab_bits_per_byte), rel=1e-9)
    assert seeds.exact_sym_se == pytest.approx(float(ds.kl_sym_bits_per_byte_se), rel=1e-9)
    assert seeds.map_kl == pytest.approx(mm.kl("a", "b")) and seeds.map_se == pytest.approx(mm.kl_se("a", "b"))
    assert seeds.ratio == pytest.approx(seeds.map_kl / seeds.exact_sym, rel=1e-9)
    assert seeds.rerun_kl == pytest.approx(seeds.map_kl, rel=1e-5)  # same scoring, unclipped map
    assert 0 < seeds.ratio_se < seeds.ratio and seeds.reason == ""
    cross = df.iloc[1]
    assert np.isnan(cross.exact_sym) and "do not share a tokenizer" in cross.reason and cross.map_kl > 0
    layer = df.iloc[3]
    direct = lm.exact_kl(a, a, texts, layer_a=1, layer_b=2)
    assert layer.exact_ba == pytest.approx(float(direct.kl_ba_bits_per_byte), rel=1e-9)
    assert df.loglik_mismatch.max() < 1e-5
    # a map scored with a shorter context than the exact run's: said, not silently compared
    short = lm.LogLikelihoodMatrix.concat([lm.HFScorer(a, name="a", windowing=Windowing(max_length=16)).score(texts),
                                           lm.HFScorer(b, name="b").score(texts)])
    with pytest.warns(lm.LoglikMapWarning, match="differ from the map's by up to .* nats per byte"):
        off = lm.scoring.estimator_vs_exact(lm.ModelMap(short), texts, [("a", "b")])
    assert off.loglik_mismatch[0] > 1e-3
    clipped = lm.scoring.estimator_vs_exact(lm.ModelMap(matrix.clip(0.2)), texts, [("a", "b")])  # no warning: see filter
    assert clipped.loglik_mismatch[0] < 1e-5 and clipped.map_kl[0] != seeds.map_kl
    with pytest.raises(lm.LoglikMapError, match="not among the texts given"):
        lm.scoring.estimator_vs_exact(mm, texts[:5], [("a", "b")])
    with pytest.raises(lm.LoglikMapError, match="not on the map"):
        lm.scoring.estimator_vs_exact(mm, texts, [("a", "nope")])


def test_out_of_memory_splits_batches_as_the_scorer_does(model_dirs, texts):
    """exact_kl runs its batches through the scorer's driver (run_batches): a simulated device that
    runs out of memory above 300 tokens per forward pass costs retries, not results."""
    texts = texts[:8]
    a = lm.HFScorer(str(model_dirs["gpt_neox"]), execution=Execution(batch_tokens=4096))
    b = lm.HFScorer(str(model_dirs["gpt_neox_b"]), execution=Execution(batch_tokens=4096))
    expected = lm.exact_kl(a, b, texts)
    seen = []

    def small_device(module, args, kwargs):
        seen.append(kwargs["input_ids"].numel())
        if seen[-1] > 300:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    handle = b._load().model.base_model.register_forward_pre_hook(small_device, with_kwargs=True)
    try:
        with pytest.warns(UserWarning, match="exact KL .* out of memory at .* padded tokens per batch"):
            got = lm.exact_kl(a, b, texts)
    finally:
        handle.remove()
    np.testing.assert_allclose(got.kl_ab.values, expected.kl_ab.values, rtol=1e-6)
    np.testing.assert_array_equal(got.token_same_top.values, expected.token_same_top.values)
    assert max(seen) > 300 and sum(n <= 300 for n in seen) > 2


def test_a_head_exact_kl_cannot_reproduce_is_refused_not_miscomputed(tokenizers, texts, tmp_path):
    """Granite divides its logits by logits_scaling: the exact KL would use unscaled logits, so it refuses."""
    import transformers

    tok = tokenizers["llama"]
    torch.manual_seed(0)
    config = transformers.GraniteConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, intermediate_size=64,
                                        max_position_embeddings=64, logits_scaling=8.0)
    a = tiny.save(transformers.AutoModelForCausalLM.from_config(config).eval(), tok, tmp_path / "granite_a")
    b = tiny.save(transformers.AutoModelForCausalLM.from_config(config).eval(), tok, tmp_path / "granite_b")
    with pytest.raises(lm.LoglikMapError, match="does not reproduce the head of GraniteForCausalLM"):
        lm.exact_kl(str(a), str(b), texts[:3], loading=Loading(device="cpu"))
