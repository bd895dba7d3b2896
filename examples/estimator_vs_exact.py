"""
The map's KL estimator beside the exact KL on the miniature zoo
===============================================================

Trains (or reuses) the miniature model suite of ``loglik-map demo``, scores it on 800 built-in
texts into a run store, and for pairs of every setting that share a vocabulary — all of the
zoo's models share one tokenizer — puts the map's KL ± SE beside the exact teacher-forced KL on
the same texts (:func:`loglik_map.scoring.estimator_vs_exact`). The numbers of the documentation page
"Exact KL beside the estimator" come from this script (minutes on 2 CPU cores; not run when the
docs are built)::

    python examples/estimator_vs_exact.py --zoo-dir /tmp/zoo --out /tmp/zoo-exact

It writes ``pairs.csv`` (every pair) and prints the per-setting summary as an RST table.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

import loglik_map as lm
from loglik_map.texts import load_texts


def settings(zoo: "lm.demo.Zoo") -> dict:
    """Pairs of every kind the zoo has, from near (quantized copies) to far (embedding vs output)."""
    cfg = zoo.config
    half, first = cfg.steps / 2, zoo.run_names[0]
    final = f"{first}@{cfg.steps}"
    early = [s for s in cfg.checkpoints if 0 < s < cfg.checkpoint_every * 2]
    return {
        "8-bit quantization": lm.original_vs("quantization", "none", "8bit"),
        "4-bit quantization": lm.original_vs("quantization", "none", "4bit-nf4"),
        "consecutive checkpoints, second half": lm.consecutive_checkpoints("step", by="run", after=half),
        "consecutive checkpoints, first half": lm.consecutive_checkpoints("step", by="run", after=cfg.warmup,
                                                                          before=half),
        "fine-tuned vs base": [(final, f"{first}-{d}") for d in cfg.finetune_domains],
        "random seeds": lm.differing_only_in("seed", by=("arch", "size", "step")),
        "model sizes": lm.differing_only_in("size", by=("arch", "seed", "step")),
        "architectures (GPT-NeoX vs Llama)": lm.differing_only_in("arch", by=("size", "seed", "step")),
        "early checkpoint vs final": [(f"{first}@{s}", final) for s in early],
        "adjacent layers": lm.adjacent_layers("layer", by="source_model"),
    }


def by_domain(mm: "lm.ModelMap", texts: "lm.TextSet", a: str, b: str) -> None:
    """The map's KL and the exact symmetric KL of one pair within each domain of the texts, and the
    share of var(ℓ_a − ℓ_b) that lies between the domains' means."""
    ds = lm.exact_kl(*(lm.ModelSpec(mm.points.source_model.values[mm._index(m)]) for m in (a, b)), texts,
                     loading=lm.scoring.Loading(device="cpu"))
    u = mm.matrix.values[mm._index(a)] - mm.matrix.values[mm._index(b)]
    domain = np.asarray(ds.domain.values)
    print(f"\n{a} vs {b}, by domain (bits/byte):")
    for d in np.unique(domain):
        k = domain == d
        scale = ds.n_bytes.values[k].mean() * np.log(2)
        est, exact = np.var(u[k]) / 2 / scale, ds.kl_sym.values[k].mean() / scale
        print(f"  {d:<18} {k.sum():4d} texts  map {est:.4g}  exact {exact:.4g}  ratio {est / exact:.3g}  "
              f"mean(ℓ_a − ℓ_b) {u[k].mean() / scale:+.3f}")
    means = pd.Series(u).groupby(domain).transform("mean").values
    print(f"  share of var(ℓ_a − ℓ_b) between domains: {np.var(means) / np.var(u):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--zoo-dir", default=None, help="zoo cache (default $LOGLIK_MAP_ZOO or ~/.cache/loglik_map/zoo)")
    ap.add_argument("--out", default="zoo-exact", help="run store and results")
    ap.add_argument("--n-texts", type=int, default=800)
    ap.add_argument("--zoo-config", default=None,
                    help='ZooConfig fields as JSON, e.g. \'{"batch_size": 16, "seq_len": 128, "max_positions": 256}\' '
                         "(the zoo of the documentation's table)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = lm.demo.ZooConfig(**json.loads(args.zoo_config)) if args.zoo_config else None
    zoo = lm.demo.build_zoo(args.zoo_dir, config)
    texts = load_texts("mini").sample(args.n_texts, seed=42)
    store = out / f"scores-{zoo.config.fingerprint()}-n{len(texts)}.store"
    print(lm.score_models(zoo.specs(loading=lm.scoring.Loading(device="cpu")), texts, store))
    matrix = zoo.annotate(lm.open_matrix(store))
    mm = lm.ModelMap(matrix)  # unclipped: the estimator exactly as defined, on the same texts as the exact KL
    df = lm.scoring.estimator_vs_exact(mm, texts, settings(zoo), progress=True, loading=lm.scoring.Loading(device="cpu"))
    clipped = lm.ModelMap(matrix.clip(0.02))  # the paper's clip, for comparison
    df["map_kl_clipped"] = [clipped.kl(a, b) for a, b in zip(df.a, df.b)]
    df.to_csv(out / "pairs.csv", index=False)
    df["asymmetry"] = df.exact_ab / df.exact_ba
    df["clipped_ratio"] = df.map_kl_clipped / df.exact_sym
    summary = df.groupby("setting", sort=False).agg(
        pairs=("a", "size"), map_kl=("map_kl", "median"), exact_sym=("exact_sym", "median"),
        ratio=("ratio", "median"), ratio_min=("ratio", "min"), ratio_max=("ratio", "max"),
        ratio_se=("ratio_se", "median"), asymmetry=("asymmetry", "median"), same_top=("same_top", "median"),
        clipped_ratio=("clipped_ratio", "median"))
    print(f"\n{matrix.n_models} rows × {matrix.n_texts} texts, B̄ = {matrix.mean_bytes:.1f} bytes; zoo "
          f"{zoo.config.fingerprint()}; medians over the pairs of each setting (bits/byte)\n")
    print(summary.to_string(float_format=lambda x: f"{x:.3g}"))
    for a, b in ((f"{zoo.run_names[0]}@{zoo.config.steps}", f"{zoo.run_names[0]}-{zoo.config.finetune_domains[0]}"),
                 tuple(df[df.setting == "consecutive checkpoints, second half"].iloc[-1][["a", "b"]])):
        by_domain(mm, texts, a, b)
    print("\nPooled: Spearman correlation of map and exact KL over all pairs "
          f"{pd.Series(df.map_kl).corr(pd.Series(df.exact_sym), method='spearman'):.3f}; "
          f"log-log slope {np.polyfit(np.log(df.exact_sym), np.log(df.map_kl), 1)[0]:.3f}")


if __name__ == "__main__":
    main()
