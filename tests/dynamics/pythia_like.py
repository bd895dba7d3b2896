"""Synthetic data shaped like the paper's Pythia setup, and the authors' procedure re-implemented
from its description (SPEC §6; shimo-lab/modelmap ``kl-scale/``) to pin the library against.

The reference functions work the way the authors' scripts do — dicts of ``{run: {step: vector}}``,
one plain loop per rule — and share no code with the library.
"""

from __future__ import annotations

from itertools import combinations, pairwise

import numpy as np

import loglik_map as lm

SIZES = ("410m", "1b", "1.4b", "2.8b", "6.9b")
GRID = np.array([0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512] + list(range(1000, 143001, 1000)))  # 154 steps
EXCLUDED = ("1b", 116000)
SEED_RUNS = ("410m-seed1", "410m-seed2", "410m-seed3", "410m-seed5")
ANOMALOUS_SEED = "410m-seed3"
SEED_GRID = np.array([0, 512, 1000] + list(range(2000, 16001, 1000)) + [143000])
SEED_MISSING = ("410m-seed2", 5000)  # never saved (as the paper's seed 2 at 111k)
N_TEXTS = 200

# planted texts
WARMUP_JUMP = 12  # jumps between steps 1000 and 2000: before the outlier window
BRIDGE_RAMP = 13  # +15 nats at 1b@116k and +15 more at 117k: an outlier only if 115k→117k is differenced
DEEP_TEXT = 14  # far below the 2 % quantile and noisy: an outlier only on unclipped values
PLANTED = (10, 11)  # a persistent jump (2.8b, 50k) and a one-checkpoint spike (410m, 80k)


def name(run: str, step: float) -> str:
    return f"{run}@{int(step)}"


def build() -> lm.LogLikelihoodMatrix:
    """5 sizes × 154 Pythia steps, 4 seed runs, quantized copies, fine-tuned children and lens layers."""
    rng = np.random.default_rng(11)
    n_bytes = rng.integers(300, 1025, size=N_TEXTS)
    difficulty = -n_bytes * rng.uniform(0.5, 0.8, size=N_TEXTS)
    difficulty[DEEP_TEXT] = -4000.0
    rows, names = [], []
    coords: dict[str, list] = {k: [] for k in ("run", "size", "step", "quantization", "base_model", "family",
                                                "layer", "source_model")}

    def add(model, row, **c):
        rows.append(row)
        names.append(model)
        for k in coords:
            coords[k].append(c.get(k, np.nan if k in ("step", "layer") else ""))

    def walk(steps, offset, scale_late):
        inc = rng.normal(size=(len(steps), N_TEXTS)) * np.where(np.asarray(steps) < 1000, 3.0, scale_late)[:, None]
        out = difficulty + offset + np.cumsum(inc, axis=0)
        out[:, DEEP_TEXT] += rng.normal(scale=25.0, size=len(steps))
        return out

    for k, size in enumerate(SIZES):
        L = walk(GRID, -30.0 * (len(SIZES) - k) + rng.normal(scale=3, size=N_TEXTS), 0.4 + 0.05 * k)
        pos = {int(s): i for i, s in enumerate(GRID)}
        if size == "2.8b":
            L[pos[50000]:, PLANTED[0]] -= 25.0
        if size == "410m":
            L[pos[80000], PLANTED[1]] -= 30.0
        if size == "1.4b":
            L[pos[2000]:, WARMUP_JUMP] -= 60.0
        if size == "1b":
            L[pos[116000], :] = L[pos[116000], :] - 300.0 + rng.normal(scale=40.0, size=N_TEXTS)  # the anomalous one
            L[pos[116000], BRIDGE_RAMP] = L[pos[115000], BRIDGE_RAMP] + 15.0
            L[pos[117000]:, BRIDGE_RAMP] += L[pos[115000], BRIDGE_RAMP] + 30.0 - L[pos[117000], BRIDGE_RAMP]
        for s, row in zip(GRID, L):
            add(name(size, s), row, run=size, size=size, step=s, quantization="none", family="pythia",
                source_model=size)
    for seed_run in SEED_RUNS:
        steps = [s for s in SEED_GRID if (seed_run, s) != SEED_MISSING]
        scale = 2.0 if seed_run == ANOMALOUS_SEED else 0.4
        L = walk(steps, -120.0 + rng.normal(scale=3, size=N_TEXTS), scale)
        for s, row in zip(steps, L):
            add(name(seed_run, s), row, run=seed_run, size="410m", step=s, quantization="none", family="pythia",
                source_model=seed_run)
    final = {size: rows[names.index(name(size, 143000))] for size in SIZES}
    for size in ("1b", "2.8b"):
        for bits, noise in (("8bit", 0.5), ("4bit", 2.0)):
            add(f"{name(size, 143000)}[{bits}]", final[size] + rng.normal(scale=noise, size=N_TEXTS),
                quantization=bits, source_model=size, step=143000)
    for child, parent, family in (("1b-chat", "1b@143000", "chat"), ("1b-code", "1b@143000", "code"),
                                  ("1b-chat-v2", "1b-chat", "chat"), ("2.8b-chat", "2.8b@143000", "chat"),
                                  ("410m-code", "410m@143000", "code")):
        base = rows[names.index(parent)]
        add(child, base + rng.normal(scale=4.0, size=N_TEXTS), base_model=parent, family=family)
    for layer in range(5):
        add(f"1b@143000@layer{layer}", final["1b"] + rng.normal(scale=30.0 / (layer + 1), size=N_TEXTS),
            layer=layer, source_model="1b-lens")
    return lm.LogLikelihoodMatrix(np.array(rows), models=names, texts=[f"t{k}" for k in range(N_TEXTS)],
                                  n_bytes=n_bytes, model_coords=coords)


# ---------------------------------------------------------------------- the authors' procedure
def logp_dict(matrix: lm.LogLikelihoodMatrix, runs) -> dict:
    """``{run: {step: vector}}`` of the given runs' checkpoints (the authors' pickle layout)."""
    out: dict = {}
    for i in range(len(matrix.models)):
        run, step = matrix.data["run"].values[i], matrix.data["step"].values[i]
        if run in runs and np.isfinite(step):
            out.setdefault(run, {})[int(step)] = matrix.values[i].copy()
    return out


def ref_kl(a, b, mean_bytes):
    return float(np.var(a - b) / (2 * mean_bytes * np.log(2)))


def ref_preprocess(logp: dict, n_bytes, excluded=frozenset(), warmup=2000, clip=0.02, frac=0.03):
    """preprocess.py in words: clip over non-excluded → max |Δ| per text over consecutive steps ≥ warmup
    per run, skipping pairs with an excluded end → drop the top 3 % → B̄ over kept texts."""
    threshold = np.quantile(np.concatenate([v for r, d in logp.items() for s, v in d.items()
                                            if (r, s) not in excluded]), clip)
    clipped = {r: {s: np.maximum(v, threshold) for s, v in d.items()} for r, d in logp.items()}
    n = len(n_bytes)
    scores = np.full(n, -np.inf)
    for r, d in clipped.items():
        steps = sorted(s for s in d if s >= warmup)
        for p, c in pairwise(steps):
            if (r, p) in excluded or (r, c) in excluded:
                continue
            scores = np.maximum(scores, np.abs(d[c] - d[p]))
    k = round(n * frac)
    dropped = set(np.argsort(-scores)[:k].tolist())
    keep = np.array([t not in dropped for t in range(n)])
    cleaned = {r: {s: v[keep] for s, v in d.items() if (r, s) not in excluded} for r, d in clipped.items()}
    return cleaned, {"threshold": threshold, "scores": scores, "dropped": dropped, "keep": keep,
                     "mean_bytes": float(np.mean(np.asarray(n_bytes)[keep]))}


def ref_fit(lags, d):
    lags, d = np.asarray(lags, float), np.asarray(d, float)
    ok = np.isfinite(lags) & np.isfinite(d) & (lags > 0) & (d > 0)
    if ok.sum() < 2:
        return np.nan, np.nan, 0
    x, y = np.log(lags[ok]), np.log(d[ok])
    slope, icp = np.polyfit(x, y, 1)
    r2 = 1 - np.sum((y - icp - slope * x) ** 2) / np.sum((y - y.mean()) ** 2)
    return slope, r2, int(ok.sum())


def ref_exponents(distance, grid, runs, excluded=frozenset(), window=10, min_start=1000, remaining=False,
                  saved=None):
    """fig5.py in words: starts on the grid with W following grid slots; an excluded start gives NaN;
    targets are the next W grid slots, excluded or missing ones dropped (``remaining``: the next W
    non-excluded ``saved`` (run, step)s instead). ``distance(run, s, t)`` is NaN where a step is missing."""
    out = {}
    for run in runs:
        for k in range(len(grid) - window):
            t0 = int(grid[k])
            if t0 < min_start:
                continue
            if (run, t0) in excluded or not np.isfinite(distance(run, t0, t0)):
                out[run, t0] = (np.nan, np.nan, 0)
                continue
            if remaining:
                later = [int(t) for t in grid[k + 1:] if (run, int(t)) not in excluded
                         and (run, int(t)) in saved][:window]
            else:
                later = [int(t) for t in grid[k + 1:k + 1 + window] if (run, int(t)) not in excluded]
            d = [distance(run, t0, t) for t in later]
            out[run, t0] = ref_fit(np.array(later) - t0, d)
    return out


def ref_consecutive(logp: dict, excluded=frozenset(), interval=1000, after=2000, first=50, last=50):
    """calc_kl.py in words: consecutive remaining steps exactly ``interval`` apart, end > ``after``;
    the first and last pairs per run, pooled."""
    early, later = [], []
    for run, d in logp.items():
        steps = sorted(s for s in d if (run, s) not in excluded)
        pairs = [(p, c) for p, c in pairwise(steps) if c - p == interval and c > after]
        early += [(name(run, p), name(run, c)) for p, c in pairs[:first]]
        later += [(name(run, p), name(run, c)) for p, c in pairs[-last:]]
    return early, later


def ref_final_pairs(cleaned: dict, mean_bytes):
    """KL between every two runs at their last common step."""
    final = max(set.intersection(*(set(d) for d in cleaned.values())))
    return [ref_kl(cleaned[a][final], cleaned[b][final], mean_bytes) for a, b in combinations(sorted(cleaned), 2)]
