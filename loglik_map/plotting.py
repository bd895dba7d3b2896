"""Figures of the paper (:ref:`method-figures`): map scatter with trajectories, KL scale, consecutive KL, diffusion.

matplotlib is imported when a function is called (the ``plot`` extra). Every function returns the
matplotlib Axes it drew on (pass ``ax=`` to draw into your own figure).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from ._deprecation import renamed_parameter
from .core.groups import ordered_unique
from .core.modelmap import ModelMap
from .dynamics.fits import PowerLawFit
from .dynamics.trajectory import Trajectory
from .errors import require_extra

__all__ = ["plot_diffusion_exponents", "plot_displacement", "plot_exponent_intervals", "plot_kl_scale", "plot_map",
           "plot_step_kl"]


def _plt():
    return require_extra("matplotlib.pyplot", "plot", "plotting")


def _axes(ax: Any, projection: str | None = None):
    if ax is not None:
        return ax
    plt = _plt()
    fig = plt.figure(figsize=(6, 5))
    return fig.add_subplot(projection=projection)


@renamed_parameter("random_state", "seed")
def plot_map(mm: ModelMap, *, embedding: xr.DataArray | None = None, method: str = "pca", n_components: int = 2,
             color: str | None = None, trajectory: Trajectory | None = None, links: Sequence[tuple[str, str]] = (),
             max_width: float = 6.0, ax: Any = None, seed: int = 0, **scatter_kwargs: Any):
    """Scatter of the map's models (PCA or t-SNE, 2-D or 3-D).

    Parameters
    ----------
    mm : ModelMap
    embedding : DataArray, optional
        A precomputed :meth:`ModelMap.embed` result (otherwise computed with ``method``).
    color : str, optional
        Model coordinate to colour by (categorical or numeric).
    trajectory : Trajectory, optional
        Drawn as lines through its points; each segment's width follows the consecutive KL.
    links : list of (a, b)
        Extra segments, e.g. parent → child or original → quantized.
    """
    emb = embedding if embedding is not None else mm.embed(method, n_components, seed=seed)
    d = emb.sizes["component"]
    ax = _axes(ax, "3d" if d == 3 else None)
    pos = {m: emb.values[i, :d] for i, m in enumerate(emb["model"].values)}
    P = emb.values[:, :d]
    if color is not None:
        c = emb[color].values
        if c.dtype.kind in "iuf":
            sc = ax.scatter(*P.T, c=c, cmap="viridis", **scatter_kwargs)
            ax.figure.colorbar(sc, ax=ax, label=color)
        else:
            for v in ordered_unique(c):
                sel = c == v
                ax.scatter(*P[sel].T, label=str(v), **scatter_kwargs)
            ax.legend(fontsize="small", title=color)
    else:
        ax.scatter(*P.T, **scatter_kwargs)
    if trajectory is not None:
        steps = trajectory.step_kl()
        kl = steps["kl"].values
        widths = 0.5 + max_width * kl / kl.max() if kl.size and kl.max() > 0 else np.ones_like(kl)
        for a, b, w in zip(steps["model"].values, steps["model_next"].values, widths):
            if a in pos and b in pos:
                ax.plot(*np.vstack([pos[a], pos[b]]).T, color="k", lw=w, alpha=0.6)
    for a, b in links:
        if a in pos and b in pos:
            ax.plot(*np.vstack([pos[a], pos[b]]).T, color="tab:red", lw=1, ls="--", alpha=0.8)
    label = "PC" if emb.attrs.get("method") == "pca" else "t-SNE "
    ax.set_xlabel(f"{label}1")
    ax.set_ylabel(f"{label}2")
    return ax


def plot_kl_scale(pairs: pd.DataFrame, *, ax: Any = None, linthresh: float = 0.1, jitter: float = 0.15, seed: int = 0):
    """One strip per setting of :func:`loglik_map.kl_scale_pairs`, symlog axis linear up to 0.1."""
    ax = _axes(ax)
    rng = np.random.default_rng(seed)
    settings = ordered_unique(pairs["setting"].to_numpy())
    for k, s in enumerate(settings):
        kl = pairs.loc[pairs.setting == s, "kl"].to_numpy()
        ax.scatter(k + rng.uniform(-jitter, jitter, kl.size), kl, s=8, alpha=0.6)
        if kl.size:
            ax.hlines(np.median(kl), k - 0.3, k + 0.3, color="k", lw=2)
    ax.set_yscale("symlog", linthresh=linthresh)
    ax.set_xticks(range(len(settings)), [str(s) for s in settings], rotation=35, ha="right")
    ax.set_ylabel("KL divergence (bits/byte)")
    return ax


def plot_step_kl(steps: xr.Dataset, *, ax: Any = None, logy: bool = True):
    """Consecutive KL along trajectories (:meth:`Trajectory.step_kl`) with ±SE bands (Fig. 4, 14)."""
    ax = _axes(ax)
    order = str(steps.attrs.get("order", "step"))
    for g in ordered_unique(steps["group"].values):
        sel = steps["group"].values == g
        x, y, se = steps[order].values[sel], steps["kl"].values[sel], steps["se"].values[sel]
        ax.plot(x, y, marker=".", label=str(g))
        if np.isfinite(se).any():
            ax.fill_between(x, np.maximum(y - se, 0), y + se, alpha=0.25)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(order)
    ax.set_ylabel(f"KL to next point ({steps.attrs.get('units', '')})")
    if len(set(steps["group"].values.tolist())) > 1:
        ax.legend(fontsize="small")
    return ax


def plot_displacement(trajectory: Trajectory, t0: float, *, window: int = 10, group: Hashable | None = None,
                      ax: Any = None):
    """Log–log displacement ‖q_t − q_t0‖² against t − t0 with the fitted power law (Fig. 5, left)."""
    ax = _axes(ax)
    disp = trajectory.displacement(t0, group)
    lag = disp[trajectory.order].values - t0
    ax.loglog(lag, disp.values, "o", ms=3, label="displacement")
    fit: PowerLawFit = trajectory.diffusion_exponent(t0, window, group)
    x = lag[:window]
    ax.loglog(x, np.exp(fit.intercept) * x**fit.exponent, "-", label=f"c = {fit.exponent:.2f} (r² = {fit.r2:.2f})")
    ax.set_xlabel("t − t0")
    ax.set_ylabel(f"squared distance ({disp.attrs.get('units', '')})")
    ax.legend(fontsize="small")
    return ax


def plot_diffusion_exponents(loglik: xr.Dataset, weights: xr.Dataset | None = None, *, ax: Any = None):
    """c(t0) for log-likelihoods and, beside them, weights (Fig. 5, right)."""
    ax = _axes(ax)
    for name, ds in (("log-likelihood", loglik), ("weights", weights)):
        if ds is None:
            continue
        for g in ordered_unique(ds["group"].values):
            sel = ds["group"].values == g
            line, = ax.plot(ds["t0"].values[sel], ds["exponent"].values[sel], marker=".",
                            ls="-" if name == "log-likelihood" else "--", label=f"{name} {g}" if g != "all" else name)
            if "bootstrap_low" in ds:  # intervals from loglik_map.uncertainty.exponent_intervals
                ax.fill_between(ds["t0"].values[sel], ds["bootstrap_low"].values[sel], ds["bootstrap_high"].values[sel],
                                color=line.get_color(), alpha=0.2, lw=0)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xlabel("t0")
    ax.set_ylabel("diffusion exponent c")
    ax.legend(fontsize="small")
    return ax


def plot_exponent_intervals(exponents: xr.Dataset, *, ax: Any = None, label: str = "c(t0)", truth: float | None = None):
    """c(t0) with its bootstrap-over-texts interval (band) and the regression's interval (error bars).

    Parameters
    ----------
    exponents : xarray.Dataset
        From :func:`loglik_map.uncertainty.exponent_intervals` (or
        ``Trajectory.diffusion_exponents(..., n_boot=...)``); with ``n_boot=0`` only the
        regression's intervals are drawn.
    label : str
    truth : float, optional
        A known exponent (synthetic ground truth), drawn as a horizontal line.
    """
    ax = _axes(ax)
    level = 100 * float(exponents.attrs.get("confidence_level", 0.95))
    for g in dict.fromkeys(exponents["group"].values.tolist()):
        sel = exponents["group"].values == g
        t0, c = exponents["t0"].values[sel], exponents["exponent"].values[sel]
        name = label if g == "all" else f"{label} {g}"
        err = np.vstack([c - exponents["regression_low"].values[sel], exponents["regression_high"].values[sel] - c])
        bars = ax.errorbar(t0, c, yerr=err, fmt=".", capsize=2, label=f"{name}, regression {level:g} %")
        if "bootstrap_low" in exponents:
            ax.fill_between(t0, exponents["bootstrap_low"].values[sel], exponents["bootstrap_high"].values[sel],
                            color=bars[0].get_color(), alpha=0.25, lw=0,
                            label=f"bootstrap over texts {level:g} % ({exponents.attrs.get('n_boot')} draws)")
    if truth is not None:
        ax.axhline(truth, color="k", lw=0.8, ls=":", label="true exponent")
    ax.set_xlabel(str(exponents.attrs.get("order", "t0")))
    ax.set_ylabel("diffusion exponent c")
    ax.legend(fontsize="small")
    return ax
