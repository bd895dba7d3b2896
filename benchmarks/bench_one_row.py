"""One-row queries on a large map (issue 21): time and peak memory of ``kl(a)`` and its kin.

Run by hand (not a test), e.g.:

    python benchmarks/bench_one_row.py                       # K = 20,000 models, N = 1,000 texts
    python benchmarks/bench_one_row.py --models 4000 --all-pairs   # also kl() (K × K) for contrast

A query about one model (its KL and SE to every model, its nearest neighbours, a new model's
place) needs K numbers; before issue 21, ``kl(a)`` and ``kl_se(a)`` computed every pair (three
K × K float64 arrays and more: 22 GiB at K = 20,000) to return one row, and kept them for the
next call; the first row is timed on a fresh map (build included). Each query is timed (best of
``--repeat``, after a warm-up call) and its peak memory measured twice: the largest numpy
allocation total above the level before the call (``tracemalloc``, numpy's allocations only) and
the growth of the process's resident high-water mark (VmHWM, everything). Agreement: the row is
compared with ``var(ℓ_a − ℓ_b) / (2 B̄ ln 2)`` computed from the raw matrix in numpy.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import reset_peak, rss_kib


def synthetic_matrix(K: int, N: int, seed: int = 0):
    """A K × N matrix with text difficulty ∝ bytes, model offsets and noise (nats)."""
    import loglik_map as lm

    rng = np.random.default_rng(seed)
    n_bytes = rng.integers(257, 1025, size=N)
    L = rng.normal(scale=3.0, size=(K, N))
    L += -n_bytes * rng.uniform(0.4, 0.9, size=N)
    L -= rng.uniform(0, 50, size=(K, 1))
    return lm.LogLikelihoodMatrix(L, models=[f"m{i}" for i in range(K)], texts=[f"t{k}" for k in range(N)],
                                  n_bytes=n_bytes)


def measure(run, repeat: int) -> dict:
    run()  # warm-up: numba compilation, first-call imports
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    base = rss_kib("VmRSS")
    reset_peak()
    tracemalloc.start()
    try:
        run()
        traced = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return {"best_s": min(times), "all_s": times, "peak_numpy_mib": traced / 2**20,
            "peak_rss_growth_mib": (rss_kib("VmHWM") - base) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=20_000)
    parser.add_argument("--texts", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--all-pairs", action="store_true", help="also time kl() (K × K) for contrast")
    args = parser.parse_args()

    import loglik_map as lm

    K, N = args.models, args.texts
    both = synthetic_matrix(K + 1, N)
    matrix, new = both.isel(model=slice(0, K)), both.isel(model=[K])
    del both
    t0 = time.perf_counter()
    mm = lm.ModelMap(matrix)
    build = time.perf_counter() - t0
    ref = "m123"
    queries = {
        "ModelMap(matrix).kl(a): a fresh map, built and asked once": lambda: lm.ModelMap(matrix).kl(ref),
        "kl(a)": lambda: mm.kl(ref),
        "kl_se(a)": lambda: mm.kl_se(ref),
        "compare(a, b)": lambda: mm.compare(ref, "m7"),
        "nearest(a, k=10)": lambda: mm.nearest(ref, k=10),
        "nearest(a, k=10, test=True)": lambda: mm.nearest(ref, k=10, test=True),
        "project(one new model)": lambda: mm.project(new),
    }
    if args.all_pairs:
        queries["kl() (all pairs, K × K; map built each call)"] = lambda: lm.ModelMap(matrix).kl()

    results = {name: measure(run, args.repeat) for name, run in queries.items()}

    L, B = matrix.values, matrix.mean_bytes
    d = L[int(ref[1:])][None, :] - L
    truth = np.var(d, axis=1) / (2 * B * np.log(2))
    row = mm.kl(ref).values
    off = truth > 0
    agreement = {"max_rel_err_vs_numpy_var": float(np.max(np.abs(row[off] / truth[off] - 1))),
                 "row_equals_pair_queries": bool(all(row[j] == mm.kl(ref, f"m{j}") for j in (0, 7, K - 1)))}
    print(f"K = {K} models × N = {N} texts: points {K * N * 8 / 2**20:.0f} MiB, one K × K float64 array "
          f"{K * K * 8 / 2**20:.0f} MiB; map built in {build:.2f} s; numpy {np.__version__}, default kernel backend")
    print()
    print("| query | best time (s) | peak numpy allocations (MiB) | peak RSS growth (MiB) |")
    print("|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['best_s']:.3g} | {r['peak_numpy_mib']:.3g} | {r['peak_rss_growth_mib']:.3g} |")
    print()
    print(json.dumps(agreement))

if __name__ == "__main__":
    main()
