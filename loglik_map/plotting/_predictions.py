"""Predicted against actual benchmark scores (:func:`loglik_map.predict_benchmarks`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..errors import LoglikMapError, WrongTypeError
from ._common import new_axes

__all__ = ["plot_predicted_vs_actual"]


def plot_predicted_vs_actual(result: xr.Dataset, benchmark: str | None = None, *, ax: Any = None,
                             color: str = "fold") -> Any:
    """Scatter the cross-validated predictions of one benchmark against its scores, with y = x.

    Parameters
    ----------
    result : xarray.Dataset
        The result of :func:`loglik_map.predict_benchmarks`.
    benchmark : str, optional
        Which benchmark; may be left out when there is one.
    ax : matplotlib Axes, optional
        Draw here; default a new figure.
    color : {"fold", "group"}, default "fold"
        Colour the models by their outer fold or by their group.

    Returns
    -------
    matplotlib Axes
        Titled with the benchmark, Pearson r and RMSE.
    """
    if not isinstance(result, xr.Dataset) or not {"predicted", "actual", "fold"} <= set(result.data_vars):
        raise WrongTypeError("plot_predicted_vs_actual needs the Dataset returned by lm.predict_benchmarks")
    names = [str(b) for b in result["benchmark"].values]
    if benchmark is None:
        if len(names) != 1:
            raise LoglikMapError(f"the result holds {len(names)} benchmarks; name one: {names}")
        benchmark = names[0]
    if benchmark not in names:
        raise LoglikMapError(f"no benchmark {benchmark!r} in the result; it has {names}")
    one = result.sel(benchmark=benchmark)
    y, p = one["actual"].values, one["predicted"].values
    ok = np.isfinite(y) & np.isfinite(p)
    if color not in ("fold", "group") or (color == "group" and "group" not in result.coords):
        raise LoglikMapError(f"color must be 'fold' or 'group' (a grouped result), got {color!r}")
    labels = result["fold"].values if color == "fold" else result["group"].values
    codes = np.unique(labels[ok], return_inverse=True)[1]
    ax = new_axes(ax, figsize=(5.0, 5.0))
    ax.scatter(y[ok], p[ok], c=codes, cmap="tab20", s=18, alpha=0.85)
    low, high = float(min(y[ok].min(), p[ok].min())), float(max(y[ok].max(), p[ok].max()))
    ax.plot([low, high], [low, high], color="0.4", linewidth=1, linestyle="--", label="y = x")
    ax.set_xlabel(f"{benchmark} (actual)")
    ax.set_ylabel(f"{benchmark} (cross-validated prediction)")
    ax.set_title(f"{benchmark}: r = {float(one['r']):.3f}, RMSE = {float(one['rmse']):.3g} "
                 f"({result.attrs.get('outer_cv', '')})")
    ax.set_aspect("equal", adjustable="datalim")
    return ax
