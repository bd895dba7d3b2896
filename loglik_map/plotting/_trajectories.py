"""Figures along trajectories: consecutive KL, displacement, diffusion exponents, the logit lens (Figs. 4–5)."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import xarray as xr
from scipy import stats

from .._labels import unknown_labels_error
from ..core._groups import ordered_unique
from ..core._matrix import MODEL_DIM
from ..core._modelmap import ModelMap
from ..dynamics._fits import PowerLawFit
from ..dynamics._trajectory import Trajectory
from ..errors import LoglikMapError, require_extra
from ._common import new_axes

__all__ = ["exponent_band", "plot_diffusion_exponents", "plot_displacement", "plot_exponent_intervals", "plot_logit_lens",
           "plot_step_kl"]


def plot_step_kl(steps: xr.Dataset, *, ax: Any = None, logy: bool = True):
    """Plot the consecutive KL along trajectories with ±SE bands (Fig. 4, 14).

    Parameters
    ----------
    steps : xarray.Dataset
        From :meth:`Trajectory.step_kl <loglik_map.Trajectory.step_kl>`.
    ax : matplotlib.axes.Axes, optional
        Draw here (default: a new figure).
    logy : bool, default True
        Logarithmic KL axis.

    Returns
    -------
    matplotlib.axes.Axes
        One line per trajectory, named in a legend when there are several.
    """
    ax = new_axes(ax)
    order = str(steps.attrs.get("order", "step"))
    for g in ordered_unique(steps["group"].values):
        sel = steps["group"].values == g
        x, y, se = steps[order].values[sel], steps["kl"].values[sel], steps["se"].values[sel]
        line, = ax.plot(x, y, marker=".", label=str(g))
        if np.isfinite(se).any():
            ax.fill_between(x, np.maximum(y - se, 0), y + se, alpha=0.25, color=line.get_color(), lw=0)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(order)
    ax.set_ylabel(f"KL to next point ({steps.attrs.get('units', '')})")
    if len(set(steps["group"].values.tolist())) > 1:
        ax.legend(fontsize="small")
    return ax


def plot_displacement(trajectory: Trajectory, t0: float, *, window: int = 10, group: Hashable | None = None,
                      ax: Any = None):
    """Plot the displacement ‖q_t − q_t0‖² against t − t0, log–log, with the fitted power law (Fig. 5, left).

    Parameters
    ----------
    trajectory : Trajectory
        The trajectory.
    t0 : float
        Start; a kept point of the trajectory.
    window : int, default 10
        Window length W of the fit (:meth:`Trajectory.diffusion_exponent
        <loglik_map.Trajectory.diffusion_exponent>`).
    group : optional
        Which trajectory (needed when there are several).
    ax : matplotlib.axes.Axes, optional
        Draw here (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        The displacements as points, the fit as a line labelled with c and r².
    """
    ax = new_axes(ax)
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


def exponent_band(ds: xr.Dataset, confidence_level: float = 0.95) -> tuple[np.ndarray, np.ndarray, str]:
    """Interval ends of every c(t0) in ``ds`` and what they are.

    A bootstrap interval (``bootstrap_low``/``bootstrap_high`` variables) is used where the dataset
    has one; otherwise the regression's Student-t interval ``c ± t(n − 2) · se`` (NaN where a
    window had fewer than 3 points), as :meth:`PowerLawFit.confidence_interval`.

    Parameters
    ----------
    ds : xarray.Dataset
        From :meth:`Trajectory.diffusion_exponents <loglik_map.Trajectory.diffusion_exponents>`
        or :func:`~loglik_map.exponent_intervals`.
    confidence_level : float, default 0.95
        Coverage of the regression interval (a bootstrap interval keeps its own).

    Returns
    -------
    low, high : numpy.ndarray
        The interval ends, one per start t0.
    label : str
        What the interval is, for a legend.
    """
    if "bootstrap_low" in ds and "bootstrap_high" in ds:
        level = 100 * float(ds.attrs.get("confidence_level", confidence_level))
        return ds["bootstrap_low"].values, ds["bootstrap_high"].values, f"{level:g} % bootstrap interval"
    c, se = ds["exponent"].values.astype(float), ds["se"].values.astype(float)
    n = ds["n_points"].values.astype(float)
    with np.errstate(invalid="ignore"):
        q = np.where(n > 2, stats.t.ppf(0.5 + confidence_level / 2.0, np.maximum(n - 2, 1)), np.nan)
    return c - q * se, c + q * se, f"{100 * confidence_level:g} % interval (regression)"


def plot_diffusion_exponents(loglik: xr.Dataset, weights: xr.Dataset | None = None, *, intervals: bool = True,
                             confidence_level: float = 0.95, ax: Any = None):
    """Plot c(t0) for log-likelihoods and, beside them, weights, with their intervals as bands (Fig. 5, right).

    Parameters
    ----------
    loglik, weights : xarray.Dataset
        From :meth:`Trajectory.diffusion_exponents` (``weights`` optional, drawn dashed).
    intervals : bool, default True
        Shade each curve's interval (:func:`exponent_band`: a bootstrap interval where the
        dataset has one, else the fit's Student-t interval at ``confidence_level``).
    confidence_level : float, default 0.95
        Coverage of the Student-t interval.
    ax : matplotlib.axes.Axes, optional
        Draw here (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        A grey line marks c = 1 (Brownian motion).
    """
    ax = new_axes(ax)
    band_label = None
    for name, ds in (("log-likelihood", loglik), ("weights", weights)):
        if ds is None:
            continue
        nan = np.full(ds.sizes["start"], np.nan)
        low, high, what = exponent_band(ds, confidence_level) if intervals else (nan, nan, "")
        band_label = band_label or what
        for g in ordered_unique(ds["group"].values):
            sel = ds["group"].values == g
            t0 = ds["t0"].values[sel]
            line, = ax.plot(t0, ds["exponent"].values[sel], marker=".", ls="-" if name == "log-likelihood" else "--",
                            label=f"{name} {g}" if g != "all" else name, zorder=3)
            if np.isfinite(low[sel]).any():
                ax.fill_between(t0, low[sel], high[sel], color=line.get_color(), alpha=0.2, lw=0, label=band_label)
                band_label = "_nolegend_"  # one legend entry says what the bands are
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xlabel(f"start t0 ({loglik.attrs.get('order', 'step')})")
    ax.set_ylabel("diffusion exponent c")
    ax.legend(fontsize="small")
    return ax


def plot_exponent_intervals(exponents: xr.Dataset, *, ax: Any = None, label: str = "c(t0)", truth: float | None = None):
    """Plot c(t0) with its bootstrap-over-texts interval (band) and the regression's interval (error bars).

    Parameters
    ----------
    exponents : xarray.Dataset
        From :func:`loglik_map.exponent_intervals` (or ``Trajectory.diffusion_exponents(...,
        n_boot=...)``); with ``n_boot=0`` only the regression's intervals are drawn.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into (default: a new figure).
    label : str
        Legend label of the exponents.
    truth : float, optional
        A known exponent (synthetic ground truth), drawn as a horizontal line.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.
    """
    ax = new_axes(ax)
    level = 100 * float(exponents.attrs.get("confidence_level", 0.95))
    for g in ordered_unique(exponents["group"].values):
        sel = exponents["group"].values == g
        t0, c = exponents["t0"].values[sel], exponents["exponent"].values[sel]
        name = label if g == "all" else f"{label} {g}"
        err = np.vstack([c - exponents["regression_low"].values[sel], exponents["regression_high"].values[sel] - c])
        bars = ax.errorbar(t0, c, yerr=err, fmt=".", capsize=2, label=f"{name}, regression {level:g} %", zorder=3)
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


def plot_logit_lens(mm: ModelMap, *, by: str | None = None, order: str = "layer", unit: str = "bits/byte",
                    logy: bool = False, ax: Any = None):
    """KL from every layer to the final layer, by layer, with ±SE bands: one curve per model (logit lens).

    Parameters
    ----------
    mm : ModelMap
        With logit-lens rows (:class:`~loglik_map.LogitLensScorer`): a numeric ``order``
        coordinate (``layer``; rows without one, NaN, are left out) and a ``by`` coordinate naming
        the model each row comes from.
    by : str, optional
        One curve per value; the final layer of each is its largest ``order``. Default:
        ``parent_model`` (the scorer's name for the model, which the logit-lens scorer records)
        where the map has it, else ``source_model`` (the hub id or folder).
    order : str, default "layer"
        The numeric model coordinate that orders the layers.
    unit : {"bits/byte", "nats"}
        Unit of the KL axis.
    logy : bool, default False
        Logarithmic KL axis (the final layer, KL 0, is then left out).
    ax : matplotlib.axes.Axes, optional
        Draw here (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.
    """
    points = mm.points
    if by is None:
        by = "parent_model" if "parent_model" in points.coords else "source_model"
    for name in (order, by):
        if name not in points.coords or points[name].dims != (MODEL_DIM,):
            known = [str(c) for c in points.coords if points[c].dims == (MODEL_DIM,) and c != MODEL_DIM]
            raise unknown_labels_error([name], known, "model coordinate", "on the map (logit-lens rows need "
                                       f"{order!r} and {by!r})")
    layer = points[order].values.astype(float)
    source = points[by].values
    lens = np.isfinite(layer)
    if not lens.any():
        raise LoglikMapError(f"no row of the map has a finite {order!r}: score models with lm.LogitLensScorer "
                             "(or logit_lens=True) to get one row per layer")
    ax = new_axes(ax)
    for g in ordered_unique(source[lens]):
        rows = np.flatnonzero(lens & (source == g))
        rows = rows[np.argsort(layer[rows], kind="stable")]
        final = str(mm.models[rows[-1]])
        table = mm.summary([(str(mm.models[r]), final) for r in rows], unit=unit)
        x, y, se = layer[rows], table["kl"].to_numpy(), table["se"].to_numpy()
        line, = ax.plot(x, y, marker=".", label=f"{g} (final: {order} {x[-1]:g})", zorder=3)
        ax.fill_between(x, np.maximum(y - se, 0), y + se, color=line.get_color(), alpha=0.25, lw=0)
    if logy:
        ax.set_yscale("log")
    ax.xaxis.set_major_locator(require_extra("matplotlib.ticker", "plot", "plotting").MaxNLocator(integer=True))
    ax.set_xlabel(order)
    ax.set_ylabel(f"KL to the final {order} ({unit})")
    ax.legend(fontsize="small")
    return ax
