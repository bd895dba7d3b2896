"""All-pairs KL + SE at the published data's shape (K = 1,018 models × N = 10,000 texts).

Run by hand (not a test):

    python benchmarks/bench_pairwise.py [--models 1018] [--texts 10000] [--repeat 3] [--skip-slow]

Every method runs in its own subprocess on the same scaled coordinates X (K × N, float64),
after a warm-up on a small slice (so numba compilation is not timed). Peak memory is the
process's high-water mark (VmHWM, reset through /proc/self/clear_refs after the input is
loaded) minus the resident size just before the call, reported as a multiple of the input
matrix's size. Accuracy is the largest entrywise relative error against the plain-numpy direct
evaluation, over off-diagonal pairs. Results go to stdout as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _memory import reset_peak, rss_kib

HERE = Path(__file__).resolve().parent

METHODS = {
    "scipy pdist sqeuclidean (KL only)": "scipy",
    "numpy Gram, 1 GEMM (KL only, unguarded)": "gram_kl",
    "numpy Gram, 3 GEMMs (KL + SE, unguarded)": "gram_kl_se",
    "loglik_map numpy direct (KL + SE)": "numpy",
    "loglik_map numba tiled (KL + SE)": "numba",
    "loglik_map blas + guard = auto (KL + SE)": "blas",
    "ModelMap(L).kl() + .kl_se() end to end": "end_to_end",
}
SLOW = {"numpy"}


def make_input(K: int, N: int, seed: int = 0) -> np.ndarray:
    """A log-likelihood matrix shaped like real data: families, members, near-twins (nats)."""
    rng = np.random.default_rng(seed)
    n_bytes = rng.integers(257, 1025, size=N)
    text_effect = -n_bytes * rng.uniform(0.4, 0.9, size=N)
    n_fam = max(K // 10, 1)
    fam_factors = rng.normal(size=(n_fam, 16))
    text_factors = rng.normal(size=(16, N))
    fam = rng.integers(0, n_fam, size=K)
    L = text_effect[None, :] + 6.0 * (fam_factors[fam] @ text_factors) / 4
    L += rng.normal(scale=3.0, size=(K, N))  # members of a family: KL ~ 0.01 bits/byte
    twins = rng.choice(K - 1, size=min(18, K - 1), replace=False)
    L[twins + 1] = L[twins] + rng.normal(scale=0.04, size=(twins.size, N))  # KL ~ 1e-6 bits/byte
    L -= rng.uniform(0, 50, size=(K, 1))
    return L, n_bytes


def _coordinates(L: np.ndarray, n_bytes: np.ndarray) -> np.ndarray:
    Q = L - L.mean(axis=1, keepdims=True)
    Q -= Q.mean(axis=0)
    Q /= np.sqrt(2 * L.shape[1] * n_bytes.mean() * np.log(2))
    return Q






def _run(method: str, X: np.ndarray, L: np.ndarray, n_bytes: np.ndarray):
    if method == "scipy":
        from scipy.spatial.distance import pdist, squareform

        return squareform(pdist(X, "sqeuclidean")), None
    if method == "gram_kl":
        n2 = np.einsum("ij,ij->i", X, X)
        G = X @ X.T
        G *= -2
        G += n2[:, None]
        G += n2[None, :]
        np.fill_diagonal(G, 0.0)
        return G, None
    if method == "gram_kl_se":
        n2 = np.einsum("ij,ij->i", X, X)
        X2 = X * X
        X3 = X2 * X
        n4 = np.einsum("ij,ij->i", X2, X2)
        kl = n2[:, None] + n2[None, :] - 2 * (X @ X.T)
        s31 = X3 @ X.T
        s4 = n4[:, None] + n4[None, :] - 4 * (s31 + s31.T) + 6 * (X2 @ X2.T)
        se = np.sqrt(np.maximum(s4 - kl**2 / X.shape[1], 0))
        np.fill_diagonal(kl, 0.0)
        np.fill_diagonal(se, 0.0)
        return kl, se
    if method in ("numpy", "numba", "blas"):
        from loglik_map.core._kernels import pairwise_kl_se

        r = pairwise_kl_se(X, backend=method)
        return r.kl, r.se
    if method == "end_to_end":
        import loglik_map as lm

        m = lm.LogLikelihoodMatrix(L, models=[f"m{i}" for i in range(L.shape[0])],
                                   texts=[f"t{k}" for k in range(L.shape[1])], n_bytes=n_bytes)
        mm = lm.ModelMap(m)
        return mm.kl().values, mm.kl_se().values
    raise ValueError(method)


def worker(method: str, data: Path, out: Path, repeat: int) -> None:
    L = np.load(data / "L.npy")
    n_bytes = np.load(data / "n_bytes.npy")
    X = np.ascontiguousarray(_coordinates(L, n_bytes)) if method != "end_to_end" else None
    if method != "end_to_end":
        del L
        L = None
    small_X = _coordinates(np.load(data / "L.npy", mmap_mode="r")[:16, :256].copy(), n_bytes[:256])
    _run(method, small_X, np.asarray(np.load(data / "L.npy", mmap_mode="r")[:16, :256]), n_bytes[:256])  # warm-up
    # numba is imported by the first call that recomputes a pair directly, which the small warm-up
    # may not make; its import (~0.5x the input here) is a one-off cost, not the kernel's memory
    # (and its pair kernel's compiled code is loaded on first use: call it once on the small slice)
    from loglik_map.core._kernels._numba import pairs_kl_se_numba

    pairs_kl_se_numba(small_X, np.array([0]), np.array([1]))
    times, peaks = [], []
    for _ in range(repeat):
        base = rss_kib("VmRSS")
        reset_peak()
        t0 = time.perf_counter()
        kl, se = _run(method, X, L, n_bytes)
        times.append(time.perf_counter() - t0)
        peaks.append(rss_kib("VmHWM") - base)
        if _ != repeat - 1:
            del kl, se
    np.save(out / f"{method}_kl.npy", kl)
    if se is not None:
        np.save(out / f"{method}_se.npy", se)
    (out / f"{method}.json").write_text(json.dumps({"times": times, "peak_extra_kib": peaks}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", type=int, default=1018)
    ap.add_argument("--texts", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-slow", action="store_true", help="skip the plain-numpy direct reference")
    ap.add_argument("--worker", nargs=3, metavar=("METHOD", "DATA", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        method, data, out = args.worker
        worker(method, Path(data), Path(out), args.repeat)
        return

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        L, n_bytes = make_input(args.models, args.texts)
        np.save(tmp / "L.npy", L)
        np.save(tmp / "n_bytes.npy", n_bytes)
        input_mib = L.nbytes / 2**20
        del L
        results = {}
        for label, method in METHODS.items():
            if args.skip_slow and method in SLOW:
                continue
            print(f"running {label} ...", file=sys.stderr, flush=True)
            repeat = 1 if method in SLOW else args.repeat
            subprocess.run([sys.executable, __file__, "--repeat", str(repeat), "--worker", method, str(tmp), str(tmp)],
                           check=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
            results[label] = json.loads((tmp / f"{method}.json").read_text())
        ref = "numpy" if (tmp / "numpy_kl.npy").exists() else "numba"
        ref_kl = np.load(tmp / f"{ref}_kl.npy")
        ref_se = np.load(tmp / f"{ref}_se.npy")
        off = ~np.eye(ref_kl.shape[0], dtype=bool)
        scipy_time = min(results["scipy pdist sqeuclidean (KL only)"]["times"])
        print(f"K = {args.models} models × N = {args.texts} texts; input {input_mib:.1f} MiB; "
              f"accuracy against: loglik_map {ref} direct; smallest off-diagonal KL {ref_kl[off].min():.2e} bits/byte\n")
        print("| method | best time (s) | speed-up vs scipy KL | peak extra memory (× input) | max rel err KL | max rel err SE |")
        print("|---|---|---|---|---|---|")
        for label, method in METHODS.items():
            if label not in results:
                continue
            r = results[label]
            t = min(r["times"])
            peak = max(r["peak_extra_kib"]) / 1024 / input_mib
            kl = np.load(tmp / f"{method}_kl.npy")
            err_kl = np.max(np.abs(kl[off] - ref_kl[off]) / ref_kl[off])
            se_path = tmp / f"{method}_se.npy"
            err_se = (f"{np.max(np.abs(np.load(se_path)[off] - ref_se[off]) / ref_se[off]):.1e}"
                      if se_path.exists() else "—")
            print(f"| {label} | {t:.2f} | {scipy_time / t:.1f}× | {peak:.2f} | {err_kl:.1e} | {err_se} |")


if __name__ == "__main__":
    main()
