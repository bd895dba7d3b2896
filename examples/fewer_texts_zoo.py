"""
Fewer texts and benchmark prediction on the miniature zoo
=========================================================

Trains (or reuses) the miniature model suite of ``loglik-map demo`` and scores it on 800 built-in
texts (the run store of ``examples/estimator_vs_exact.py`` is reused when ``--out`` is the same).
Then, as the documentation page "Fewer texts, and benchmark scores from the map":

1. the map's error against the number of texts for uniform, LS and KL sampling;
2. the fine-tuned children and the quantized copies held out as "new models", placed on the map
   from LS-selected texts only, against their full-set KL to their nearest models;
3. two **synthetic** benchmark columns (the zoo has no benchmark scores): one that follows the
   models' cross-entropy, one that is a random value per training run; predicted by ridge
   regression on the map, leaving one run out at a time.

Minutes on 2 CPU cores when the zoo is already trained (not run when the docs are built)::

    python examples/fewer_texts_zoo.py --zoo-dir /tmp/zoo --out /tmp/zoo-exact
"""

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

import loglik_map as lm
from loglik_map.stats import resampling_error
from loglik_map.texts import load_texts


def error_table(matrix: "lm.LogLikelihoodMatrix", draws=(25, 50, 100, 200, 400), runs: int = 20) -> None:
    full = lm.ModelMap(matrix)
    print(f"\n1. error ‖G_sel − G‖_F / ‖G‖_F (RMS over {runs} seeds) and unique texts d, of {matrix.n_texts}")
    print("| draws | " + " | ".join(f"{m} d | {m} error" for m in ("uniform", "ls", "kl")) + " |")
    print("|---|" + "---|---|" * 3)
    for n in draws:
        cells = []
        for method in ("uniform", "ls", "kl"):
            sels = [lm.resample_texts(matrix, n, method, seed=42 + r) for r in range(runs)]
            errs = [resampling_error(lm.ModelMap(s), full) for s in sels]
            cells.append(f"{np.mean([s.n_texts for s in sels]):.0f} | {np.sqrt(np.mean(np.square(errs))):.4f}")
        print(f"| {n} | " + " | ".join(cells) + " |")


def new_models(matrix: "lm.LogLikelihoodMatrix", draws: int = 200) -> None:
    held = np.array([(b != "" or q not in ("", "none")) for b, q in zip(
        matrix.data["base_model"].values, matrix.data["quantization"].values)])
    reference, newcomers = matrix.isel(model=np.flatnonzero(~held)), matrix.isel(model=np.flatnonzero(held))
    selection = lm.resample_texts(reference, draws, "ls", seed=42)
    placed = lm.ModelMap(selection).project(newcomers.sel(text=list(selection.texts)))
    full = lm.ModelMap(matrix)
    print(f"\n2. {newcomers.n_models} held-out models (fine-tuned, quantized) placed from {selection.n_texts} "
          f"LS-selected texts of {matrix.n_texts}; KL to their 3 nearest models (bits/byte)")
    z = []
    for name in newcomers.models:
        kl = placed.kl.sel(model=name)
        for other in kl.sortby(kl).model_.values[:3]:
            est, se = float(kl.sel(model_=other)), float(placed.se.sel(model=name, model_=other))
            truth = full.kl(str(name), str(other))
            z.append(abs(est - truth) / se if se > 0 else 0.0)
            print(f"  {name:<28} {other:<22} selected {est:.4f} ± {se:.4f}   all texts {truth:.4f}")
    z = np.array(z)
    print(f"  within 1 SE: {np.mean(z <= 1):.0%}, within 2 SE: {np.mean(z <= 2):.0%}, median |Δ|/SE {np.median(z):.2f}")


def prediction(matrix: "lm.LogLikelihoodMatrix") -> None:
    rows = matrix.isel(model=np.flatnonzero(np.isnan(matrix.data["layer"].values)))  # no logit-lens rows
    mm = lm.ModelMap(rows)
    rng = np.random.default_rng(0)
    ce = rows.cross_entropy().to_series()
    run = pd.Series(rows.data["run"].values, index=rows.models)
    scores = pd.DataFrame({
        "follows_the_map (synthetic)": 60 - 10 * (ce - ce.mean()) / ce.std() + rng.normal(0, 1, ce.size),
        "run_only (synthetic)": run.map(dict(zip(run.unique(), rng.uniform(30, 80, run.nunique())))),
    })
    result = lm.predict_benchmarks(mm, scores, groups="run", n_splits=None, inner_cv=3, seed=0)
    print(f"\n3. ridge on the map, leave one run out ({result.sizes['outer_fold']} runs, {result.sizes['model']} models)")
    print(result[["r", "spearman", "rmse"]].to_dataframe().round(3).to_string())


def main() -> None:
    ap = argparse.ArgumentParser(description="Fewer texts and benchmark prediction on the miniature zoo")
    ap.add_argument("--zoo-dir", default=None, help="zoo cache (default $LOGLIK_MAP_ZOO or ~/.cache/loglik_map/zoo)")
    ap.add_argument("--out", default="zoo-exact", help="folder of the run store")
    ap.add_argument("--n-texts", type=int, default=800)
    ap.add_argument("--fast", action="store_true", help="the seconds-long test zoo (ZooConfig.fast), to try the script")
    args = ap.parse_args()
    zoo = lm.demo.build_zoo(args.zoo_dir, lm.demo.ZooConfig.fast() if args.fast else None)
    texts = load_texts("mini").sample(args.n_texts, seed=42)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / f"scores-{zoo.config.fingerprint()}-n{len(texts)}.store"
    print(lm.score_models(zoo.specs(loading=lm.scoring.Loading(device="cpu")), texts, store))
    matrix = zoo.annotate(lm.open_matrix(store)).clip(0.02)
    print(matrix)
    error_table(matrix.isel(model=np.flatnonzero(np.isnan(matrix.data["layer"].values))))
    new_models(matrix.isel(model=np.flatnonzero(np.isnan(matrix.data["layer"].values))))
    prediction(matrix)


if __name__ == "__main__":
    main()
