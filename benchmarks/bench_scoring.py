"""Scoring throughput: HFScorer vs a one-text-at-a-time reference loop vs lm-evaluation-harness.

Run by hand (not a test), in the project's virtual environment:

    python benchmarks/bench_scoring.py [--texts 240] [--hidden 256] [--layers 6] [--vocab 8192]
                                       [--repeat 3] [--device cpu] [--dtype float32]

On a GPU node, ``--device cuda --dtype float16`` measures what the reference scorer ran (fp16,
one text at a time) against batched scoring; the model is then worth making larger too.

Builds a ~10M-parameter GPT-NeoX (random weights, fp32) with a byte-level BPE tokenizer trained
locally on Python's pydoc topics, saves it, and scores ~1 KB chunks of those topics (the
paper's chunking, docs: The method) loaded back through ``from_pretrained``:

* ``HFScorer`` (reference convention; and "bos" convention for the comparison with the harness),
* the reference loop of shimo-lab/modelmap (``tokenizer.encode``, one text, full logits,
  ``log_softmax``) — same numbers as the reference convention,
* lm-evaluation-harness ``HFLM.loglikelihood_rolling`` (if installed) — same numbers as the
  "bos" convention,
* ``LogitLensScorer`` (all layers) vs ``HFScorer`` (final layer only): time and peak memory,
* ``HFScorer`` with bfloat16 weights: its speed, and the spurious KL (bits/byte) between the
  bf16 and the float32 scoring of the same model.

Peak memory is the process's high-water mark above the resident size before the call
(``/proc/self/clear_refs`` reset), each measurement in a fresh subprocess.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import timed_runs

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")




def build(folder: Path, hidden: int, layers: int, vocab: int, n_texts: int) -> None:
    from pydoc_data.topics import topics

    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast

    import loglik_map as lm

    docs = [topics[k] for k in sorted(topics)]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(docs, trainers.BpeTrainer(vocab_size=vocab, special_tokens=["<|endoftext|>"],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                                      show_progress=False))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    torch.manual_seed(0)
    cfg = GPTNeoXConfig(vocab_size=len(fast), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=max(hidden // 64, 1), intermediate_size=4 * hidden,
                        max_position_embeddings=2048, bos_token_id=0, eos_token_id=0, initializer_range=0.1)
    model = GPTNeoXForCausalLM(cfg)
    model.save_pretrained(folder / "model")
    fast.save_pretrained(folder / "model")
    texts = lm.TextSet.from_corpus(docs).sample(n_texts, seed=42)
    texts.to_jsonl(folder / "texts.jsonl")
    n_params = sum(p.numel() for p in model.parameters())
    (folder / "info.json").write_text(json.dumps({"n_params": n_params, "hidden": hidden, "layers": layers,
                                                  "vocab": len(fast),
                                                  "mean_bytes": float(np.mean(texts.n_bytes))}))


def parse_arguments(doc: str) -> argparse.Namespace:
    """The model shape, text count, repeats, device and dtype options (shared with bench_exact_kl.py)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=240)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--vocab", type=int, default=8192)
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per method; the best is reported")
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    ap.add_argument("--worker", nargs=2, metavar=("METHOD", "FOLDER"), help=argparse.SUPPRESS)
    return ap.parse_args()


def worker(method: str, folder: Path, repeat: int, device: str, dtype: str) -> dict:
    """Time ``repeat`` runs of one method in this process; report the best (and every) time."""
    import torch

    import loglik_map as lm

    torch.set_num_threads(os.cpu_count() or 1)
    texts = lm.TextSet.from_jsonl(folder / "texts.jsonl")
    path = str(folder / "model")
    out: dict = {}
    if method in ("hf", "hf_bos", "hf_bf16", "lens"):
        cls = lm.LogitLensScorer if method == "lens" else lm.HFScorer
        scorer = cls(path, loading=lm.scoring.Loading(device=device, dtype="bfloat16" if method == "hf_bf16" else dtype),
                     windowing=lm.scoring.Windowing(convention="bos" if method == "hf_bos" else "reference"),
                     execution=lm.scoring.Execution(batch_tokens=8192))
        scorer.score(texts[:4])  # load + warm up
        enc = scorer.encode(texts)
        from loglik_map.scoring._windows import plan_batches

        windows = [w for e in enc for w in e.windows]
        batches = plan_batches(windows, scorer.execution.batch_tokens)
        real = sum(len(w.ids) for w in windows)
        out.update(tokens=real, padded_tokens=sum(len(b) * max(len(windows[i].ids) for i in b) for b in batches))

        def run():
            return scorer.score(texts).values.tolist()
    elif method == "reference":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype)).to(device).eval()
        tok = AutoTokenizer.from_pretrained(path)
        max_length = model.config.max_position_embeddings
        out["tokens"] = sum(len(tok.encode(t, truncation=True, max_length=max_length)) for t in texts)

        def run():
            values = []
            for text in texts:
                ids = tok.encode(text, return_tensors="pt", truncation=True, max_length=max_length).to(device)
                with torch.no_grad():
                    lp = torch.log_softmax(model(ids, use_cache=False).logits, dim=-1)
                values.append(float(sum(float(lp[0, i, ids[0, i + 1]]) for i in range(ids.shape[1] - 1))))
            return [values]
    elif method == "harness":
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM

        hflm = HFLM(pretrained=path, device=device, dtype=dtype, batch_size=16)
        reqs = [Instance(request_type="loglikelihood_rolling", doc={}, arguments=(t,), idx=i) for i, t in enumerate(texts)]
        out["tokens"] = sum(len(hflm.tok_encode(t)) + 1 for t in texts)

        def run():
            return [[float(r) for r in hflm.loglikelihood_rolling(reqs, disable_tqdm=True)]]
    else:
        raise SystemExit(f"unknown method {method!r}")
    out.update(timed_runs(run, repeat, device))
    return out


def main() -> None:
    args = parse_arguments(__doc__)
    if args.worker:
        method, folder = args.worker
        result = worker(method, Path(folder), args.repeat, args.device, args.dtype)
        Path(folder, f"{method}.json").write_text(json.dumps(result))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build(folder, args.hidden, args.layers, args.vocab, args.texts)
        info = json.loads((folder / "info.json").read_text())
        try:
            import lm_eval  # noqa: F401

            methods = ["hf", "hf_bos", "hf_bf16", "reference", "harness", "lens"]
        except ImportError:
            methods = ["hf", "hf_bos", "hf_bf16", "reference", "lens"]
        res = {}
        for m in methods:
            print(f"running {m} ...", file=sys.stderr, flush=True)
            subprocess.run([sys.executable, __file__, "--worker", m, str(folder), "--repeat", str(args.repeat),
                            "--device", args.device, "--dtype", args.dtype], check=True)
            res[m] = json.loads((folder / f"{m}.json").read_text())
    print(f"GPT-NeoX, {info['n_params'] / 1e6:.1f}M parameters (d={info['hidden']}, {info['layers']} layers, "
          f"vocab {info['vocab']}), {args.dtype} on {args.device}, {args.texts} texts of mean "
          f"{info['mean_bytes']:.0f} bytes, {os.cpu_count()} CPU threads, best of {args.repeat} runs\n")
    print(f"| method | seconds | tokens/s | padded / real tokens | max abs diff (nats) vs | peak extra MiB "
          f"({'GPU' if args.device.startswith('cuda') else 'RSS'}) |")
    print("|---|---|---|---|---|---|")
    ref = np.array(res["reference"]["values"][0])
    bos = np.array(res["hf_bos"]["values"][0])
    hf = np.array(res["hf"]["values"][0])
    rows = [("HFScorer, reference convention", "hf", ref, "reference loop"),
            ("reference loop (shimo-lab procedure)", "reference", ref, "itself"),
            ("HFScorer, bos convention", "hf_bos", None, ""),
            ("HFScorer, bfloat16 weights", "hf_bf16", hf, f"HFScorer {args.dtype}"),
            ("lm-eval loglikelihood_rolling", "harness", bos, "HFScorer bos"),
            ("LogitLensScorer, all layers", "lens", hf, "HFScorer (last layer)")]
    for label, key, against, against_label in rows:
        if key not in res:
            continue
        r = res[key]
        vals = np.array(r["values"][-1])
        diff = f"{np.max(np.abs(vals - against)):.1e} vs {against_label}" if against is not None else "—"
        pad = f"{r['padded_tokens'] / r['tokens']:.3f}" if "padded_tokens" in r else "—"
        print(f"| {label} | {r['seconds']:.2f} | {r['tokens'] / r['seconds']:.0f} | {pad} | {diff} | "
              f"{r['peak_extra_mib']:.0f} |")
    speedups = [f"{res[other]['seconds'] / res[mine]['seconds']:.2f}× over {label}"
                for mine, other, label in (("hf", "reference", "the reference loop"),
                                           ("hf_bos", "harness", "lm-eval (both bos)")) if other in res]
    print(f"\nHFScorer speed-up: {', '.join(speedups)}")
    # the same model scored with bf16 weights, as a KL on the map's scale (var / (2 B̄ ln 2), docs: The method)
    dtype_kl = np.var(np.array(res["hf_bf16"]["values"][0]) - hf) / (2 * info["mean_bytes"] * np.log(2))
    print(f"bfloat16 weights: {res['hf']['seconds'] / res['hf_bf16']['seconds']:.2f}× the speed of {args.dtype}, "
          f"KL between the two scorings of one model {dtype_kl:.1e} bits/byte")
    body = 12 * info["hidden"] ** 2 * info["layers"]
    head = info["hidden"] * info["vocab"]
    floor = (body + (info["layers"] + 1) * head) / (body + head)
    print(f"logit lens / final-only time: {res['lens']['seconds'] / res['hf']['seconds']:.2f}× "
          f"(matmul FLOP floor for this shape: {floor:.2f}×); peak memory "
          f"{res['lens']['peak_extra_mib'] / max(res['hf']['peak_extra_mib'], 1):.2f}×")


if __name__ == "__main__":
    main()
