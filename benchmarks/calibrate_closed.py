"""Closed models placed from their samples, on Markov chains with exact KL (issue 25).

A closed chain q is only sampled; open chains score the samples; ``place_by_samples`` estimates
KL(q‖p_i) − KL(q‖p_ref). For several sample sizes n this prints the coverage of nominal 95 %
intervals of ``kl_excess`` (against the exact differences for the sampled lengths, every open
chain against two references) and how often the nearest open chain is the exact nearest, with
binomial SEs. Run by hand (not a test; ~1 minute on 2 CPU cores):

    python benchmarks/calibrate_closed.py [--replicates 400]

The unit test tests/core/test_closed_models.py checks a smaller version (n = 300, 50 draws).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import loglik_map as lm
from loglik_map.synthetic import make_closed_markov_example


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=400)
    args = parser.parse_args()
    base = make_closed_markov_example(n_open=4, spreads=[0.3, 0.3, 0.4, 0.55], seed=3)
    exact = base.exact_kl.values
    print(f"open chains' exact KL(q||p_i), bits/byte (lengths 32-128): {np.round(exact, 4).tolist()}")
    true_nearest = str(base.exact_kl.idxmin().item())
    print("| n samples | 95 % coverage of kl_excess | nearest found | median SE of the nearest gap (bits/byte) |")
    print("|---|---|---|---|")
    for n in (100, 300, 1000):
        rng = np.random.default_rng(n)
        covered, nearest, gap_se = [], [], []
        started = time.perf_counter()
        for _ in range(args.replicates):
            ex = make_closed_markov_example(closed=base.closed, models=base.models, n_samples=n, min_length=32,
                                            max_length=128, seed=rng)
            for ref in ("open0", "open3"):
                placed = lm.place_by_samples(ex.matrix, reference=ref)
                truth = ex.exact_excess(ref).values
                inside = (placed.ci_low.values <= truth) & (truth <= placed.ci_high.values)
                covered.extend(np.delete(inside, ex.matrix.models.tolist().index(ref)))
            placed = lm.place_by_samples(ex.matrix)
            nearest.append(placed.attrs["nearest"] == true_nearest)
            gap_se.append(float(np.sort(placed.se.values)[1]))
        c, f = np.mean(covered), np.mean(nearest)
        print(f"| {n} | {c:.3f} ± {np.sqrt(c * (1 - c) / len(covered)):.3f} | {f:.3f} ± "
              f"{np.sqrt(f * (1 - f) / len(nearest)):.3f} | {np.median(gap_se):.4f} |   ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
