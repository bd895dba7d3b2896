"""HFScorer and LogitLensScorer on tiny local models loaded through from_pretrained."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import loglik_map as lm
from loglik_map.scoring import Execution, Loading, Windowing
from loglik_map.scoring._architectures import find_final_norm
from loglik_map.scoring._windows import encode_text

from . import tiny

ARCHS = ["gpt_neox", "llama", "gpt2"]


@pytest.fixture(scope="module")
def loaded(model_dirs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return {a: (AutoModelForCausalLM.from_pretrained(model_dirs[a]).eval(), AutoTokenizer.from_pretrained(model_dirs[a]))
            for a in ARCHS}


@pytest.mark.parametrize("arch", ARCHS)
def test_batched_scores_equal_the_reference_loop(arch, model_dirs, loaded, texts):
    # the reference scripts truncate at the context: so does long_texts="truncate", with a warning
    with pytest.warns(lm.LoglikMapWarning, match="long_texts='truncate' cut"):
        m = lm.HFScorer(str(model_dirs[arch]), windowing=Windowing(long_texts="truncate"),
                        execution=Execution(batch_tokens=300)).score(texts)
    model, tok = loaded[arch]
    ref = [tiny.reference_loglik(model, tok, t, 64) for t in texts]
    assert m.shape == (1, len(texts)) and list(m.texts) == list(texts.ids)
    np.testing.assert_allclose(m.values[0], ref, atol=1e-4, rtol=0)
    assert m.data["convention"].values[0] == "reference" and m.data["quantization"].values[0] == "none"
    assert m.data["dtype"].values[0] == "float32" and m.attrs["convention"] == "reference"
    assert m.models[0] == arch  # the folder's base name; the full path is the source_model coordinate
    assert m.data["source_model"].values[0] == str(model_dirs[arch])
    # the default (rolling windows) gives the reference numbers for every text that fits the context
    rolled = lm.HFScorer(str(model_dirs[arch]), execution=Execution(batch_tokens=300)).score(texts)
    fits = rolled.data["n_tokens"].values[0] < 64
    assert fits.sum() > 5 and (~fits).sum() > 0
    np.testing.assert_allclose(rolled.values[0, fits], np.asarray(ref)[fits], atol=1e-4, rtol=0)
    assert (rolled.values[0, ~fits] < m.values[0, ~fits]).all()  # more tokens scored, lower log-likelihood
    assert rolled.data["long_texts"].values[0] == "rolling" and not rolled.data["n_tokens_dropped"].values.any()


def test_results_do_not_depend_on_batch_composition(model_dirs, texts):
    one = lm.HFScorer(str(model_dirs["llama"]), execution=Execution(batch_tokens=1)).score(texts)  # one text per batch
    many = lm.HFScorer(str(model_dirs["llama"]), execution=Execution(batch_tokens=4096)).score(texts)
    shuffled = texts[list(np.random.default_rng(0).permutation(len(texts)))]
    again = lm.HFScorer(str(model_dirs["llama"]), execution=Execution(batch_tokens=700)).score(shuffled)
    np.testing.assert_allclose(one.values, many.values, atol=1e-4)
    np.testing.assert_allclose(again.sel(text=list(texts.ids)).values, many.values, atol=1e-4)
    # a tokenizer that pads on the left (as many Llama tokenizers do) changes nothing either
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dirs["llama"], padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(model_dirs["llama"])
    left = lm.HFScorer(model, tokenizer=tok, name="left", execution=Execution(batch_tokens=4096)).score(texts)
    np.testing.assert_allclose(left.values, many.values, atol=1e-4)


def test_reference_convention_scores_first_token_only_with_a_bos_tokenizer(model_dirs, tokenizers, texts):
    neox, llama = tokenizers["neox"], tokenizers["llama"]
    t = texts[0]
    n_text = len(neox(t, add_special_tokens=False)["input_ids"])
    ref = encode_text(neox, t, 0, convention="reference", max_length=64, long_texts="truncate")
    bos = encode_text(neox, t, 0, convention="bos", max_length=64, long_texts="truncate")
    assert ref.windows[0].n_scored == n_text - 1 and bos.windows[0].n_scored == n_text
    assert bos.windows[0].ids[0] == neox.eos_token_id and bos.windows[0].ids[1:] == ref.windows[0].ids
    # Llama-style tokenizer: the reference convention already has BOS; "bos" must not double it
    r = encode_text(llama, t, 0, convention="reference", max_length=64, long_texts="truncate")
    b = encode_text(llama, t, 0, convention="bos", max_length=64, long_texts="truncate")
    assert r.windows[0].ids == b.windows[0].ids and r.windows[0].ids[:2].count(llama.bos_token_id) == 1
    ll_ref = lm.HFScorer(str(model_dirs["llama"])).score(texts)
    ll_bos = lm.HFScorer(str(model_dirs["llama"]), windowing=Windowing(convention="bos")).score(texts)
    np.testing.assert_allclose(ll_ref.values, ll_bos.values, atol=1e-6)
    np.testing.assert_array_equal(ll_ref.data["n_tokens"].values, ll_bos.data["n_tokens"].values)
    # no BOS from the tokenizer: "bos" scores the first text token too, one token more per text
    nx_ref = lm.HFScorer(str(model_dirs["gpt_neox"])).score(texts)
    nx_bos = lm.HFScorer(str(model_dirs["gpt_neox"]), windowing=Windowing(convention="bos")).score(texts)
    n_text = np.array([len(neox(x, add_special_tokens=False)["input_ids"]) for x in texts])
    assert (n_text > 64).any() and (n_text < 64).any()  # some longer than the 64 positions, some not
    np.testing.assert_array_equal(nx_ref.data["n_tokens"].values[0], n_text - 1)  # rolling windows: every token
    np.testing.assert_array_equal(nx_bos.data["n_tokens"].values[0], n_text)
    assert not nx_bos.data["n_tokens_dropped"].values.any() and not nx_ref.data["n_tokens_dropped"].values.any()


@pytest.mark.filterwarnings("ignore:model .* long_texts='truncate' cut:loglik_map.LoglikMapWarning")
def test_bos_convention_matches_a_manual_evaluation(model_dirs, loaded, texts):
    model, tok = loaded["gpt_neox"]
    m = lm.HFScorer(str(model_dirs["gpt_neox"]), windowing=Windowing(convention="bos", long_texts="truncate")).score(texts[:4])
    for k, t in enumerate(texts[:4]):
        ids = torch.tensor([[tok.eos_token_id] + tok(t, add_special_tokens=False)["input_ids"]])[:, :64]
        with torch.no_grad():
            lp = torch.log_softmax(model(ids).logits.float(), -1)[0]
        manual = sum(float(lp[i, ids[0, i + 1]]) for i in range(ids.shape[1] - 1))
        assert m.values[0, k] == pytest.approx(manual, abs=1e-4)
        assert m.data["convention"].values[0] == "bos"


def test_long_texts_truncate_roll_or_refuse(model_dirs, loaded, tokenizers):
    model, tok = loaded["gpt_neox"]
    long = lm.TextSet([" ".join(tiny.corpus())[:600], " ".join(tiny.corpus())[1000:1100]])
    n_tokens = len(tok(long[0])["input_ids"])
    assert n_tokens > 3 * 16
    n_short = len(tok(long[1])["input_ids"])
    assert n_short > 16
    with pytest.warns(lm.LoglikMapWarning, match=rf"'gpt_neox': long_texts='truncate' cut 2 of 2 texts to their first "
                      rf"16 tokens, dropping {n_tokens + n_short - 32} of {n_tokens + n_short} tokens") as seen:
        trunc = lm.HFScorer(str(model_dirs["gpt_neox"]), windowing=Windowing(max_length=16, long_texts="truncate")).score(long)
    assert len([w for w in seen if issubclass(w.category, lm.LoglikMapWarning)]) == 1  # once per model, not per text
    assert trunc.data["n_texts_truncated"].values[0] == 2
    assert list(trunc.data["n_tokens_dropped"].values[0]) == [n_tokens - 16, n_short - 16]  # per text
    assert list(trunc.data["n_tokens"].values[0]) == [15, 15]  # the first token conditions only
    assert trunc.values[0, 0] == pytest.approx(tiny.reference_loglik(model, tok, long[0], 16), abs=1e-4)
    # rolling: every token scored exactly once
    enc = encode_text(tok, long[0], 0, convention="reference", max_length=16, long_texts="rolling", stride=5)
    scored = [w.ids[p] for w in enc.windows for p in range(w.score_from, len(w.ids))]
    assert sum(w.n_scored for w in enc.windows) == n_tokens - 1
    assert scored == list(tok(long[0])["input_ids"][1:])
    assert all(len(w.ids) <= 16 for w in enc.windows)
    assert all(w.score_from >= 16 - 5 for w in enc.windows[1:])  # context of ≥ max_length - stride
    roll = lm.HFScorer(str(model_dirs["gpt_neox"]),
                       windowing=Windowing(max_length=16, long_texts="rolling", stride=5)).score(long)
    manual = 0.0
    for w in enc.windows:
        ids = torch.tensor([w.ids])
        with torch.no_grad():
            lp = torch.log_softmax(model(ids).logits.float(), -1)[0]
        manual += sum(float(lp[p - 1, ids[0, p]]) for p in range(w.score_from, len(w.ids)))
    assert roll.values[0, 0] == pytest.approx(manual, abs=1e-4)
    assert list(roll.data["n_tokens_dropped"].values[0]) == [0, 0]
    assert list(roll.data["n_tokens"].values[0]) == [n_tokens - 1, n_short - 1]  # every token scored once
    with pytest.raises(lm.LoglikMapError, match="more than the model's 16"):
        lm.HFScorer(str(model_dirs["gpt_neox"]), windowing=Windowing(max_length=16, long_texts="error")).score(long)


def test_non_finite_results_name_the_model(loaded, tokenizers, texts):
    model = tiny.build_model("gpt_neox", tokenizers["neox"], seed=3)
    with torch.no_grad():
        model.get_output_embeddings().weight[5] = float("nan")
    with pytest.raises(lm.LoglikMapError, match="'broken' gave a non-finite log-likelihood"):
        lm.HFScorer(model, tokenizer=tokenizers["neox"], name="broken").score(texts[:3])


def test_loading_errors_name_the_model(tmp_path):
    with pytest.raises(lm.LoglikMapError, match="cannot load 'no-such-owner/missing-model'"):
        lm.HFScorer("no-such-owner/missing-model").score(["some text here"])  # offline: the hub lookup fails
    with pytest.raises(lm.LoglikMapError, match="unknown convention"):
        lm.HFScorer("x", windowing=Windowing(convention="harness"))
    with pytest.raises(lm.LoglikMapError, match="already-loaded model needs tokenizer"):
        lm.HFScorer(object()).score(["a text"])


@pytest.mark.parametrize("arch", ARCHS)
def test_logit_lens_last_layer_is_the_model_itself(arch, model_dirs, loaded, texts):
    lens = lm.LogitLensScorer(str(model_dirs[arch])).score(texts)
    plain = lm.HFScorer(str(model_dirs[arch])).score(texts)
    assert list(lens.data["layer"].values) == [0, 1, 2]
    assert lens.models[-1] == f"{arch}@layer2"
    assert list(lens.data["parent_model"].values) == [arch] * 3
    np.testing.assert_allclose(lens.values[-1], plain.values[0], rtol=1e-7, atol=1e-6)
    # the mistake the lens must avoid: normalising the already-normed last state again
    model, tok = loaded[arch]
    norm = find_final_norm(model)
    k = next(k for k, t in enumerate(texts) if len(tok(t)["input_ids"]) <= 64)  # a text that fits the context
    ids = tok(texts[k], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        h = model.base_model(ids, output_hidden_states=True).hidden_states
        wrong = torch.log_softmax(model.get_output_embeddings()(norm(h[-1])).float(), -1)[0]
        mid = torch.log_softmax(model.get_output_embeddings()(norm(h[1])).float(), -1)[0]
    wrong_ll = sum(float(wrong[i, ids[0, i + 1]]) for i in range(ids.shape[1] - 1))
    mid_ll = sum(float(mid[i, ids[0, i + 1]]) for i in range(ids.shape[1] - 1))
    assert abs(wrong_ll - lens.values[-1, k]) > 1.0
    assert lens.values[1, k] == pytest.approx(mid_ll, abs=1e-4)


@pytest.mark.filterwarnings("ignore:model .* long_texts='truncate' cut:loglik_map.LoglikMapWarning")
@pytest.mark.parametrize("arch", ["gpt_neox", "llama", "mistral", "qwen2", "gemma", "gpt2", "opt", "phi"])
def test_final_norm_is_found_for_every_listed_architecture(arch, tokenizers, texts):
    model = tiny.build_model(arch, tokenizers["llama" if arch != "gpt_neox" else "neox"])
    tok = tokenizers["llama" if arch != "gpt_neox" else "neox"]
    norm = find_final_norm(model)
    assert isinstance(norm, torch.nn.Module)
    lens = lm.LogitLensScorer(model, tokenizer=tok, name=arch, windowing=Windowing(long_texts="truncate")).score(texts[:3])
    plain = lm.HFScorer(model, tokenizer=tok, name=arch, windowing=Windowing(long_texts="truncate")).score(texts[:3])
    np.testing.assert_allclose(lens.values[-1], plain.values[0], rtol=1e-6, atol=1e-5)
    ref = [tiny.reference_loglik(model, tok, t, 64) for t in texts[:3]]
    np.testing.assert_allclose(plain.values[0], ref, atol=1e-4)


def test_unknown_architecture_is_an_error_and_a_dotted_path_overrides(tokenizers):
    model = tiny.build_model("gpt_neox", tokenizers["neox"])

    class Wrapped(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

    with pytest.raises(lm.LoglikMapError, match="cannot find the final norm of Wrapped"):
        find_final_norm(Wrapped(model))
    assert find_final_norm(Wrapped(model), "inner.gpt_neox.final_layer_norm") is model.gpt_neox.final_layer_norm
    with pytest.raises(lm.LoglikMapError, match="not a submodule"):
        find_final_norm(model, "model.nope")


@pytest.mark.parametrize("quantization", ["8bit", "4bit"])
def test_bitsandbytes_quantized_model_is_close_but_not_identical(quantization, model_dirs, texts):
    pytest.importorskip("bitsandbytes", reason="quantization tests need the 'quant' extra (bitsandbytes)")
    folder = str(model_dirs["gpt_neox"])
    q = lm.HFScorer(folder, loading=Loading(quantization=quantization)).score(texts)
    full = lm.HFScorer(folder).score(texts)
    assert q.models[0] == f"gpt_neox[{'8bit' if quantization == '8bit' else '4bit-nf4'}]"
    assert q.data["quantization"].values[0] in ("8bit", "4bit-nf4")
    both = lm.LogLikelihoodMatrix.concat([full, q])
    kl = lm.ModelMap(both).kl(full.models[0], q.models[0])
    other = lm.HFScorer(str(model_dirs["gpt_neox_b"]), name="other-seed").score(texts)
    kl_other = lm.ModelMap(lm.LogLikelihoodMatrix.concat([full, other])).kl(full.models[0], "other-seed")
    assert 0 < kl < kl_other / 5  # 4-bit nf4 on a 32-wide random model: ~0.12 of another seed's KL


def test_dtype_auto_is_float32_on_cpu_and_explicit_dtypes_are_recorded(model_dirs, texts):
    auto = lm.HFScorer(str(model_dirs["gpt_neox"]), loading=Loading(device="cpu")).score(texts[:2])
    assert auto.data["dtype"].values[0] == "float32"
    with pytest.raises(lm.LoglikMapError, match="unknown dtype"):
        lm.HFScorer("x", loading=Loading(dtype="int8"))


@pytest.mark.parametrize("device", [
    "cpu",  # the 2-layer, 32-wide model is small enough for bf16 on any CPU
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                  reason="needs a CUDA GPU (none on this machine): bf16 on GPU")),
])
def test_bfloat16_stays_close_to_float32(device, model_dirs, texts):
    fp32 = lm.HFScorer(str(model_dirs["llama"]), loading=Loading(device="cpu")).score(texts)
    bf16 = lm.HFScorer(str(model_dirs["llama"]), loading=Loading(dtype="bfloat16", device=device)).score(texts)
    assert bf16.data["dtype"].values[0] == "bfloat16"
    # log-softmax in float32 and float64 sums: no 16-nat quantisation of the totals
    assert np.all(np.abs(bf16.values - fp32.values) < 0.05 * np.abs(fp32.values))
    assert len(np.unique(np.mod(bf16.values, 16.0))) > len(texts) // 2


def test_4bit_layers_the_avx512_kernel_cannot_pack_are_rerouted(model_dirs):
    pytest.importorskip("bitsandbytes", reason="quantization tests need the 'quant' extra (bitsandbytes)")
    from loglik_map.scoring._quantization import route_unpackable_4bit_layers as _route_unpackable_4bit_layers

    scorer = lm.HFScorer(str(model_dirs["gpt_neox"]), loading=Loading(device="cpu", quantization="4bit"))
    model = scorer._load().model
    layers = {name: m for name, m in model.named_modules() if hasattr(m, "support_avx512bf16_for_cpu")}
    assert layers, "no bitsandbytes 4-bit layers found"
    for m in layers.values():  # as on a CPU with AVX-512-BF16, whatever this machine has
        m.support_avx512bf16_for_cpu = True
    rerouted = _route_unpackable_4bit_layers(model)
    # hidden 32, intermediate 64, block size 64: only dense_4h_to_h (64 -> 32) can be packed
    packable = {name for name, m in layers.items() if m.support_avx512bf16_for_cpu}
    assert packable and all(name.endswith("dense_4h_to_h") for name in packable)
    assert rerouted == len(layers) - len(packable) > 0


def test_batches_are_right_padded_and_only_scored_positions_are_unembedded():
    from loglik_map.scoring._batching import pad_batch as _pad_batch
    from loglik_map.scoring._unembed import logit_rows as _logit_rows
    from loglik_map.scoring._windows import Window

    windows = [Window(0, (5, 6, 7, 8), 1), Window(1, (9, 10), 1), Window(2, (1, 2, 3, 4, 5, 6), 4)]
    ids, rows, positions = _pad_batch(windows, [1, 0, 2])
    assert ids.tolist() == [[9, 10, 10, 10, 10, 10], [5, 6, 7, 8, 8, 8], [1, 2, 3, 4, 5, 6]]
    # (row, position) pairs predict exactly the scored targets, nothing in the padding
    assert list(zip(rows.tolist(), positions.tolist())) == [(0, 0), (1, 0), (1, 1), (1, 2), (2, 3), (2, 4)]
    assert ids[rows, positions + 1].tolist() == [10, 6, 7, 8, 5, 6]
    # chunking: 128 positions on a CPU; on a GPU as many as fit in 256 MiB of float32 logits
    assert _logit_rows(torch.device("cpu"), 50304) == 128
    assert _logit_rows(torch.device("cuda", 0), 50304) == 256 * 2**20 // (4 * 50304)
    assert _logit_rows(torch.device("cuda"), 2**22) == 128


def test_out_of_memory_splits_batches_and_keeps_the_results(model_dirs, texts):
    """A device that runs out of memory above some batch size (simulated: the forward pass raises
    torch.OutOfMemoryError as CUDA does) costs retries, never results."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dirs["gpt_neox"])
    model = AutoModelForCausalLM.from_pretrained(model_dirs["gpt_neox"]).eval()
    expected = lm.HFScorer(model, tokenizer=tok, name="m", execution=Execution(batch_tokens=4096)).score(texts)
    seen = []

    def small_device(module, args, kwargs):
        n = kwargs["input_ids"].numel()
        seen.append(n)
        if n > 300:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    def no_device(module, args, kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    scorer = lm.HFScorer(model, tokenizer=tok, name="m", execution=Execution(batch_tokens=4096))
    scorer.self_check()  # the probe is short: the simulated device fails on the large batches only
    handle = model.base_model.register_forward_pre_hook(small_device, with_kwargs=True)
    try:
        with pytest.warns(UserWarning, match="out of memory at .* padded tokens per batch"):
            got = scorer.score(texts)
    finally:
        handle.remove()
    np.testing.assert_allclose(got.values, expected.values, atol=1e-4)
    assert max(seen) > 300 and sum(n <= 300 for n in seen) > 2  # it failed, split and went on
    handle = model.base_model.register_forward_pre_hook(no_device, with_kwargs=True)
    try:
        with pytest.raises(lm.LoglikMapError, match="model 'm': out of memory on a single text window"), \
                pytest.warns(UserWarning):
            scorer.score(texts[:3])
        with pytest.raises(lm.LoglikMapError, match=r"model 'm': out of memory on a single text window .*self-check"):
            lm.HFScorer(model, tokenizer=tok, name="m").score(texts[:3])  # already in the self-check's probe
    finally:
        handle.remove()
