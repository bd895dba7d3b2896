"""Coverage of nominal 95 % intervals on synthetic ground truth (issue 15): paired KL differences,
diffusion exponents (fractional Brownian motion, c = 2H exactly) and the Hölder exponent
(Takagi–Landsberg map of a Brownian weight path, α known).

Run by hand (not a test; a few minutes on 2 CPU cores), in the project's virtual environment:

    python benchmarks/calibrate_intervals.py [--replicates 1000]

Each row: the fraction of replicates whose interval contains the true value, with its binomial
SE. The unit tests (tests/core/test_paired.py, tests/dynamics/test_uncertainty.py) check smaller
versions of the same experiments.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import loglik_map as lm
from loglik_map.core._paired import closer
from loglik_map.dynamics._uncertainty import exponent_interval, holder_interval


def paired(rng: np.random.Generator, n: int, df: float, method: str) -> bool:
    """KL(a, b) − KL(a, c) with Student-t noise (df degrees of freedom) shared through model a."""
    sd = {"a": 3.0, "b": 2.0, "c": 1.6}
    e = {m: s * rng.standard_t(df, size=n) for m, s in sd.items()}
    values = np.stack([-rng.uniform(200, 800, size=n) + e[m] for m in "abc"])
    truth = (sd["b"] ** 2 - sd["c"] ** 2) * df / (df - 2) / 2
    m = lm.LogLikelihoodMatrix(values, models=list("abc"), texts=[f"t{k}" for k in range(n)], n_bytes=np.full(n, 1000))
    ci = closer(m, "a", "b", "c", unit="nats", method=method).confidence_interval()
    return ci.low <= truth <= ci.high


def fbm_exponent(rng: np.random.Generator, hurst: float, n: int) -> tuple[bool, bool]:
    """c(t0) over lags 1 … 10 of an fBm path with one coordinate per text: bootstrap, regression."""
    path = lm.synthetic.fbm(14, hurst, dim=n, seed=rng)
    m = lm.LogLikelihoodMatrix(-500 + 10 * path, models=[f"c{i}" for i in range(15)],
                               texts=[f"t{k}" for k in range(n)], n_bytes=np.full(n, 1000),
                               model_coords={"step": np.arange(15)})
    est = exponent_interval(lm.Trajectory(m), 2, 10, n_boot=300, seed=int(rng.integers(2**31)))
    return est.low <= 2 * hurst <= est.high, est.reference_low <= 2 * hurst <= est.reference_high


def takagi_alpha(rng: np.random.Generator, alpha: float, n: int) -> tuple[bool, bool]:
    """α = c_q / c_w for a Takagi–Landsberg map of a Brownian path started away from the origin."""
    W = 1e-3 * lm.synthetic.fbm(14, 0.5, dim=16, seed=rng) + 3.0 * rng.normal(size=16)
    Q = lm.synthetic.takagi_landsberg(W, alpha, dim_out=n, seed=rng)
    m = lm.LogLikelihoodMatrix(-500 + 100 * Q, models=[f"c{i}" for i in range(15)], texts=[f"t{k}" for k in range(n)],
                               n_bytes=np.full(n, 1000), model_coords={"step": np.arange(15)})
    weights = lm.Trajectory.from_distances(((W[:, None] - W[None]) ** 2).sum(-1), np.arange(15))
    est = holder_interval(lm.Trajectory(m), weights, 2, 10, n_boot=300, seed=int(rng.integers(2**31)))
    return est.low <= alpha <= est.high, est.reference_low <= alpha <= est.reference_high


def row(label: str, hits: list, extra: str = "") -> str:
    p = float(np.mean(hits))
    return f"| {label} | {len(hits)} | {p:.3f} ± {np.sqrt(p * (1 - p) / len(hits)):.3f} |{extra}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--replicates", type=int, default=1000)
    args = ap.parse_args()
    R = args.replicates
    started = time.perf_counter()
    print("| experiment | replicates | coverage of nominal 95 % ± binomial SE | analytic interval beside it |")
    print("|---|---|---|---|")
    for n, df in ((300, 10), (300, 6), (2000, 6)):
        for method in ("delta", "jackknife"):
            rng = np.random.default_rng(1)
            print(row(f"paired KL difference, {method}, N = {n}, Student-t({df}) noise",
                      [paired(rng, n, df, method) for _ in range(R)], " — |"), flush=True)
    for hurst, n in ((0.35, 200), (0.35, 1000), (0.2, 200), (0.5, 200)):
        rng = np.random.default_rng(2)
        res = [fbm_exponent(rng, hurst, n) for _ in range(R)]
        reg = float(np.mean([r for _, r in res]))
        print(row(f"c(t0) of fBm, H = {hurst}, N = {n} texts, bootstrap over texts", [b for b, _ in res],
                  f" regression (Student t): {reg:.3f} |"), flush=True)
    for alpha in (0.3, 0.6):
        rng = np.random.default_rng(3)
        res = [takagi_alpha(rng, alpha, 200) for _ in range(R // 2)]
        dm = float(np.mean([r for _, r in res]))
        print(row(f"Hölder α of a Takagi–Landsberg map, α = {alpha}, N = 200 texts, bootstrap",
                  [b for b, _ in res], f" delta method: {dm:.3f} |"), flush=True)
    print(f"\n{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
