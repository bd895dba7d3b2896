"""The main job out of the box: ``loglik-map demo`` (also ``python -m loglik_map demo``, ``make demo``).

Trains or reuses the miniature model suite (:mod:`loglik_map.demo._zoo`), scores it on the built-in
texts through the same resumable run store as real runs, builds the map and prints the
text-entropy estimate, the KL-scale table of all ten settings of :ref:`method-scale` beside the paper's
values (each setting measured the paper's way: :func:`~loglik_map.kl_scale` with the paper's
per-setting preprocessing and pair rules), consecutive-checkpoint KL, diffusion exponents for
log-likelihoods and weights, and the Hölder estimate; then writes the figures as PNG. Every number
printed is computed, and nothing is said of the paper's numbers that this zoo's do not show.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from .._progress import PROGRESS_DOC, ProgressArg
from .._util import fill_doc
from ..core._matrix import LogLikelihoodMatrix
from ..core._modelmap import ModelMap
from ..dynamics import HolderEstimate, Trajectory, holder_exponent, weight_distances
from ..io import open_matrix
from ..scale import (
    KLSetting,
    PretrainingPreprocessing,
    adjacent_layers,
    child_vs_parent,
    consecutive_checkpoints,
    differing_only_in,
    kl_scale,
    kl_scale_pairs,
    original_vs,
    random_pairs,
)
from ..scoring._runs import score_models
from ..scoring._settings import Execution, Loading
from ..texts import load_texts
from ._zoo import Zoo, ZooConfig, build_zoo

__all__ = ["DemoResult", "run_demo"]


@dataclass(frozen=True)
class DemoResult:
    """What the demo computed (for use after ``run_demo`` in a notebook).

    Attributes
    ----------
    matrix : LogLikelihoodMatrix
        Every scored row (nats per text) with the zoo's coordinates, as scored (no clip).
    map : ModelMap
        Its model map.
    kl_scale : pandas.DataFrame
        The KL scale of the ten settings beside the paper's (:func:`~loglik_map.kl_scale`),
        each preprocessed the paper's way.
    step_kl : pandas.DataFrame
        KL between consecutive checkpoints of the first run (main runs' preprocessing).
    holder : HolderEstimate or None
        The Hölder exponent of the first run at a middle start t0.
    figures : tuple of pathlib.Path
        The figures written.
    out_dir : pathlib.Path
        Where the store and the figures are.
    """

    matrix: LogLikelihoodMatrix
    map: ModelMap
    kl_scale: pd.DataFrame
    step_kl: pd.DataFrame
    holder: HolderEstimate | None
    figures: tuple[Path, ...]
    out_dir: Path


#: Model coordinate naming the pretraining run of a checkpoint row ("" for every other row: quantized
#: copies, logit-lens rows, fine-tunes), so a setting's own preprocessing takes checkpoints only.
TRAJECTORY = "trajectory"


def _with_trajectories(matrix: LogLikelihoodMatrix) -> LogLikelihoodMatrix:
    """``matrix`` with the :data:`TRAJECTORY` coordinate (the run of each checkpoint row, else "")."""
    data = matrix.data
    checkpoint = np.isfinite(data["step"].values.astype(float)) & (data["quantization"].values == "none")
    if "layer" in data.coords:
        checkpoint &= np.isnan(data["layer"].values.astype(float))
    label = np.where(checkpoint, data["run"].values, "").astype(object)
    return LogLikelihoodMatrix.from_dataarray(data.assign_coords({TRAJECTORY: ("model", label)}))


def _recipes(zoo: Zoo) -> tuple[PretrainingPreprocessing, PretrainingPreprocessing]:
    """The paper's two pretraining recipes on the zoo: the main runs (seed 0: the sizes and
    architectures) and the seed runs (every run of the first run's architecture and size)."""
    cfg = zoo.config
    first = cfg.runs[0]
    main = [r.name for r in cfg.runs if r.seed == first.seed]
    seeds = [r.name for r in cfg.runs if (r.arch, r.size) == (first.arch, first.size)]
    return tuple(PretrainingPreprocessing(models={TRAJECTORY: runs}, by=TRAJECTORY, after=cfg.warmup)
                 for runs in (main, seeds))  # type: ignore[return-value]


def _settings(zoo: Zoo) -> dict[str, Any]:
    """The ten settings of the paper's Table 1a on the zoo, each with the paper's preprocessing:
    checkpoints and sizes on the main runs' own preprocessing, seeds on the seed runs' own,
    quantization, fine-tuning, random pairs and layers on the matrix as given; the library's
    pair rules, the random pairs drawn the paper's way (among models of child–parent pairs)."""
    cfg = zoo.config
    half = cfg.steps / 2
    main, seeds = _recipes(zoo)
    return {
        "consecutive checkpoints, last 50k steps": KLSetting(
            consecutive_checkpoints("step", by=TRAJECTORY, after=half), main),
        "consecutive checkpoints, first 50k steps": KLSetting(
            consecutive_checkpoints("step", by=TRAJECTORY, after=cfg.warmup, before=half), main),
        "random seeds": KLSetting(differing_only_in("seed", by=("arch", "size"), final="step"), seeds),
        "model sizes": KLSetting(differing_only_in("size", by=("arch", "seed"), final="step"), main),
        "8-bit quantization": original_vs("quantization", "none", "8bit"),
        "4-bit quantization": original_vs("quantization", "none", "4bit-nf4"),
        "fine-tuned vs base": child_vs_parent("base_model"),
        "random pairs within a model type": random_pairs(by="family", lineage="base_model"),
        "random pairs across all models": random_pairs(lineage="base_model"),
        "adjacent layers": adjacent_layers("layer", by="source_model"),
    }


def _ordering(table: pd.DataFrame) -> str:
    """The rank correlation of the settings' medians with the paper's, as a number, not a claim."""
    both = table[["median", "paper_median"]].dropna() if "paper_median" in table else table.iloc[:0]
    if len(both) < 3:
        return "(too few settings with pairs to compare their ordering with the paper's)"
    rho = spearmanr(both["median"], both["paper_median"]).statistic
    return (f"Ordering of the {len(both)} settings' medians against the paper's: Spearman ρ = {rho:.2f} "
            "(a tiny, briefly trained zoo need not resemble Pythia)")


def _fmt(x: float) -> str:
    return "—" if not np.isfinite(x) else f"{x:.3g}"


def quantization_available() -> bool:
    """Whether bitsandbytes is installed, found without importing it.

    Importing bitsandbytes logs notices of its CPU backend ("Failed to load CPU gemm_4bit_forward
    …"); the scorer imports it inside :func:`~loglik_map.scoring._quiet.quiet_third_party`, which
    silences them, so the demo must not import it first.

    Returns
    -------
    bool
        True when the ``quant`` extra is installed.
    """
    return importlib.util.find_spec("bitsandbytes") is not None


@fill_doc(progress=PROGRESS_DOC)
def run_demo(out_dir: str | PathLike[str] = "loglik-map-demo", *, fast: bool = False, n_texts: int | None = None,
             zoo_dir: str | PathLike[str] | None = None, window: int = 5, progress: ProgressArg = None,
             out: TextIO | None = None) -> DemoResult:
    """Run the whole method on the miniature zoo and the built-in texts.

    Parameters
    ----------
    out_dir : path
        Where the run store and the figures go (reused on the next run: seconds when cached).
    fast : bool
        Use :meth:`ZooConfig.fast` (seconds; for tests) instead of the default zoo (minutes).
    n_texts : int, optional
        Texts sampled from the built-in ``mini`` set (default 800; 200 with ``fast``).
    zoo_dir : path, optional
        Cache of the trained zoo (default ``$LOGLIK_MAP_ZOO`` or ``~/.cache/loglik_map/zoo``).
    window : int
        Saved checkpoints per diffusion-exponent fit.
    progress : bool, callable or None, default None
        Progress over the zoo's training steps, then over the models scored.
        {progress}
    out : file-like, optional
        Where to print (standard output by default).

    Returns
    -------
    DemoResult
        The matrix, the map, the KL scale, the step KLs, the Hölder exponent and the figures.
    """
    out = sys.stdout if out is None else out

    def p(*args: object) -> None:
        print(*args, file=out, flush=True)

    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    cfg = ZooConfig.fast() if fast else ZooConfig()
    n_texts = n_texts or (200 if fast else 800)
    p("loglik_map demo — the model map of a miniature model suite")
    zoo = build_zoo(zoo_dir, cfg, progress=progress)
    p(f"  zoo: {len(cfg.runs)} pretraining runs ({', '.join(zoo.run_names)}), {len(cfg.checkpoints)} checkpoints "
      f"each, {len(cfg.finetune_domains)} fine-tuned children; cached in {zoo.root}")
    texts = load_texts("mini").sample(n_texts, seed=42)
    specs = zoo.specs(loading=Loading(device="cpu"))
    if not quantization_available():
        p("  bitsandbytes is not installed: quantized copies are skipped (pip install 'loglik_map[quant]')")
        specs = [s for s in specs if s.loading is None or s.loading.quantization is None]
    # one store per zoo and text sample: models of another zoo may share names but not weights
    store = out_dir / f"scores-{cfg.fingerprint()}-n{len(texts)}.store"
    summary = score_models(specs, texts, store, progress=progress, execution=Execution(batch_tokens=8192))
    p(f"  {summary}")
    # the map as scored; each KL-scale setting gets the paper's own preprocessing (App. E.1) below
    raw = _with_trajectories(zoo.annotate(open_matrix(store)))
    mm = ModelMap(raw)  # refuses texts that lost tokens: every number below covers whole texts
    p(f"  map: {raw.n_models} rows (models, checkpoints, quantized copies, logit-lens layers) × {raw.n_texts} "
      f"texts of mean {raw.mean_bytes:.0f} bytes, as scored (no clip)")
    tokens = raw.data["n_tokens"].values
    rolled = int((tokens.max(axis=0) >= cfg.max_positions).sum())
    p(f"  every token of every text scored ({int(tokens[0].sum())} per model, none dropped); {rolled} text(s) longer "
      f"than the {cfg.max_positions}-token context were scored in rolling windows")
    best = str(raw.cross_entropy().idxmin().item())
    p(f"\nText-entropy estimate: {raw.entropy():.3f} bits/byte (best model: {best}); on the paper's Pile texts ≈ 0.71 "
      "(other texts, other models: not comparable)")

    # the main runs' preprocessing: clip at 2 %, then drop the 3 % of texts whose log-likelihood jumps most
    # between consecutive checkpoints after warm-up (nothing is excluded in the zoo); checkpoint settings use it
    main_recipe, _ = _recipes(zoo)
    prep = main_recipe.apply(raw)
    matrix = prep.matrix
    p(f"  main runs' checkpoints: {prep}")
    p(f"  outlier texts dropped: {', '.join(prep.dropped_texts[:4])}{', …' if len(prep.dropped_texts) > 4 else ''}")

    settings = _settings(zoo)
    table = kl_scale(raw, settings)
    pairs = kl_scale_pairs(raw, settings)
    p("\nKL scale, bits/byte (the paper's Table 1a): this zoo | the paper's Pythia-scale models")
    cols = ("median", "median_se", "mean", "sd")
    p(f"  {'setting':<42} {'n':>4} {'median':>9} {'± SE':>9} {'mean':>9} {'SD':>9} | {'median':>7} {'mean':>7} {'SD':>7}")
    for name, row in table.iterrows():
        mine = " ".join(f"{_fmt(row[c]):>9}" for c in cols)
        paper = " ".join(f"{_fmt(row.get('paper_' + c, np.nan)):>7}" for c in ("median", "mean", "sd"))
        p(f"  {name:<42} {int(row['count']):>4} {mine} | {paper}")
    p("  (n: pairs; ± SE: median of the pairs' standard errors, over texts. Each setting is measured the paper's")
    p("  way: checkpoints and sizes on the main runs' own preprocessing, seeds on the seed runs' own, the rest on the")
    p("  matrix as scored; random pairs are drawn among the models of child–parent pairs, as many as such pairs)")
    p(f"  {_ordering(table)}")

    first = zoo.run_names[0]
    traj_q = Trajectory(ModelMap(matrix.where_models(**{TRAJECTORY: first})), order="step")
    steps_ds = traj_q.step_kl()
    step_df = steps_ds.to_dataframe().reset_index()[["step", "step_next", "kl", "se"]]
    p(f"\nConsecutive-checkpoint KL along {first} (bits/byte, ± SE):")
    for _, r in step_df.iterrows():
        p(f"  step {int(r.step):>5} → {int(r.step_next):>5}: {r.kl:.4g} ± {r.se:.2g}")

    folders = [zoo.checkpoint(first, int(s)) for s in traj_q.positions()]
    W = weight_distances(folders, names=[str(int(s)) for s in traj_q.positions()], window=window,
                         cache=out_dir / f"weight-distances-{cfg.fingerprint()}.json")
    traj_w = Trajectory.from_distances(W.values, traj_q.positions(), unit="squared parameter distance")
    min_start = cfg.checkpoint_every
    exps_q = traj_q.diffusion_exponents(window=window, min_start=min_start)
    exps_w = traj_w.diffusion_exponents(window=window, min_start=min_start)
    t0s = exps_q["t0"].values
    span = f"{t0s.min():g}" if t0s.min() == t0s.max() else f"{t0s.min():g}–{t0s.max():g}"
    p(f"\nDiffusion exponents over windows of {window} checkpoints from t0 ≥ {min_start} (the paper's §4, Table 3):")
    p(f"  log-likelihoods: c_q = {exps_q.exponent.mean():.3f} (median r² {float(np.nanmedian(exps_q.r2)):.2f}, "
      f"{exps_q.sizes['start']} start(s), t0 = {span} of {cfg.steps} steps)")
    p(f"  weights:         c_w = {exps_w.exponent.mean():.3f} (median r² {float(np.nanmedian(exps_w.r2)):.2f})")
    p(f"  (the paper's c_q ≈ 0.2 and c_w ≈ 1 are for late training of 143,000-step runs; windows of this "
      f"{cfg.steps}-step run are not comparable with them)")
    t0 = float(exps_q["t0"].values[len(exps_q["t0"]) // 2])
    holder = holder_exponent(traj_q.diffusion_exponent(t0, window), traj_w.diffusion_exponent(t0, window))
    p(f"  at t0 = {t0:g}: {holder}")

    figures = _figures(out_dir, mm, traj_q, pairs, steps_ds, exps_q, exps_w, p)
    p(f"\nDone in {time.perf_counter() - started:.0f} s. Figures and the run store are in {out_dir.resolve()}")
    return DemoResult(raw, mm, table, step_df, holder, figures, out_dir)


def _figures(out_dir: Path, mm: ModelMap, traj, pairs, steps_ds, exps_q, exps_w, p) -> tuple[Path, ...]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        p("  matplotlib is not installed: no figures (pip install 'loglik_map[plot]')")
        return ()
    from .. import plotting

    data = mm.matrix.data
    sel = np.flatnonzero(np.isnan(data["layer"].values)) if "layer" in data.coords else np.arange(len(mm))
    sub = ModelMap(mm.matrix.isel(model=sel))
    links = [(str(b), str(a)) for a, b in zip(sub.models, sub.points["base_model"].values) if b]
    quant = original_vs("quantization", "none")(sub)
    paths = []

    def save(ax, name: str) -> None:
        if ax.figure.get_layout_engine() is None:  # the plotting functions' own figures are laid out already
            ax.figure.tight_layout()
        path = out_dir / name
        ax.figure.savefig(path, dpi=120)
        plt.close(ax.figure)
        paths.append(path)

    ax = plotting.plot_map(sub, color="family", trajectory=traj, links=links + quant)
    ax.set_title("Model map (PCA)")
    save(ax, "map.png")
    _, ax = plt.subplots(figsize=(8, 4.5))
    plotting.plot_kl_scale(pairs, ax=ax)
    ax.set_title("KL scale by setting")
    save(ax, "kl_scale.png")
    _, ax = plt.subplots(figsize=(6, 4))
    plotting.plot_step_kl(steps_ds, ax=ax)
    ax.set_title("KL between consecutive checkpoints")
    save(ax, "consecutive_kl.png")
    _, ax = plt.subplots(figsize=(6, 4))
    plotting.plot_diffusion_exponents(exps_q, exps_w, ax=ax)
    ax.set_title("Diffusion exponents c(t0)")
    save(ax, "diffusion.png")
    if importlib.util.find_spec("plotly") is not None:  # the interactive atlas (the viz extra), layers included
        path = out_dir / "atlas.html"
        plotting.atlas(mm, k=min(8, len(mm) - 1), progress=False).write_html(path)
        paths.append(path)
    p("\nFigures:")
    for path in paths:
        p(f"  {path.resolve()}")
    return tuple(paths)

