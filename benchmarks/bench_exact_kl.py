"""Cost of exact token-level KL (``loglik_map.exact_kl``) against scoring the two models separately.

Run by hand (not a test), in the project's virtual environment:

    python benchmarks/bench_exact_kl.py [--texts 240] [--hidden 256] [--layers 6] [--vocab 8192]
                                        [--repeat 3] [--device cpu] [--dtype float32]

Builds the GPT-NeoX of ``bench_scoring.py`` (random weights, byte-level BPE tokenizer trained on
Python's pydoc topics, ~1 KB texts) and a second model with the same tokenizer whose weights are
the first's plus 5 % noise (a "quantized copy"), then, with both models loaded and warmed up:

* ``separate``: ``HFScorer(a).score(texts)`` then ``HFScorer(b).score(texts)`` — the two
  log-likelihood vectors the model map needs;
* ``exact``: ``exact_kl(a, b, texts)`` — both directions over the full vocabulary, the true
  token's log-probabilities, top-token agreement, per token and per text;
* ``lens``: ``exact_kl`` between two logit-lens layers of model a (one forward pass per batch).

Times are the best of ``--repeat`` rounds, the three methods interleaved in one process (so that
the load of a shared machine weighs on all of them alike); peak memory is measured for each
method in a fresh process (resident memory above the level before the call,
``/proc/self/clear_refs``). Checks that ``exact``'s log-likelihoods equal ``separate``'s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
from _memory import timed_runs  # noqa: E402
from bench_scoring import build, parse_arguments  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def perturbed_copy(folder: Path, scale: float = 0.05) -> None:
    """Model b: model a's weights times (1 + scale · N(0, 1)), same tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder / "model")
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1 + scale * torch.randn(p.shape, generator=g))
    model.save_pretrained(folder / "model_b")
    AutoTokenizer.from_pretrained(folder / "model").save_pretrained(folder / "model_b")


def runners(folder: Path, device: str, dtype: str) -> dict:
    """The three measured calls, models loaded and warmed up."""
    import torch

    import loglik_map as lm

    torch.set_num_threads(os.cpu_count() or 1)
    texts = lm.TextSet.from_jsonl(folder / "texts.jsonl")
    settings = dict(loading=lm.scoring.Loading(dtype=dtype, device=device), execution=lm.scoring.Execution(batch_tokens=8192))
    a = lm.HFScorer(str(folder / "model"), name="a", **settings)
    b = lm.HFScorer(str(folder / "model_b"), name="b", **settings)
    n_layers = a._load().model.config.num_hidden_layers

    def separate(t=texts):
        return {"logp_a": a.score(t).values[0].tolist(), "logp_b": b.score(t).values[0].tolist()}

    def exact(t=texts):
        ds = lm.exact_kl(a, b, t)
        return {"logp_a": ds.logp_a.values.tolist(), "logp_b": ds.logp_b.values.tolist(),
                "kl": float(ds.kl_sym_bits_per_byte), "tokens": ds.sizes["token"]}

    def lens(t=texts):
        return {"logp_b": lm.exact_kl(a, a, t, layer_a=n_layers - 1, layer_b=n_layers).logp_b.values.tolist()}

    run = {"separate": separate, "exact": exact, "lens": lens}
    for f in run.values():
        f(texts[:4])  # load + warm up
    return run


def worker(method: str, folder: Path, repeat: int, device: str, dtype: str) -> dict:
    """``timing``: every method ``repeat`` times, interleaved in one process (a shared machine's load
    then weighs on all alike), best time of each; otherwise one run of ``method`` in this fresh
    process for its peak memory."""
    import time

    run = runners(folder, device, dtype)
    if method != "timing":
        out = timed_runs(run[method], 1, device)
        return {"peak_extra_mib": out["peak_extra_mib"], **out["values"]}
    times: dict[str, list[float]] = {m: [] for m in run}
    for _ in range(repeat):
        for m, f in run.items():
            t0 = time.perf_counter()
            f()
            times[m].append(time.perf_counter() - t0)
    return {m: {"seconds": min(t), "all_seconds": t} for m, t in times.items()}


def main() -> None:
    args = parse_arguments(__doc__)
    if args.worker:
        method, folder = args.worker
        Path(folder, f"{method}.json").write_text(json.dumps(worker(method, Path(folder), args.repeat, args.device,
                                                                    args.dtype)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build(folder, args.hidden, args.layers, args.vocab, args.texts)
        perturbed_copy(folder)
        info = json.loads((folder / "info.json").read_text())
        res = {}
        for m in ("separate", "exact", "lens", "timing"):
            print(f"running {m} ...", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, __file__, "--worker", m, str(folder), "--repeat", str(args.repeat),
                            "--device", args.device, "--dtype", args.dtype], check=True)
            res[m] = json.loads((folder / f"{m}.json").read_text())
    for m in ("separate", "exact", "lens"):
        res[m].update(res["timing"][m])
    sep, ex, lens = res["separate"], res["exact"], res["lens"]
    print(f"GPT-NeoX, {info['n_params'] / 1e6:.1f}M parameters (d={info['hidden']}, {info['layers']} layers, "
          f"vocab {info['vocab']}), {args.dtype} on {args.device}, {args.texts} texts of mean "
          f"{info['mean_bytes']:.0f} bytes ({ex['tokens']} scored tokens), {os.cpu_count()} CPU threads, "
          f"best of {args.repeat} runs interleaved\n")
    unit = "GPU" if args.device.startswith("cuda") else "RSS"
    print(f"| method | seconds | × separate scoring | peak extra MiB ({unit}) |")
    print("|---|---|---|---|")
    for label, r in (("HFScorer(a).score + HFScorer(b).score (separately)", sep),
                     ("exact_kl(a, b): both directions, Δp, top-token agreement", ex),
                     (f"exact_kl(a, a, layer_a={info['layers'] - 1}, layer_b={info['layers']}): two lens layers", lens)):
        print(f"| {label} | {r['seconds']:.2f} | {r['seconds'] / sep['seconds']:.2f}× | {r['peak_extra_mib']:.0f} |")
    diff = max(np.max(np.abs(np.subtract(ex["logp_a"], sep["logp_a"]))),
               np.max(np.abs(np.subtract(ex["logp_b"], sep["logp_b"]))))
    print(f"\nexact_kl's log-likelihoods vs the separate scorings: max abs diff {diff:.1e} nats; "
          f"exact symmetric KL {ex['kl']:.4g} bits/byte")


if __name__ == "__main__":
    main()
