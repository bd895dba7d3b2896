"""Fewer texts, same map: KL error against the number of texts for uniform, LS and KL sampling.

Run by hand (not a test):

    python benchmarks/bench_resample.py [--models 300] [--texts 10000] [--runs 20] [--new 30]

The matrix is synthetic and heteroscedastic like the Pile's: texts of 257–1,024 bytes in 17
domains whose log-likelihood spread across models differs by domain (code and maths far more than
prose), by text and with length; models in families (shared low-rank structure) with their own
per-text noise (Student t, 8 degrees of freedom: a few texts separate models far more than most).

Part 1 (Fig. 2 of Oyama et al. 2025b): for each method and number of draws n, ``runs`` seeds of
:func:`loglik_map.resample_texts`, the map of the selection, and the authors' absolute error
``‖G_sel − G‖_F / ‖G‖_F`` (:func:`loglik_map.stats.resampling_error`; RMS over the runs). The
goal compares methods at an equal number of *scored* (unique) texts d: uniform's error is
interpolated (log–log) at LS's d.

Part 3 (the text budget): :func:`loglik_map.texts_needed` for a target SE, against the spread
of the KLs of selections of the size it gives.

Part 2 (adding models cheaply): ``--new`` models are held out; texts are selected by LS from the
others; the new models' rows on the selected texts only are projected onto the selection's map;
their KL to their 5 nearest mapped models is compared with the full-set KL, in units of the SE
the selection's map reports.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import loglik_map as lm
from loglik_map.stats import resampling_error

DRAWS = (100, 200, 500, 1000, 2000, 5000, 10000)
METHODS = ("uniform", "ls", "kl")


def pile_like(K: int, N: int, spread: float = 1.0, seed: int = 0) -> lm.LogLikelihoodMatrix:
    """A heteroscedastic K × N log-likelihood matrix (nats) with domains, lengths and model families.

    ``spread`` scales the log-normal spread of the per-domain and per-text scales (0: only the
    length and the t-distributed noise make texts differ).
    """
    rng = np.random.default_rng(seed)
    n_bytes = rng.integers(257, 1025, size=N)
    n_domains = 17
    domain = rng.choice(n_domains, size=N, p=rng.dirichlet(np.full(n_domains, 2.0)))
    domain_scale = np.exp(rng.normal(0.0, 0.5 * spread, size=n_domains))
    scale = domain_scale[domain] * np.exp(rng.normal(0.0, 0.4 * spread, size=N)) * np.sqrt(n_bytes / 600)
    n_fam, rank = max(K // 10, 2), 12
    fam = rng.integers(0, n_fam, size=K)
    structure = (rng.normal(size=(n_fam, rank)) @ rng.normal(size=(rank, N))) / np.sqrt(rank)
    own = rng.standard_t(8, size=(K, N)) * 0.6
    # nats per byte: the text's difficulty plus the model's own level (better models gain on every byte)
    per_byte = rng.uniform(0.4, 0.8, size=N)[None, :] + rng.uniform(0.0, 0.05, size=(K, 1))
    L = -n_bytes * per_byte + scale * (structure[fam] + own)
    matrix = lm.LogLikelihoodMatrix(L, models=[f"m{i}" for i in range(K)], texts=[f"t{k}" for k in range(N)],
                                    n_bytes=n_bytes, text_coords={"domain": np.array([f"d{d}" for d in domain])},
                                    model_coords={"family": np.array([f"f{f}" for f in fam])})
    return matrix.clip()  # at the 2 % quantile, as the paper


def heteroscedasticity(matrix: lm.LogLikelihoodMatrix) -> str:
    """How unequal the texts are: quantiles of N × (LS probability), i.e. variance / mean variance."""
    p = lm.stats.selection_probabilities(matrix, "ls") * matrix.n_texts
    return (f"5 % {np.quantile(p, 0.05):.2f}, median {np.median(p):.2f}, 95 % {np.quantile(p, 0.95):.2f}, "
            f"max {p.max():.1f}")


def rms_error(matrix: lm.LogLikelihoodMatrix, full: lm.ModelMap, method: str, n: int, runs: int) -> tuple[float, float]:
    """Mean unique texts and RMS error over ``runs`` selections of ``n`` draws."""
    errs, uniq = [], []
    for r in range(runs):
        sel = lm.resample_texts(matrix, n, method, seed=42 + r)
        errs.append(resampling_error(lm.ModelMap(sel), full))
        uniq.append(sel.n_texts)
    return float(np.mean(uniq)), float(np.sqrt(np.mean(np.square(errs))))


def sweep(K: int, N: int, runs: int, n: int = 1000) -> None:
    """LS against uniform at equal unique texts, as the texts grow more unequal."""
    print(f"Part 0: LS ({n} draws) against uniform with as many unique texts, by heteroscedasticity; RMS over {runs} "
          "runs\n")
    print("| spread | N × π_LS (variance / mean variance) | LS d | LS error | uniform error | LS / uniform |")
    print("|---|---|---|---|---|---|")
    for spread in (0.0, 0.5, 1.0, 1.5):
        matrix = pile_like(K, N, spread)
        full = lm.ModelMap(matrix)
        d, e_ls = rms_error(matrix, full, "ls", n, runs)
        n_uniform = round(np.log1p(-d / N) / np.log1p(-1 / N))  # draws that give d unique texts on average
        _, e_u = rms_error(matrix, full, "uniform", n_uniform, runs)
        print(f"| {spread:g} | {heteroscedasticity(matrix)} | {d:.0f} | {e_ls:.4f} | {e_u:.4f} | {e_ls / e_u:.2f} |")
    print()


def error_curves(matrix: lm.LogLikelihoodMatrix, runs: int) -> dict[str, list[tuple[int, float, float]]]:
    full = lm.ModelMap(matrix)
    full.kl()  # computed once
    return {method: [(n, *rms_error(matrix, full, method, n, runs)) for n in DRAWS] for method in METHODS}


def interpolate(curve: list[tuple[int, float, float]], d: float) -> float:
    ds = np.log([c[1] for c in curve])
    es = np.log([c[2] for c in curve])
    return float(np.exp(np.interp(np.log(d), ds, es)))


def new_models(matrix: lm.LogLikelihoodMatrix, n_new: int, n_draws: int, seed: int = 42) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    new = rng.choice(matrix.n_models, size=n_new, replace=False)
    old = np.setdiff1d(np.arange(matrix.n_models), new)
    reference, newcomers = matrix.isel(model=old), matrix.isel(model=new)
    sel = lm.resample_texts(reference, n_draws, "ls", seed=seed)
    sel_map = lm.ModelMap(sel)
    projected = sel_map.project(newcomers.sel(text=list(sel.texts)))
    full_map = lm.ModelMap(matrix)
    z, within = [], []
    for name in newcomers.models:
        kl_sel = projected.kl.sel(model=name)
        nearest = kl_sel.sortby(kl_sel).model_.values[:5]
        for other in nearest:
            est = float(kl_sel.sel(model_=other))
            se = float(projected.se.sel(model=name, model_=other))
            truth = full_map.kl(str(name), str(other))
            z.append(abs(est - truth) / se)
            within.append(abs(est - truth) <= se)
    return {"unique_texts": sel.n_texts, "pairs": len(z), "within_1se": float(np.mean(within)),
            "within_2se": float(np.mean(np.array(z) <= 2)), "median_z": float(np.median(z))}


def budget(matrix: lm.LogLikelihoodMatrix, runs: int) -> None:
    """texts_needed's draws for a target SE against the spread of the KLs of selections that size."""
    full = lm.ModelMap(matrix)
    iu = np.triu_indices(matrix.n_models, 1)
    pick = np.random.default_rng(0).choice(iu[0].size, size=min(500, iu[0].size), replace=False)
    ia, ib = iu[0][pick], iu[1][pick]
    target = 3.0 * float(np.median(full.kl_se().values[ia, ib]))
    print(f"\nPart 3: texts_needed for a KL SE of {target:.3g} bits/byte (3 × the full set's median SE) against the "
          f"spread of the KL over {runs} selections of that many draws (500 pairs, median over pairs)\n")
    print("| method | draws | unique texts (predicted) | unique texts (drawn) | median SD of KL | / target |")
    print("|---|---|---|---|---|---|")
    for method in METHODS:
        b = lm.texts_needed(matrix, target, method)
        sels = [lm.resample_texts(matrix, b.n_draws, method, seed=100 + r) for r in range(runs)]
        kls = np.array([lm.ModelMap(s).kl().values[ia, ib] for s in sels])
        sd = float(np.median(kls.std(axis=0)))
        print(f"| {method} | {b.n_draws} | {b.n_unique} | {np.mean([s.n_texts for s in sels]):.0f} | {sd:.3g} | "
              f"{sd / target:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=300)
    parser.add_argument("--texts", type=int, default=10000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--new", type=int, default=30)
    parser.add_argument("--draws-new", type=int, default=2000)
    parser.add_argument("--spread", type=float, default=1.0, help="heteroscedasticity of parts 1 and 2")
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
    t0 = time.perf_counter()
    print(f"K = {args.models} models × N = {args.texts} texts\n")
    if not args.skip_sweep:
        sweep(args.models, args.texts, args.runs)
    matrix = pile_like(args.models, args.texts, args.spread)
    print(f"Parts 1 and 2: spread {args.spread:g}; N × π_LS: {heteroscedasticity(matrix)}\n")
    curves = error_curves(matrix, args.runs)
    print(f"Part 1: authors' absolute error ‖G_sel − G‖_F / ‖G‖_F, RMS over {args.runs} runs\n")
    print("| draws n | " + " | ".join(f"{m}: unique d | {m}: error" for m in METHODS) + " |")
    print("|---|" + "---|---|" * len(METHODS))
    for k, n in enumerate(DRAWS):
        cells = [f"{curves[m][k][1]:.0f} | {curves[m][k][2]:.4f}" for m in METHODS]
        print(f"| {n} | " + " | ".join(cells) + " |")
    print("\nAt equal scored (unique) texts d: error / uniform's error at the same d (interpolated)\n")
    print("| draws n | LS d | LS / uniform | KL d | KL / uniform |")
    print("|---|---|---|---|---|")
    for k, n in enumerate(DRAWS):
        row = [f"{n}"]
        for m in ("ls", "kl"):
            d, err = curves[m][k][1], curves[m][k][2]
            row += [f"{d:.0f}", f"{err / interpolate(curves['uniform'], d):.2f}"
                    if d <= curves["uniform"][-1][1] else "—"]
        print("| " + " | ".join(row) + " |")
    res = new_models(matrix, args.new, args.draws_new)
    print(f"\nPart 2: {args.new} held-out models projected from {res['unique_texts']} LS-selected texts "
          f"({args.draws_new} draws); KL to their 5 nearest mapped models against the full-set KL "
          f"({res['pairs']} pairs): within 1 SE {res['within_1se']:.0%}, within 2 SE {res['within_2se']:.0%}, "
          f"median |Δ|/SE {res['median_z']:.2f}")
    budget(matrix, args.runs)
    print(f"\n(total {time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
