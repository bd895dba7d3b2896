"""Cost of the scorers' self-check at load, against scoring 1,000 texts (target: < 2 %).

Run by hand (not a test), in the project's virtual environment:

    python benchmarks/bench_selfcheck.py [--texts 1000] [--hidden 256] [--layers 6] [--vocab 8192] [--repeat 3]

Builds the model of ``bench_scoring.py`` (GPT-NeoX, random weights, float32, byte-level BPE
tokenizer) and ~1 KB texts, loads it with :class:`loglik_map.HFScorer`, then times, in one
process: the self-check (trace of the head, the probe's reference passes one text at a time and
the fast path's batched passes; :meth:`~loglik_map.HFScorer.self_check`), and the scoring of
the texts once the check is done. Both are the best of ``--repeat`` runs (the check is rerun on
a new scorer sharing the loaded model). The same for :class:`loglik_map.LogitLensScorer`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_scoring import build, parse_arguments  # noqa: E402


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    args = parse_arguments(__doc__)
    import torch

    import loglik_map as lm

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        build(folder, args.hidden, args.layers, args.vocab, args.texts)
        texts = lm.TextSet.from_jsonl(folder / "texts.jsonl")
        path = str(folder / "model")
        rows = []
        quiet = lm.scoring.Execution(progress=False)
        for cls in (lm.HFScorer, lm.LogitLensScorer):
            first = cls(path, loading=lm.scoring.Loading(device=args.device, dtype=args.dtype), execution=quiet)
            loaded = first._load()
            windows = [w for e in first.encode(texts) for w in e.windows]

            def check(cls=cls, loaded=loaded, windows=windows) -> None:
                scorer = cls(loaded.model, tokenizer=loaded.tokenizer, name="m", execution=quiet)
                scorer.self_check(windows)

            t_check = _best(check, args.repeat)
            first.self_check(windows)
            t_score = _best(lambda first=first: first.score(texts), args.repeat)
            path_label = first.self_check().path.label
            rows.append((cls.__name__, t_check, t_score, path_label))
        n_tokens = sum(len(w.ids) for w in windows)
        print(f"GPT-NeoX d={args.hidden}, {args.layers} layers, vocab {args.vocab}, {args.dtype} on {args.device}; "
              f"{len(texts)} texts, {n_tokens} tokens; {torch.get_num_threads()} threads; best of {args.repeat}\n")
        scale = 1000 / len(texts)  # scoring time grows with the texts, the check's does not
        print("| scorer | self-check s | scoring s | check / scoring | check / 1,000-text run | path |")
        print("|---|---|---|---|---|---|")
        for name, t_check, t_score, label in rows:
            print(f"| {name} | {t_check:.3f} | {t_score:.2f} | {t_check / t_score:.2%} | "
                  f"{t_check / (t_score * scale):.2%} | {label} |")


if __name__ == "__main__":
    main()
