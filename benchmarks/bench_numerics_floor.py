"""The numerics floor of the miniature zoo (issue 25): a final checkpoint against itself under other numerics,
beside the KLs of the zoo's own settings on the same texts.

    python benchmarks/bench_numerics_floor.py [--zoo ~/.cache/loglik_map/zoo/<hash>] [--n-texts 200]
        [--variants float32 bfloat16 float16 eager one-by-one] [--device cpu]

Without a trained zoo (``python -m loglik_map demo`` trains it), ``--model FOLDER`` measures any
local model alone. Prints the numerics_floor table (bits/byte), then ModelMap.summary(floor=...)
for consecutive checkpoints, two seeds and two sizes of the zoo.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import loglik_map as lm
from loglik_map.scoring._numerics_floor import numerics_floor


def _zoo_dir(given: str | None) -> Path | None:
    if given:
        return Path(given).expanduser()
    root = Path("~/.cache/loglik_map/zoo").expanduser()
    found = sorted(root.glob("*/runs")) if root.exists() else []
    return found[0].parent if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zoo", default=None)
    parser.add_argument("--model", default=None, help="a model folder (default: the zoo's neox-s-seed0 final step)")
    parser.add_argument("--n-texts", type=int, default=200)
    parser.add_argument("--variants", nargs="+", default=["float32", "bfloat16", "float16", "eager", "one-by-one"])
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    pd.set_option("display.width", 200)
    texts = lm.load_texts("mini").sample(args.n_texts, seed=0)
    zoo = _zoo_dir(args.zoo)
    model = args.model
    if model is None:
        if zoo is None:
            sys.exit("no zoo in ~/.cache/loglik_map/zoo: train it (python -m loglik_map demo) or give --model")
        steps = sorted(zoo.glob("runs/neox-s-seed0/step*"), key=lambda p: int(p.name[4:]))
        model = str(steps[-1])
    print(f"model {model}; {len(texts)} built-in 'mini' texts (sample seed 0), mean {texts.n_bytes.mean():.1f} bytes; "
          f"device {args.device}")
    started = time.perf_counter()
    floor = numerics_floor(model, texts, variants=tuple(args.variants), device=args.device)
    print(f"numerics_floor: {time.perf_counter() - started:.0f} s (reference scoring {floor.attrs['reference_seconds']:.1f} s)")
    print(floor.drop_vars(["dtype", "attention", "batching"]).to_dataframe().to_string(float_format=lambda x: f"{x:.3g}"))
    print(f"floor (largest map_kl): {floor.attrs['floor']:.3g} bits/byte")
    if zoo is None or args.model is not None:
        return
    runs = {
        "neox-s-seed0 last": sorted(zoo.glob("runs/neox-s-seed0/step*"), key=lambda p: int(p.name[4:]))[-1],
        "neox-s-seed0 previous": sorted(zoo.glob("runs/neox-s-seed0/step*"), key=lambda p: int(p.name[4:]))[-2],
        "neox-s-seed1 last": sorted(zoo.glob("runs/neox-s-seed1/step*"), key=lambda p: int(p.name[4:]))[-1],
    }
    for size in ("xs", "m"):
        steps = sorted(zoo.glob(f"runs/neox-{size}-seed0/step*"), key=lambda p: int(p.name[4:]))
        if steps:
            runs[f"neox-{size}-seed0 last"] = steps[-1]
    quiet = lm.scoring.Execution(progress=False)
    rows = [lm.HFScorer(str(p), name=name, execution=quiet).score(texts) for name, p in runs.items()]
    mm = lm.ModelMap(lm.LogLikelihoodMatrix.concat(rows))
    base = "neox-s-seed0 last"
    pairs = [(base, other) for other in runs if other != base]
    print(mm.summary(pairs, floor=floor).to_string(float_format=lambda x: f"{x:.3g}"))


if __name__ == "__main__":
    main()
