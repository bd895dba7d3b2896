"""How many positions to unembed at once: time of log p(target) for chunk sizes and vocabularies.

Run by hand (not a test), in the project's virtual environment:

    python benchmarks/bench_logit_chunks.py [--positions 30000] [--repeat 3]

For each shape (hidden size d, vocabulary V) it times ``loglik_map.scoring._unembed.target_logprobs``
(float32 logits chunk by chunk, gather, log-sum-exp) over the same random hidden states with
different rows per chunk, and prints the best of ``--repeat`` runs. The row marked ``*`` is what
``logit_rows`` picks on this device.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

SHAPES = ((256, 8192), (512, 32000), (512, 50304))
ROWS = (16, 32, 64, 128, 256, 512, 1024)


def main() -> None:
    import torch

    from loglik_map.scoring._unembed import Head, logit_rows, target_logprobs

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--positions", type=int, default=30000, help="scored positions per run (scaled down for large V)")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, best of {args.repeat} runs\n")
    print("| d | V | rows per chunk | MiB of logits per chunk | seconds | positions/s |")
    print("|---|---|---|---|---|---|")
    gen = torch.Generator().manual_seed(0)
    for d, vocab in SHAPES:
        n = max(2000, args.positions * 8192 // vocab)
        head = torch.nn.Linear(d, vocab, bias=False)
        with torch.no_grad():
            head.weight.copy_(torch.randn(vocab, d, generator=gen) * d**-0.5)
        hidden = torch.randn(n, d, generator=gen)
        targets = torch.randint(0, vocab, (n,), generator=gen)
        chosen = logit_rows(torch.device("cpu"), vocab)
        scorer_head = Head(head)
        results = []
        for rows in ROWS:
            times = []
            with torch.inference_mode():
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    out = target_logprobs(None, scorer_head, hidden, targets, rows_per_chunk=rows,
                                          method="chunked")  # no softcap/scale
                    times.append(time.perf_counter() - t0)
            results.append(out)
            mark = " *" if rows == chosen else ""
            print(f"| {d} | {vocab} | {rows}{mark} | {rows * vocab * 4 / 2**20:.1f} | {min(times):.3f} | "
                  f"{n / min(times):.0f} |")
        assert all(np.allclose(results[0].numpy(), r.numpy(), atol=1e-4) for r in results)


if __name__ == "__main__":
    main()
