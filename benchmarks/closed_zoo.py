"""A miniature-zoo model treated as closed (issue 25): sampled with ``generate`` on CPU, placed among
other zoo models from its samples alone, compared with the exact KLs on the same samples.

    python benchmarks/closed_zoo.py [--zoo ~/.cache/loglik_map/zoo/<hash>] [--n-samples 300] [--new-tokens 127]

The closed model q is the final checkpoint of ``neox-s-seed0``; the open models are earlier
checkpoints of the same run, the other seed and the other sizes (all share the zoo's tokenizer,
so the exact KL can be computed — place_by_samples itself would not need that). Each sample
starts from the first token of a built-in text (no end-of-text context, so q's conditional is
the one the scorers evaluate) and runs a fixed number of tokens (no stop: eos_token_id=None),
at temperature 1 without truncation. "Exact" is KL(q‖p_i) from exact_kl on q's samples: the full
next-token KL at every position, summed over each sample (unbiased, far less noisy; it needs q's
logits). Samples whose decoded text re-tokenizes differently are counted (they are scored as
their canonical tokenization, as any text is).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import loglik_map as lm


def _last(zoo: Path, run: str, back: int = 0) -> Path:
    steps = sorted(zoo.glob(f"runs/{run}/step*"), key=lambda p: int(p.name[4:]))
    return steps[-1 - back]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", default=None)
    parser.add_argument("--n-samples", type=int, default=300)
    parser.add_argument("--new-tokens", type=int, default=127)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = Path("~/.cache/loglik_map/zoo").expanduser()
    zoo = Path(args.zoo).expanduser() if args.zoo else sorted(root.glob("*/runs"))[0].parent
    closed = _last(zoo, "neox-s-seed0")
    opens = {"s-seed0 step-16": _last(zoo, "neox-s-seed0", 1), "s-seed0 step-64": _last(zoo, "neox-s-seed0", 4),
             "s-seed1 final": _last(zoo, "neox-s-seed1")}
    for size in ("xs", "m"):
        if list(zoo.glob(f"runs/neox-{size}-seed0/step*")):
            opens[f"{size}-seed0 final"] = _last(zoo, f"neox-{size}-seed0")
    tok = AutoTokenizer.from_pretrained(closed)
    q = AutoModelForCausalLM.from_pretrained(closed, dtype=torch.float32).eval()
    starts = [tok(t).input_ids[0] for t in lm.load_texts("mini").sample(args.n_samples, seed=args.seed)]
    torch.manual_seed(args.seed)
    started = time.perf_counter()
    first = torch.tensor(starts)[:, None]
    with torch.no_grad():
        ids = q.generate(input_ids=first, attention_mask=torch.ones_like(first), do_sample=True,
                         max_new_tokens=args.new_tokens, top_k=0, top_p=1.0, temperature=1.0, pad_token_id=0,
                         eos_token_id=None)
    samples = [tok.decode(row, clean_up_tokenization_spaces=False) for row in ids.tolist()]
    canonical = np.mean([tok(s).input_ids == row for s, row in zip(samples, ids.tolist())])
    print(f"closed: {closed}; {args.n_samples} samples of {args.new_tokens + 1} tokens in "
          f"{time.perf_counter() - started:.0f} s; {canonical:.1%} re-tokenize to the sampled tokens")
    texts = lm.TextSet.from_samples(samples, model="neox-s-seed0 final", temperature=1.0, top_p=1.0, top_k=0)
    quiet = lm.scoring.Execution(progress=False)
    matrix = lm.LogLikelihoodMatrix.concat([lm.HFScorer(str(p), name=name, execution=quiet).score(texts)
                                            for name, p in opens.items()])
    placed = lm.place_by_samples(matrix)
    draws = texts.text_coords()["n_draws"].astype(float)
    scale = float(draws @ texts.n_bytes) * np.log(2)
    exact = {name: float(draws @ lm.exact_kl(str(closed), str(p), texts).kl_ab.values) / scale
             for name, p in opens.items()}
    ref = placed.attrs["reference"]
    print(f"mean sample length {texts.n_bytes.mean():.0f} bytes; reference (nearest on the samples): {ref}; "
          f"exact nearest: {min(exact, key=exact.get)}")
    print("| open model | exact KL(q‖p) | exact difference | kl_excess ± SE | (estimate − exact) / SE | cross-entropy |")
    print("|---|---|---|---|---|---|")
    for name in opens:
        est, se = float(placed.kl_excess.sel(model=name)), float(placed.se.sel(model=name))
        truth = exact[name] - exact[ref]
        dev = "—" if name == ref else f"{(est - truth) / se:+.1f}"
        print(f"| {name} | {exact[name]:.4f} | {truth:.4f} | {est:.4f} ± {se:.4f} | {dev} | "
              f"{float(placed.cross_entropy.sel(model=name)):.3f} |")


if __name__ == "__main__":
    main()
