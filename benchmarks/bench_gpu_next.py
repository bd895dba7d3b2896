"""The next GPU measurements (issue "closer to the hardware limit"): what to try beyond bench_gpu.py.

Run by hand on a GPU node (not a test), from the repository root, in one call of at most ~8
minutes::

    python benchmarks/bench_gpu_next.py --out bench-gpu-next

Random-weight GPT-NeoX models of the Pythia-160M / -410M / -1B shapes (``bench_gpu.py``'s
``build_model``) and two large-vocabulary shapes (``qwen`` : d 1,536, 28 layers, 151,936 rows;
``gemma`` : d 2,304, 26 layers, 256,000 rows — the unembedding of a Qwen-2.5-1.5B / Gemma-2-2B on a
GPT-NeoX body) score the built-in texts. Rows, each in the same process:

* ``hf_bf16``: :class:`loglik_map.HFScorer` as it is today (padded batches, fused unembedding) — the
  baseline every other row is compared with;
* ``body_padded`` / ``body_packed``: the body alone (embeddings, blocks, final norm; no head) over
  the scorer's padded batches, and over padding-free packed rows
  (:mod:`loglik_map.scoring._packed`: windows end to end, variable-length FlashAttention);
  ``*_compiled``: the same with ``torch.compile(body, dynamic=True)`` (its warm-up seconds
  reported). Body MFU is ``2 · P_body · real tokens / time / peak``;
* ``hf_bf16_compiled``: the scorer with its body compiled in place;
* ``lens_bf16`` and ``lens_compiled``: :class:`loglik_map.LogitLensScorer` and a compiled
  per-layer (final norm → head → log-sum-exp − target logit) over the body's hidden states, each as
  a ratio to its matmul-FLOP floor ``(P_body + (L+1)·P_head) / (P_body + P_head)`` × ``hf_bf16``;
* ``exact_kl``: :func:`loglik_map.exact_kl` of the model against a perturbed copy, over the time
  of scoring the two separately;
* ``bnb_8bit`` / ``bnb_4bit``: bitsandbytes scoring of the saved float16 weights: speed, peak
  memory above the weights, spurious KL (bits/byte) against float16 scoring of the same weights;
* for ``qwen`` / ``gemma``: ``hf_bf16`` (fused) and ``hf_bf16_chunked``: tokens/s, MFU, peak memory.

Numbers checks (float32, TF32 off, on the first ``--check-texts`` texts): packed vs the scorer,
compiled vs the scorer, the compiled lens vs the lens scorer, max |Δ| nats per text; each optimisation
is worth keeping only if its |Δ| ≤ 1e-3 and it is faster.

``--device cpu --shapes tiny,tiny-vocab`` runs every row on a CPU in seconds (float32; bitsandbytes
on CPU; the packed attention falls back to one SDPA call per window): a dry run of the script and
its numbers checks, not a benchmark.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_gpu as base  # noqa: E402  (the shared builders, timers and peak-rate measurement)

#: Shapes beyond bench_gpu.SHAPES: (d, layers, heads, d_ff), with their own vocabulary.
LARGE_VOCAB = {"qwen": ((1536, 28, 12, 8960), 151936), "gemma": ((2304, 26, 8, 9216), 256000),
               "tiny-vocab": ((64, 2, 2, 256), 20000)}
LN2 = math.log(2)


def build(shape: str, vocab: int, device: Any) -> Any:
    if shape in LARGE_VOCAB:
        dims, vocab = LARGE_VOCAB[shape]
        base.SHAPES.setdefault(shape, dims)
    return base.build_model(shape, vocab, device)


def body_of(model: Any) -> Any:
    return model.base_model


def spurious_kl(values: Any, reference: Any, b_bar: float) -> float:
    """The map's KL estimate between two scorings of the same model, bits/byte."""
    d = np.asarray(values) - np.asarray(reference)
    return float(np.var(d) / (2 * b_bar * LN2))


def run_body(model: Any, windows: list, budget: int, packed: bool) -> int:
    """One pass of the body over every window: padded batches or packed rows; real tokens."""
    import torch

    from loglik_map.scoring import _packed
    from loglik_map.scoring._windows import plan_batches

    device = next(model.parameters()).device
    body = body_of(model)
    with torch.inference_mode():
        if packed:
            _packed._register()
            previous = model.config._attn_implementation
            model.set_attn_implementation(_packed.ATTENTION)
            try:
                for row in _packed.pack_windows(windows, budget):
                    lengths = [len(windows[i].ids) for i in row]
                    ids = torch.tensor([t for i in row for t in windows[i].ids], device=device)[None]
                    pos = torch.cat([torch.arange(n, device=device) for n in lengths])[None]
                    cu = torch.tensor(np.concatenate([[0], np.cumsum(lengths)]), device=device, dtype=torch.int32)
                    body(input_ids=ids, position_ids=pos, cu_seq_lens_q=cu, cu_seq_lens_k=cu,
                         max_length_q=max(lengths), max_length_k=max(lengths), use_cache=False)
            finally:
                model.set_attn_implementation(previous)
        else:
            for batch in plan_batches(windows, budget):
                width = max(len(windows[i].ids) for i in batch)
                ids = torch.zeros(len(batch), width, dtype=torch.long, device=device)
                mask = torch.zeros_like(ids)
                for r, i in enumerate(batch):
                    n = len(windows[i].ids)
                    ids[r, :n] = torch.tensor(windows[i].ids, device=device)
                    mask[r, :n] = 1
                body(input_ids=ids, attention_mask=mask, use_cache=False)
    return sum(len(w.ids) for w in windows)


def lens_compiled_sums(model: Any, windows: list, budget: int, fn: Any) -> np.ndarray:
    """Per layer × window sums of log p(target), nats, from the body's hidden states and ``fn``."""
    import torch

    from loglik_map.scoring._windows import plan_batches

    device = next(model.parameters()).device
    layers = model.config.num_hidden_layers
    norm = model.base_model.final_layer_norm
    head = model.get_output_embeddings().weight
    out = np.zeros((layers + 1, len(windows)))
    with torch.inference_mode():
        for batch in plan_batches(windows, budget):
            width = max(len(windows[i].ids) for i in batch)
            ids = torch.zeros(len(batch), width, dtype=torch.long, device=device)
            mask = torch.zeros_like(ids)
            for r, i in enumerate(batch):
                ids[r, :len(windows[i].ids)] = torch.tensor(windows[i].ids, device=device)
                mask[r, :len(windows[i].ids)] = 1
            states = model.base_model(input_ids=ids, attention_mask=mask, output_hidden_states=True,
                                      use_cache=False).hidden_states
            keep = mask[:, 1:].bool()
            targets = ids[:, 1:][keep]
            for k, h in enumerate(states):
                h = h[:, :-1][keep]
                logp = fn(h, norm.weight, norm.bias, norm.eps, head, targets, k == layers)
                sums = torch.zeros(len(batch), dtype=torch.float64, device=device)
                rows = torch.arange(len(batch), device=device)[:, None].expand_as(keep)[keep]
                sums.index_add_(0, rows, logp.double())
                for r, i in enumerate(batch):
                    out[k, i] = float(sums[r])
    return out


def lens_layer(h: Any, w: Any, b: Any, eps: float, head: Any, targets: Any, last: bool) -> Any:
    """log p(target) at one layer: final norm (not on the last state, already normed), head, float32 lse."""
    import torch

    x = h if last else torch.nn.functional.layer_norm(h, (h.shape[-1],), w, b, eps)
    logits = (x @ head.T).float()
    return logits.gather(-1, targets[:, None])[:, 0] - torch.logsumexp(logits, dim=-1)


def run_shape(shape: str, args: argparse.Namespace, tok: Any, texts: Any, device: Any, peak: float,
              deadline: float, log: Any) -> dict:
    import torch

    import loglik_map as lm

    quiet = lm.scoring.Execution(progress=False)

    cpu = device.type == "cpu"
    half = torch.float32 if cpu else torch.bfloat16
    vocab = max(len(tok), base.PYTHIA_VOCAB if not shape.startswith("tiny") else len(tok))
    model32 = build(shape, vocab, device)
    params = base.parameter_counts(model32)
    layers = model32.config.num_hidden_layers
    out: dict[str, Any] = {"shape": shape, "params": params, "vocab": model32.config.vocab_size, "rows": {},
                           "checks": {}}
    reset, read = base.peak_memory(device)
    timer = base.Timer(device)
    body_flops = 2 * params["body"]
    full_flops = 2 * (params["body"] + params["head"])
    lens_flops = 2 * (params["body"] + (layers + 1) * params["head"])

    def record(name: str, seconds: float, tokens: int, flops: int, **extra: Any) -> None:
        row = {"seconds": seconds, "tokens": tokens, "tokens_per_s": tokens / seconds,
               "mfu": flops * tokens / seconds / (peak * 1e12), "peak_mem_gib": read(), **extra}
        out["rows"][name] = row
        log(f"  {shape} {name}: {seconds:.3f} s, {row['tokens_per_s']:.0f} tok/s, MFU {row['mfu']:.1%}, "
            f"peak {row['peak_mem_gib']:.2f} GiB" + "".join(f", {k} {v}" for k, v in extra.items()
                                                            if not isinstance(v, list)))

    def attempt(name: str, fn: Any) -> None:
        if time.perf_counter() > deadline:
            log(f"  {shape} {name}: time budget spent, skipped")
            return
        try:
            fn()
        except Exception as err:
            log(f"  {shape} {name} FAILED: {type(err).__name__}: {err}\n{traceback.format_exc()}")
            out["rows"][name] = {"failed": f"{type(err).__name__}: {err}"}

    model = copy.deepcopy(model32).to(half)
    scorer = lm.HFScorer(model, tokenizer=tok, name=f"{shape}-bf16", execution=quiet)
    windows = [w for e in scorer.encode(texts) for w in e.windows]
    real, padded, budget = base.scorer_padding(scorer, texts)
    state: dict[str, Any] = {}

    def baseline() -> None:
        scorer.score(texts[:32])
        reset()
        seconds, _, _ = timer.best(lambda: scorer.score(texts), args.repeat)
        state["hf_bf16"] = seconds
        record("hf_bf16", seconds, real, full_flops, padding=round(padded / real, 4), batch_tokens=budget)

    def chunked() -> None:
        s = lm.HFScorer(model, tokenizer=tok, name=f"{shape}-bf16-chunked",
                        execution=lm.scoring.Execution(unembed="chunked", progress=False))
        s.score(texts[:32])
        reset()
        seconds, _, _ = timer.best(lambda: s.score(texts), args.repeat)
        record("hf_bf16_chunked", seconds, real, full_flops)

    def bodies() -> None:
        for packed in (False, True):
            name = "body_packed" if packed else "body_padded"
            run_body(model, windows[:32], budget, packed)
            reset()
            seconds, tokens, _ = timer.best(lambda p=packed: run_body(model, windows, budget, p), args.repeat)
            record(name, seconds, tokens, body_flops)
        if args.compile:
            original = model.base_model.forward
            t0 = time.perf_counter()
            model.base_model.compile(dynamic=True)
            for packed in (False, True):
                name = "body_packed_compiled" if packed else "body_padded_compiled"
                t0 = time.perf_counter()
                run_body(model, windows[:64], budget, packed)  # warm-up: compilation
                warm = time.perf_counter() - t0
                reset()
                seconds, tokens, _ = timer.best(lambda p=packed: run_body(model, windows, budget, p), args.repeat)
                record(name, seconds, tokens, body_flops, warmup_s=round(warm, 2))
            compiled = lm.HFScorer(model, tokenizer=tok, name=f"{shape}-bf16-compiled", execution=quiet)
            compiled.score(texts[:64])
            reset()
            seconds, _, _ = timer.best(lambda: compiled.score(texts), args.repeat)
            record("hf_bf16_compiled", seconds, real, full_flops)
            model.base_model._compiled_call_impl = None  # back to eager for the rows below
            model.base_model.forward = original

    def lens() -> None:
        s = lm.LogitLensScorer(model, tokenizer=tok, name=f"{shape}-lens", execution=quiet)
        s.score(texts[:32])
        reset()
        seconds, _, _ = timer.best(lambda: s.score(texts), args.repeat)
        floor = lens_flops / full_flops
        ratio = seconds / state["hf_bf16"] if "hf_bf16" in state else float("nan")
        record("lens_bf16", seconds, real, lens_flops, floor=round(floor, 3), of_floor=round(ratio / floor, 3))
        fn = torch.compile(lens_layer, dynamic=True) if args.compile else lens_layer
        lens_compiled_sums(model, windows[:32], budget, fn)
        reset()
        seconds, _, _ = timer.best(lambda: lens_compiled_sums(model, windows, budget, fn), args.repeat)
        ratio = seconds / state["hf_bf16"] if "hf_bf16" in state else float("nan")
        record("lens_compiled", seconds, real, lens_flops, of_floor=round(ratio / floor, 3))

    def exact() -> None:
        other = copy.deepcopy(model32)
        with torch.no_grad():
            for p in other.parameters():
                p.add_(0.01 * torch.randn_like(p) * p.std())
        other = other.to(half)
        a = lm.HFScorer(model, tokenizer=tok, name="a", execution=quiet)
        b = lm.HFScorer(other, tokenizer=tok, name="b", execution=quiet)
        sub = texts[:args.exact_texts]
        lm.exact_kl(a, b, sub[:8])
        a.score(sub[:8]), b.score(sub[:8])
        t_sep, _, _ = timer.best(lambda: (a.score(sub), b.score(sub)), 1)
        reset()
        t_exact, _, _ = timer.best(lambda: lm.exact_kl(a, b, sub), 1)
        n = sum(len(w.ids) for e in a.encode(sub) for w in e.windows)
        record("exact_kl", t_exact, n, 2 * full_flops, over_separate=round(t_exact / t_sep, 3))

    def bnb() -> None:
        folder = Path(tempfile.mkdtemp(prefix="bench-bnb-"))
        fp16 = torch.float32 if cpu else torch.float16
        copy.deepcopy(model32).to(fp16).save_pretrained(folder / "model")
        tok.save_pretrained(folder / "model")
        sub = texts[:args.check_texts]
        ref = lm.HFScorer(str(folder / "model"), name="fp16", loading=lm.scoring.Loading(dtype=fp16, device=str(device)),
                          execution=quiet).score(sub).values[0]
        b_bar = float(np.mean(sub.n_bytes))
        for q in ("8bit", "4bit"):
            s = lm.HFScorer(str(folder / "model"), name=q, loading=lm.scoring.Loading(device=str(device), quantization=q),
                            execution=quiet)
            s.score(sub[:8])
            reset()
            seconds, matrix, _ = timer.best(lambda s=s: s.score(sub), 1)
            n = sum(len(w.ids) for e in s.encode(sub) for w in e.windows)
            record(f"bnb_{q}", seconds, n, full_flops,
                   spurious_kl_bits_per_byte=float(f"{spurious_kl(matrix.values[0], ref, b_bar):.3g}"))

    def checks() -> None:
        """float32 numbers: packed, compiled body, compiled lens against the scorers."""
        if not cpu:
            torch.backends.cuda.matmul.allow_tf32 = False
            torch.backends.cudnn.allow_tf32 = False
        sub = texts[:args.check_texts]
        s32 = lm.HFScorer(model32, tokenizer=tok, name="fp32", execution=quiet)
        want = s32.score(sub).values[0]
        from loglik_map.scoring import _packed

        win = [w for e in s32.encode(sub) for w in e.windows]
        owner = np.array([w.text_index for w in win])
        packed = np.bincount(owner, _packed.packed_logprob_sums(model32, win, budget), minlength=len(sub))
        out["checks"]["packed_vs_scorer_nats"] = float(np.max(np.abs(packed - want)))
        lens_want = lm.LogitLensScorer(model32, tokenizer=tok, name="fp32", execution=quiet).score(sub).values
        fn = torch.compile(lens_layer, dynamic=True) if args.compile else lens_layer
        lens = np.stack([np.bincount(owner, row, minlength=len(sub))
                         for row in lens_compiled_sums(model32, win, budget, fn)])
        out["checks"]["lens_compiled_vs_lens_scorer_nats"] = float(np.max(np.abs(lens - lens_want)))
        if args.compile:
            c32 = copy.deepcopy(model32)
            c32.base_model.compile(dynamic=True)
            got = lm.HFScorer(c32, tokenizer=tok, name="fp32c", execution=quiet).score(sub).values[0]
            out["checks"]["compiled_vs_scorer_nats"] = float(np.max(np.abs(got - want)))
        log(f"  {shape} float32 checks (max |Δ| nats/text): {out['checks']}")

    attempt("hf_bf16", baseline)
    if shape in LARGE_VOCAB:
        attempt("hf_bf16_chunked", chunked)
    else:
        attempt("body", bodies)
        attempt("lens", lens)
        attempt("exact_kl", exact)
        if args.bnb:
            attempt("bnb", bnb)
    attempt("checks", checks)
    if not cpu:  # the models go with this frame
        torch.cuda.empty_cache()
    return out


def report(results: dict) -> str:
    lines = [f"# bench_gpu_next — {results['device']}", "", f"command: `{results['command']}`", "",
             f"peak bf16 matmul: {results['peak_tflops']:.0f} TFLOP/s", ""]
    for shape in results["shapes"]:
        lines += [f"## {shape['shape']} (vocab {shape['vocab']:,})", "",
                  "| row | s | tok/s | MFU | peak GiB | notes |", "|---|---|---|---|---|---|"]
        for name, row in shape["rows"].items():
            if "failed" in row:
                lines.append(f"| {name} | failed | | | | {row['failed']} |")
                continue
            notes = ", ".join(f"{k} {v}" for k, v in row.items()
                              if k not in ("seconds", "tokens", "tokens_per_s", "mfu", "peak_mem_gib"))
            lines.append(f"| {name} | {row['seconds']:.3f} | {row['tokens_per_s']:,.0f} | {row['mfu']:.1%} | "
                         f"{row['peak_mem_gib']:.2f} | {notes} |")
        lines += ["", "float32 checks, max |Δ| nats/text: " + json.dumps(shape["checks"]), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--shapes", default="1b,410m,160m,qwen,gemma",
                    help="comma-separated: 160m, 410m, 1b, qwen, gemma, tiny, tiny-vocab")
    ap.add_argument("--texts", type=int, default=2000)
    ap.add_argument("--check-texts", type=int, default=64, help="texts of the float32 numbers checks and bnb rows")
    ap.add_argument("--exact-texts", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--tokenizer", help="tokenizer folder or .tiktoken file (default: BPE trained on the texts)")
    ap.add_argument("--vocab", type=int, default=50257)
    ap.add_argument("--no-compile", dest="compile", action="store_false", help="skip the torch.compile rows")
    ap.add_argument("--no-bnb", dest="bnb", action="store_false", help="skip the bitsandbytes rows")
    ap.add_argument("--budget", type=float, default=420.0, help="seconds after which remaining rows are skipped")
    ap.add_argument("--out", type=Path, default=Path("bench-gpu-next"))
    args = ap.parse_args(argv)

    import torch

    import loglik_map as lm

    device = torch.device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    logf = (args.out / "log.txt").open("w")

    def log(msg: str) -> None:
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    start = time.perf_counter()
    all_texts = lm.load_texts("mini").texts + lm.load_texts("train").texts
    texts = lm.TextSet(all_texts[:args.texts])
    tok, tok_label = base.load_tokenizer(args.tokenizer, list(texts), args.vocab)
    peak = base.measure_peak_tflops(device) if device.type == "cuda" else 1.0
    results: dict[str, Any] = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
                               "command": "python benchmarks/bench_gpu_next.py " + " ".join(argv or sys.argv[1:]),
                               "tokenizer": tok_label, "peak_tflops": peak, "shapes": []}
    for shape in args.shapes.split(","):
        log(f"shape {shape}")
        results["shapes"].append(run_shape(shape, args, tok, texts, device, peak, start + args.budget, log))
    results["seconds"] = time.perf_counter() - start
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    (args.out / "results.md").write_text(report(results))
    log(f"done in {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
