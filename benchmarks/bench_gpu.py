"""Scoring on a GPU: the authors' procedure, a plain batched loop and loglik_map's scorers.

Run by hand on a GPU node (not a test), from the repository root::

    python benchmarks/bench_gpu.py --tokenizer gpt2.tiktoken --out bench-gpu

Random-weight GPT-NeoX models with the published Pythia-160M, -410M and -1B shapes are built from
their configurations directly on the GPU (no hub: the time does not depend on the weights), and
score the built-in texts (``mini`` + ``train``, 4,450 chunks of at most 1,024 bytes, like the
paper's Pile chunks). Rows, each in the same run and process:

* ``reference``: the authors' procedure (shimo-lab/modelmap, ``1000models/codes/src/calculator/
  likelihood.py``): float16, one text at a time, full-vocabulary ``log_softmax``, one ``float()``
  per token — on the first ``--reference-texts`` texts;
* ``plain``: a plain batched Hugging Face loop (pad + attention mask, 32 texts per batch in the
  given order, full float32 logits, ``log_softmax``, gather), bfloat16 weights;
* ``hf_bf16`` / ``hf_fp16``: :class:`loglik_map.HFScorer` (automatic token budget, fused
  unembedding); ``hf_bf16_chunked``: the same with ``unembed="chunked"``;
* ``lens_bf16``: :class:`loglik_map.LogitLensScorer`, every layer (``hf_bf16`` is its
  final-only pass);
* ``hf_fp32``: float32 weights (full-precision matrix products) on the first
  ``--kl-texts`` texts: the spurious KL of bf16 / fp16 scoring against it, in bits/byte.

Reported per row: seconds (best of ``--repeat`` after a warm-up), real tokens/s, texts/s, model
FLOP utilisation (``2 · P · tokens / time / peak``: ``P`` the parameters that multiply every token —
all but the input embedding — and the peak the bf16 rate of an 8192³ matrix product measured at
the start of the run), peak device memory above the model's weights, the padding ratio. With
``--profile`` a ``torch.profiler`` table of one scoring call is written next to the results.

The tokenizer (``--tokenizer``): a local Hugging Face tokenizer folder, or a ``.tiktoken`` file
of GPT-2's byte-level BPE (50,257 tokens; the ``gpt2.tiktoken`` file inside the openai-whisper
package, ``pip download --no-deps openai-whisper==20250625``) converted here. Without one, a
byte-level BPE is trained on the built-in texts (it compresses them better than a general
tokenizer: fewer tokens per text).

``--device cpu --shapes tiny`` runs every row of the script on a CPU in seconds (float32
throughout): a test of the script, not a benchmark.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import math
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

#: Published Pythia shapes (d, layers, heads, d_ff); vocabulary 50,304 rows, 2,048 positions.
SHAPES = {
    "160m": (768, 12, 12, 3072),
    "410m": (1024, 24, 16, 4096),
    "1b": (2048, 16, 8, 8192),
    "tiny": (64, 2, 2, 256),  # for --device cpu: a test of the script
}
PYTHIA_VOCAB = 50304
PLAIN_BATCH = 32
LN2 = math.log(2)


# --------------------------------------------------------------------------- tokenizer
def tiktoken_to_hf(path: Path) -> Any:
    """GPT-2's byte-level BPE from a ``.tiktoken`` rank file, as a transformers fast tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    ranks = {}
    for line in path.read_bytes().splitlines():
        if line.strip():
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    to_unicode = bytes_to_unicode()

    def text(b: bytes) -> str:
        return "".join(to_unicode[x] for x in b)

    merges = []  # every split of a token into two tokens, in the order of the merged token's rank
    for token, rank in ranks.items():
        pairs = [(token[:i], token[i:]) for i in range(1, len(token)) if token[:i] in ranks and token[i:] in ranks]
        merges += [(rank, ranks[a], ranks[b], a, b) for a, b in pairs]
    merges.sort()
    bpe = Tokenizer(models.BPE({text(t): r for t, r in ranks.items()}, [(text(a), text(b)) for *_, a, b in merges],
                               fuse_unk=False))
    bpe.model.ignore_merges = True  # a whole-word vocabulary entry wins, as in tiktoken
    split = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    bpe.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(split), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    bpe.decoder = decoders.ByteLevel()
    bpe.add_special_tokens(["<|endoftext|>"])
    return PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|endoftext|>", eos_token="<|endoftext|>")


def trained_tokenizer(texts: list[str], vocab: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<|endoftext|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                       show_progress=False))
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>")


def load_tokenizer(spec: str | None, texts: list[str], vocab: int) -> tuple[Any, str]:
    if spec is None:
        return trained_tokenizer(texts, vocab), f"byte-level BPE trained on the texts ({vocab} tokens)"
    path = Path(spec)
    if path.suffix == ".tiktoken":
        tok = tiktoken_to_hf(path)
        return tok, f"GPT-2 byte-level BPE from {path.name} ({len(tok)} tokens)"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(spec)
    return tok, f"{spec} ({len(tok)} tokens)"


# --------------------------------------------------------------------------- models
def build_model(shape: str, vocab: int, device: Any) -> Any:
    """A random GPT-NeoX of the given shape, float32, on ``device``.

    Weights are drawn with standard deviation 3.5 / sqrt(d), so that the logits spread over a few
    nats like a trained model's rather than being near-uniform (the precision of 16-bit scoring
    depends on it).
    """
    import torch
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    d, layers, heads, d_ff = SHAPES[shape]
    cfg = GPTNeoXConfig(vocab_size=vocab, hidden_size=d, num_hidden_layers=layers, num_attention_heads=heads,
                        intermediate_size=d_ff, max_position_embeddings=2048, rotary_pct=0.25,
                        use_parallel_residual=True, bos_token_id=0, eos_token_id=0,
                        initializer_range=3.5 / math.sqrt(d), tie_word_embeddings=False)
    torch.manual_seed(0)
    with torch.device(device):
        model = GPTNeoXForCausalLM(cfg)
    return model.eval()


def parameter_counts(model: Any) -> dict[str, int]:
    """Parameters of the body (blocks + final norm), of the unembedding, and of the input embedding."""
    embed_in = model.get_input_embeddings().weight.numel()
    head = model.get_output_embeddings().weight.numel()
    total = sum(p.numel() for p in model.parameters())
    return {"total": total, "embed_in": embed_in, "head": head, "body": total - embed_in - head}


# --------------------------------------------------------------------------- rows
def reference_procedure(model: Any, tok: Any, texts: list[str], device: Any) -> list[float]:
    """shimo-lab/modelmap's LikelihoodCalculator: one text at a time, full log_softmax, float() per token."""
    import torch

    max_length = model.config.max_position_embeddings
    use_cache = True
    values = []
    for text in texts:
        tokens = tok.encode(text, return_tensors="pt", truncation=True, max_length=max_length).to(device)
        with torch.no_grad():
            output = model(tokens, use_cache=use_cache)
            log_probs = torch.log_softmax(output.logits, dim=-1)
            next_tokens = tokens[0, 1:].to(log_probs.device)
            values.append(sum(float(log_probs[0, i, next_tokens[i]]) for i in range(tokens.shape[1] - 1)))
    return values


def plain_batched_loop(model: Any, tok: Any, texts: list[str], device: Any, batch_size: int = PLAIN_BATCH):
    """The loop most users write: pad a fixed number of texts, attention mask, full logits."""
    import torch

    tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    max_length = model.config.max_position_embeddings
    values, padded = [], 0
    for i in range(0, len(texts), batch_size):
        enc = tok(texts[i:i + batch_size], return_tensors="pt", padding=True, truncation=True,
                  max_length=max_length).to(device)
        padded += enc.input_ids.numel()
        with torch.no_grad():
            logits = model(**enc).logits.float()
        logp = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, enc.input_ids[:, 1:, None]).squeeze(-1)
        values.append((logp * enc.attention_mask[:, 1:]).double().sum(dim=1).cpu())
    return torch.cat(values).tolist(), padded


def scorer_padding(scorer: Any, texts: Any) -> tuple[int, int, int]:
    """(real tokens, padded tokens, padded tokens per batch) of an HFScorer's batches."""
    from loglik_map.scoring._batching import auto_batch_tokens
    from loglik_map.scoring._windows import plan_batches

    windows = [w for e in scorer.encode(texts) for w in e.windows]
    budget = scorer.execution.batch_tokens
    if budget == "auto":
        budget = auto_batch_tokens(scorer._load().model, n_states=len(scorer._rows(scorer.self_check())))
    batches = plan_batches(windows, budget)
    real = sum(len(w.ids) for w in windows)
    return real, sum(len(b) * max(len(windows[i].ids) for i in b) for b in batches), budget


class Timer:
    def __init__(self, device: Any) -> None:
        self.device = device

    def sync(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def best(self, fn: Any, repeat: int) -> tuple[float, Any, list[float]]:
        times, result = [], None
        for _ in range(repeat):
            self.sync()
            t0 = time.perf_counter()
            result = fn()
            self.sync()
            times.append(time.perf_counter() - t0)
        return min(times), result, times


def peak_memory(device: Any) -> tuple[Any, Any]:
    import torch

    if device.type != "cuda":
        return (lambda: None), (lambda: float("nan"))

    def reset() -> None:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        reset.base = torch.cuda.memory_allocated(device)  # type: ignore[attr-defined]

    def read() -> float:
        return (torch.cuda.max_memory_allocated(device) - reset.base) / 2**30  # type: ignore[attr-defined]

    return reset, read


def measure_peak_tflops(device: Any) -> float:
    """bf16 rate of an 8192³ matrix product on random data (mean of 10 after 3 warm-ups)."""
    import torch

    if device.type != "cuda":
        return float("nan")
    a = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    b = torch.randn(8192, 8192, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize(device)
    return 2 * 8192**3 * 10 / (time.perf_counter() - t0) / 1e12


def profile_table(scorer: Any, texts: Any, device: Any, path: Path) -> str:
    """torch.profiler of one scoring call: operators by device time, host syncs, device busy / wall."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    t0 = time.perf_counter()
    with profile(activities=activities) as prof:
        scorer.score(texts)
        if cuda:
            torch.cuda.synchronize(device)
    wall = time.perf_counter() - t0
    events = prof.key_averages()
    syncs = {e.key: e.count for e in events
             if e.key in ("aten::item", "aten::_local_scalar_dense", "cudaStreamSynchronize", "cudaDeviceSynchronize",
                          "cudaMemcpyAsync", "aten::nonzero")}
    busy = float("nan")
    table = ""
    for sort in (("self_device_time_total", "device_time_total", "cuda_time_total") if cuda else ("cpu_time_total",)):
        try:
            table = events.table(sort_by=sort, row_limit=30, max_name_column_width=70)
            break
        except Exception:
            continue
    if cuda:  # kernels only: an operator's device time is also its kernels' time
        from torch.autograd import DeviceType

        busy = sum(e.self_device_time_total for e in prof.events() if e.device_type == DeviceType.CUDA) / 1e6
    text = (f"wall {wall:.3f} s with the profiler on; device busy {busy:.3f} s ({busy / wall:.0%} of wall); "
            f"host syncs and copies: {syncs}\n\n{table}")
    path.write_text(text)
    return text


# --------------------------------------------------------------------------- one shape
def run_shape(shape: str, args: argparse.Namespace, tok: Any, texts: Any, device: Any, peak: float,
              deadline: float, log: Any) -> dict:
    import torch

    import loglik_map as lm
    from loglik_map.scoring import _unembed as unembed_mod

    cpu = device.type == "cpu"
    half = torch.float32 if cpu else torch.bfloat16
    fp16 = torch.float32 if cpu else torch.float16
    vocab = max(len(tok), PYTHIA_VOCAB if shape != "tiny" else len(tok))
    model32 = build_model(shape, vocab, device)
    params = parameter_counts(model32)
    out: dict[str, Any] = {"shape": shape, "params": params, "rows": {}, "vocab": vocab,
                           "d": SHAPES[shape][0], "layers": SHAPES[shape][1]}
    texts_list = list(texts)
    n_bytes = np.asarray(texts.n_bytes, dtype=float)
    reset, read = peak_memory(device)
    timer = Timer(device)
    per_token_flops = 2 * (params["body"] + params["head"])
    layers = SHAPES[shape][1]
    lens_flops = 2 * (params["body"] + (layers + 1) * params["head"])

    def record(name: str, seconds: float, tokens: int, n_texts: int, flops_per_token: int, values: Any,
               padded: int | None = None, extra: dict | None = None) -> None:
        row = {"seconds": seconds, "tokens": tokens, "texts": n_texts, "tokens_per_s": tokens / seconds,
               "texts_per_s": n_texts / seconds, "mfu": flops_per_token * tokens / seconds / (peak * 1e12),
               "peak_mem_gib": read(), "padding": (padded / tokens) if padded else None,
               "values": [float(v) for v in np.ravel(values)] if values is not None else None, **(extra or {})}
        out["rows"][name] = row
        log(f"  {shape} {name}: {seconds:.2f} s, {row['tokens_per_s']:.0f} tok/s, {row['texts_per_s']:.1f} texts/s, "
            f"MFU {row['mfu']:.1%}, peak {row['peak_mem_gib']:.2f} GiB")

    def time_left() -> bool:
        if time.perf_counter() > deadline:
            log(f"  {shape}: time budget spent, skipping the remaining rows")
            return False
        return True

    models = {"bf16": copy.deepcopy(model32).to(half), "fp16": copy.deepcopy(model32).to(fp16)}
    if args.kl_texts == 0:
        del model32
        model32 = None
    # 1. the authors' procedure (fp16, one text at a time)
    ref_texts = texts_list[:args.reference_texts]
    ref_tokens = sum(len(tok.encode(t, truncation=True, max_length=2048)) for t in ref_texts)
    reference_procedure(models["fp16"], tok, ref_texts[:3], device)  # warm-up
    reset()
    seconds, values, _ = timer.best(lambda: reference_procedure(models["fp16"], tok, ref_texts, device), 1)
    record("reference", seconds, ref_tokens, len(ref_texts), per_token_flops, values)
    # 2. a plain batched loop (bf16)
    if time_left():
        plain_batched_loop(models["bf16"], tok, texts_list[:PLAIN_BATCH], device)
        reset()
        seconds, (values, padded), _ = timer.best(lambda: plain_batched_loop(models["bf16"], tok, texts_list, device),
                                                  args.repeat)
        real = sum(len(tok.encode(t, truncation=True, max_length=2048)) for t in texts_list)
        record("plain", seconds, real, len(texts_list), per_token_flops, values, padded)
    # 3. loglik_map's scorers
    scorers = {
        "hf_bf16": (lm.HFScorer, "bf16", "auto", per_token_flops),
        "hf_fp16": (lm.HFScorer, "fp16", "auto", per_token_flops),
        "hf_bf16_chunked": (lm.HFScorer, "bf16", "chunked", per_token_flops),
        "lens_bf16": (lm.LogitLensScorer, "bf16", "auto", lens_flops),
    }
    if shape in args.lens_chunked.split(","):
        scorers["lens_bf16_chunked"] = (lm.LogitLensScorer, "bf16", "chunked", lens_flops)
    for name, (cls, weights, unembed, flops) in scorers.items():
        if not time_left():
            break
        try:
            scorer = cls(models[weights], tokenizer=tok, name=f"pythia-{shape}-{weights}",
                         execution=lm.scoring.Execution(unembed=unembed))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                scorer.score(texts[:64])  # warm-up: kernels compiled, fused kernel checked
            for w in caught:
                log(f"  {shape} {name} warning: {w.message}")
            real, padded, budget = scorer_padding(scorer, texts)
            reset()
            seconds, matrix, _ = timer.best(lambda s=scorer: s.score(texts), args.repeat)
        except Exception as err:
            import traceback

            log(f"  {shape} {name} FAILED: {type(err).__name__}: {err}\n{traceback.format_exc()}")
            continue
        record(name, seconds, real, len(texts), flops, matrix.values if name.startswith("hf") else matrix.values[-1],
               padded, {"batch_tokens": budget, "fused_verdicts": {str(k): v for k, v in unembed_mod._fused_verdict.items()}})
        if name.startswith("lens"):
            out["rows"][name]["layer_values_first_text"] = [float(v) for v in matrix.values[:, 0]]
    if args.profile and time_left():
        try:
            prof_scorer = lm.HFScorer(models["bf16"], tokenizer=tok, name=f"pythia-{shape}-bf16")
            text = profile_table(prof_scorer, texts[:args.profile_texts], device, args.out / f"profile_{shape}.txt")
            log(text.splitlines()[0])
        except Exception as err:
            log(f"  {shape} profile failed: {type(err).__name__}: {err}")
    # 4. float32 reference scoring: the spurious KL of 16-bit scoring
    if model32 is not None and time_left():
        sub = texts[:args.kl_texts]
        if not cpu:
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        scorer = lm.HFScorer(model32, tokenizer=tok, name=f"pythia-{shape}-fp32")
        scorer.score(texts[:8])
        real, padded, budget = scorer_padding(scorer, sub)
        reset()
        seconds, matrix, _ = timer.best(lambda: scorer.score(sub), 1)
        record("hf_fp32", seconds, real, len(sub), per_token_flops, matrix.values, padded, {"batch_tokens": budget})
        fp32 = matrix.values[0]
        b_bar = float(n_bytes[:len(sub)].mean())
        kl = {}
        for name in ("hf_bf16", "hf_fp16", "hf_bf16_chunked", "plain", "reference"):
            if name in out["rows"]:
                vals = np.asarray(out["rows"][name]["values"])[:len(sub)]
                n = min(len(vals), len(fp32))
                kl[name] = float(np.var(vals[:n] - fp32[:n]) / (2 * b_bar * LN2))
        out["spurious_kl_bits_per_byte"] = kl
        log(f"  {shape} spurious KL vs fp32 (bits/byte): " + ", ".join(f"{k} {v:.2e}" for k, v in kl.items()))
    models.clear()
    model32 = None
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


# --------------------------------------------------------------------------- precision
def train_briefly(model: Any, tok: Any, texts: list[str], seconds: float, device: Any, log: Any,
                  seq: int = 256, batch: int = 64) -> dict:
    """Train ``model`` (float32 master weights, bf16 autocast on a GPU) on random crops of ``texts``."""
    import torch

    eos = tok.eos_token_id
    stream = torch.tensor([t for ids in tok(texts)["input_ids"] for t in ids + [eos]], dtype=torch.long)
    opt = torch.optim.AdamW(model.parameters(), lr=6e-4, betas=(0.9, 0.95), weight_decay=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / 100))
    model.train()
    gen = torch.Generator().manual_seed(0)
    start, step, losses = time.perf_counter(), 0, []
    while time.perf_counter() - start < seconds:
        starts = torch.randint(0, len(stream) - seq - 1, (batch,), generator=gen)
        x = torch.stack([stream[i:i + seq] for i in starts]).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss = model(input_ids=x, labels=x).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        if step % 100 == 0 or step == 1:
            losses.append((step, float(loss.detach())))
            log(f"    train step {step}: loss {losses[-1][1]:.3f} nats/token")
    model.eval()
    return {"steps": step, "tokens": step * batch * seq, "seconds": time.perf_counter() - start, "losses": losses}


def precision_study(args: argparse.Namespace, tok: Any, device: Any, log: Any) -> list[dict]:
    """Spurious KL of 16-bit scoring against float32 for better-conditioned weights than the speed rows':
    a Pythia-shaped model trained for ``--train-seconds`` on the built-in ``train`` texts and
    scored on ``mini`` (held out), and untrained models at Pythia's own initialisation (std 0.02,
    like a step-0 checkpoint)."""
    import torch

    import loglik_map as lm

    texts = lm.load_texts("mini")[:args.kl_texts]
    b_bar = float(np.mean(texts.n_bytes))
    out = []
    plan = [(s, "trained") for s in args.precision_trained.split(",") if s] + \
           [(s, "step0") for s in args.precision_step0.split(",") if s]
    for shape, kind in plan:
        model = build_model(shape, max(len(tok), PYTHIA_VOCAB if shape != "tiny" else len(tok)), device)
        entry: dict[str, Any] = {"shape": shape, "weights": kind}
        with torch.no_grad():  # Pythia's initialisation scale instead of the speed rows' wide one
            for p in model.parameters():
                if p.dim() == 2:
                    p.normal_(0.0, 0.02)
        if kind == "trained":
            entry["training"] = train_briefly(model, tok, lm.load_texts("train").texts,
                                              args.train_seconds, device, log)
        torch.backends.cuda.matmul.allow_tf32 = False
        values = {}
        for label, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)):
            copy_ = copy.deepcopy(model).to(dtype if device.type == "cuda" else torch.float32)
            values[label] = lm.HFScorer(copy_, tokenizer=tok, name=f"{shape}-{label}").score(texts).values[0]
            del copy_
        ref16 = copy.deepcopy(model).to(torch.float16 if device.type == "cuda" else torch.float32)
        values["reference"] = np.array(reference_procedure(ref16, tok, list(texts)[:args.reference_texts], device))
        del ref16
        fp32 = values["fp32"]
        entry["mean_loglik_bits_per_byte"] = float(-fp32.mean() / (b_bar * LN2))
        entry["spurious_kl_bits_per_byte"] = {
            k: float(np.var(v - fp32[:len(v)]) / (2 * b_bar * LN2)) for k, v in values.items() if k != "fp32"}
        entry["max_abs_diff_nats"] = {k: float(np.max(np.abs(v - fp32[:len(v)]))) for k, v in values.items()
                                      if k != "fp32"}
        log(f"  precision {shape} ({kind}): cross-entropy {entry['mean_loglik_bits_per_byte']:.3f} bits/byte; "
            "spurious KL " + ", ".join(f"{k} {v:.1e}" for k, v in entry["spurious_kl_bits_per_byte"].items()))
        out.append(entry)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return out


# --------------------------------------------------------------------------- report
def report(results: dict) -> str:
    lines = [f"{results['gpu']}; torch {results['torch']}, transformers {results['transformers']}; "
             f"bf16 peak used for MFU: {results['peak_tflops']:.0f} TFLOP/s (measured 8192³ product); "
             f"{results['n_texts']} texts, mean {results['mean_bytes']:.0f} bytes; tokenizer: {results['tokenizer']}", ""]
    labels = {"reference": "reference procedure (fp16, one text at a time)", "plain": "plain batched HF loop (bf16, 32/batch)",
              "hf_bf16": "HFScorer bf16", "hf_fp16": "HFScorer fp16", "hf_bf16_chunked": "HFScorer bf16, chunked unembedding",
              "lens_bf16": "LogitLensScorer bf16, all layers", "lens_bf16_chunked": "LogitLensScorer bf16, chunked",
              "hf_fp32": "HFScorer fp32 (KL reference)"}
    for shape in results["shapes"]:
        p = shape["params"]
        lines += [f"### Pythia-{shape['shape']} shape ({p['total'] / 1e6:.1f}M parameters, d = {shape['d']}, "
                  f"{shape['layers']} layers, vocabulary {shape['vocab']})", "",
                  "| method | texts | seconds | tokens/s | texts/s | MFU | peak GPU GiB | padded / real | batch tokens |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for key, r in shape["rows"].items():
            pad = f"{r['padding']:.3f}" if r.get("padding") else "—"
            mem = f"{r['peak_mem_gib']:.2f}" if r["peak_mem_gib"] == r["peak_mem_gib"] else "—"
            lines.append(f"| {labels.get(key, key)} | {r['texts']} | {r['seconds']:.2f} | {r['tokens_per_s']:,.0f} | "
                         f"{r['texts_per_s']:,.1f} | {r['mfu']:.1%} | {mem} | {pad} | {r.get('batch_tokens', '—')} |")
        rows = shape["rows"]
        notes = []
        if "hf_bf16" in rows and "reference" in rows:
            notes.append(f"HFScorer bf16 / reference: {rows['hf_bf16']['texts_per_s'] / rows['reference']['texts_per_s']:.1f}× "
                         "texts/s")
        if "hf_bf16" in rows and "plain" in rows:
            notes.append(f"HFScorer bf16 / plain loop: {rows['hf_bf16']['texts_per_s'] / rows['plain']['texts_per_s']:.2f}×")
        if "hf_bf16" in rows and "hf_bf16_chunked" in rows:
            notes.append(f"fused / chunked unembedding: "
                         f"{rows['hf_bf16_chunked']['seconds'] / rows['hf_bf16']['seconds']:.2f}× faster, max diff "
                         f"{np.max(np.abs(np.subtract(rows['hf_bf16']['values'], rows['hf_bf16_chunked']['values']))):.1e} nats")
        if "lens_bf16" in rows and "hf_bf16" in rows:
            body, head, layers = p["body"], p["head"], shape["layers"]
            floor = (body + (layers + 1) * head) / (body + head)
            ratio = rows["lens_bf16"]["seconds"] / rows["hf_bf16"]["seconds"]
            notes.append(f"logit lens / final-only: {ratio:.2f}× (matmul-FLOP floor {floor:.2f}×, "
                         f"{ratio / floor:.2f}× the floor); last layer = final-only pass within "
                         f"{np.max(np.abs(np.subtract(rows['lens_bf16']['values'], rows['hf_bf16']['values']))):.1e} nats")
        if "plain" in rows and "hf_bf16" in rows:
            notes.append(f"HFScorer bf16 vs plain loop (same weights): max diff "
                         f"{np.max(np.abs(np.subtract(rows['hf_bf16']['values'], rows['plain']['values']))):.2e} nats per text")
        if "spurious_kl_bits_per_byte" in shape:
            notes.append("spurious KL against fp32 scoring (bits/byte): " + ", ".join(
                f"{labels.get(k, k)} {v:.1e}" for k, v in shape["spurious_kl_bits_per_byte"].items()))
        lines += [""] + [f"* {n}" for n in notes] + [""]
    if results.get("precision"):
        lines += ["### Spurious KL of 16-bit scoring against float32 (bits/byte)", "",
                  "| shape | weights | cross-entropy (bits/byte) | HFScorer bf16 | HFScorer fp16 | reference (fp16) |",
                  "|---|---|---|---|---|---|"]
        for e in results["precision"]:
            kl = e["spurious_kl_bits_per_byte"]
            what = (f"trained {e['training']['steps']} steps ({e['training']['seconds']:.0f} s)"
                    if e["weights"] == "trained" else "initialisation, std 0.02 (step 0)")
            lines.append(f"| {e['shape']} | {what} | {e['mean_loglik_bits_per_byte']:.3f} | {kl['bf16']:.1e} | "
                         f"{kl['fp16']:.1e} | {kl['reference']:.1e} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--shapes", default="410m,1b,160m", help="comma-separated: 160m, 410m, 1b, tiny")
    ap.add_argument("--texts", type=int, default=4450, help="built-in texts scored (mini + train: 4,450)")
    ap.add_argument("--reference-texts", type=int, default=300, help="texts for the one-at-a-time reference")
    ap.add_argument("--kl-texts", type=int, default=2000, help="texts scored in float32 for the spurious KL (0: skip)")
    ap.add_argument("--repeat", type=int, default=2, help="timed runs per row after a warm-up; the best is reported")
    ap.add_argument("--tokenizer", help="tokenizer folder or .tiktoken file (default: BPE trained on the texts)")
    ap.add_argument("--vocab", type=int, default=50257, help="vocabulary of the trained tokenizer (no --tokenizer)")
    ap.add_argument("--profile", action="store_true", help="write a torch.profiler table of one HFScorer call")
    ap.add_argument("--profile-texts", type=int, default=512)
    ap.add_argument("--lens-chunked", default="", help="shapes (comma-separated) whose logit lens is also timed "
                                                         "with unembed='chunked'")
    ap.add_argument("--precision", action="store_true",
                    help="only the precision study: spurious KL of trained and step-0 models (no speed rows)")
    ap.add_argument("--precision-trained", default="160m", help="shapes trained for --train-seconds, then scored")
    ap.add_argument("--precision-step0", default="410m,1b", help="shapes scored at Pythia's initialisation")
    ap.add_argument("--train-seconds", type=float, default=75.0)
    ap.add_argument("--budget", type=float, default=420.0, help="seconds after which remaining rows are skipped")
    ap.add_argument("--out", type=Path, default=Path("bench-gpu"), help="folder for results.json, results.md, profiles")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    import torch
    import transformers

    import loglik_map as lm

    args.out.mkdir(parents=True, exist_ok=True)
    device = torch.device(args.device)
    log_file = (args.out / "log.txt").open("a", encoding="utf-8")

    def log(msg: str) -> None:
        line = f"[{time.perf_counter() - start:6.1f}s] {msg}"
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    all_texts = lm.load_texts("mini").texts + lm.load_texts("train").texts
    texts = lm.TextSet(all_texts[:args.texts])
    tok, tok_label = load_tokenizer(args.tokenizer, list(texts), args.vocab)
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({platform.processor() or 'cpu'})"
    peak = measure_peak_tflops(device) if device.type == "cuda" else 1.0
    log(f"{gpu}: bf16 product {peak:.0f} TFLOP/s; {len(texts)} texts; tokenizer {tok_label}")
    results = {"gpu": gpu, "torch": torch.__version__, "transformers": transformers.__version__,
               "peak_tflops": peak, "n_texts": len(texts), "mean_bytes": float(np.mean(texts.n_bytes)),
               "tokenizer": tok_label, "command": " ".join(sys.argv), "shapes": []}
    deadline = start + args.budget
    if args.precision:
        results["precision"] = precision_study(args, tok, device, log)
        (args.out / "results.json").write_text(json.dumps(results))
    for shape in ([] if args.precision else args.shapes.split(",")):
        if time.perf_counter() > deadline:
            log(f"time budget spent before {shape}")
            break
        log(f"shape {shape}")
        try:
            results["shapes"].append(run_shape(shape, args, tok, texts, device, peak, deadline, log))
        except Exception as err:  # keep what the other shapes measured
            import traceback

            log(f"  {shape} FAILED: {type(err).__name__}: {err}\n{traceback.format_exc()}")
        (args.out / "results.json").write_text(json.dumps(results))
    text = report(results)
    (args.out / "results.md").write_text(text)
    print(text)
    log(f"done in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
