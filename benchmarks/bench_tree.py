"""Trees with confidence (issue #23): ``ModelMap.tree`` with n_boot = 1000 × 10 scales on 100 models × 10,000 texts.

Run by hand (not a test), alone, with the BLAS threads the goal names (2 cores):

    OPENBLAS_NUM_THREADS=2 OMP_NUM_THREADS=2 python benchmarks/bench_tree.py
    OPENBLAS_NUM_THREADS=2 python benchmarks/bench_tree.py --models 100 --texts 10000 --n-boot 1000

The matrix has families (10 models sharing a low-rank text component) so the tree has real and
unsupported clades. Reported: wall time, the process's CPU time (on a shared machine the CPU
time over the threads is the better guide), the load average when it started, and the split of
one scale's work between the count products (BLAS) and the replicate trees (scipy + counting).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def synthetic_map(K: int, N: int, seed: int = 0):
    import loglik_map as lm

    rng = np.random.default_rng(seed)
    n_bytes = rng.integers(257, 1025, size=N)
    text_effect = -n_bytes * rng.uniform(0.4, 0.9, size=N)
    n_fam = max(K // 10, 1)
    fam = np.arange(K) % n_fam
    factors = rng.normal(size=(n_fam, 8)) @ rng.normal(size=(8, N))
    L = text_effect[None, :] + 0.3 * factors[fam] + rng.normal(scale=3.0, size=(K, N)) - rng.uniform(0, 50, (K, 1))
    m = lm.LogLikelihoodMatrix(L, models=[f"f{f}-m{i}" for i, f in enumerate(fam)],
                               texts=[f"t{k}" for k in range(N)], n_bytes=n_bytes)
    return lm.ModelMap(m)


def split_one_scale(mm, n_rep: int) -> dict[str, float]:
    """Seconds for ``n_rep`` replicates at r = 1: the count products, then the trees and counting."""
    from loglik_map.core._tree import _distances, clade_masks, linkage_function, replicate_kl

    Q = mm.points.values
    K, N = Q.shape
    rng = np.random.default_rng(0)
    W = np.stack([np.bincount(rng.integers(0, N, size=N), minlength=N) for _ in range(n_rep)]).astype(float)
    t0 = time.perf_counter()
    kl = replicate_kl(Q, mm.matrix.n_bytes.astype(float), W, np.triu_indices(K, 1))
    t1 = time.perf_counter()
    link = linkage_function("average")
    targets: dict[int, int] = {}
    for row in _distances(kl, "kl"):
        for mask in clade_masks(link(row), K):
            targets.get(mask)
    t2 = time.perf_counter()
    return {"products_s_per_1000": (t1 - t0) * 1000 / n_rep, "trees_s_per_1000": (t2 - t1) * 1000 / n_rep}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=100)
    parser.add_argument("--texts", type=int, default=10_000)
    parser.add_argument("--n-boot", type=int, default=1000)
    args = parser.parse_args()
    mm = synthetic_map(args.models, args.texts)
    load = os.getloadavg()[0]
    split = split_one_scale(mm, 200)
    wall, cpu = time.perf_counter(), time.process_time()
    tree = mm.tree(n_boot=args.n_boot, seed=0, progress=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({
        "models": args.models, "texts": args.texts, "n_boot": args.n_boot, "scales": int(tree.scales.size),
        "replicates": args.n_boot * int(tree.scales.size), "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
        "load_average_1min_at_start": round(load, 2),
        "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "default")),
        **{k: round(v, 2) for k, v in split.items()},
        "clades_au_ge_0.95": len(tree.significant()),
    }, indent=1))


if __name__ == "__main__":
    main()
