"""Figures of the map itself: the models as points (:func:`plot_map`) and their KL matrix (:func:`plot_kl_matrix`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from .._labels import unknown_labels_error
from ..core._groups import ordered_unique
from ..core._modelmap import PAIR_DIM, ModelMap
from ..dynamics._trajectory import Trajectory
from ..errors import LoglikMapError, WrongTypeError, require_extra
from ._common import new_axes, plain_ticks

__all__ = ["plot_kl_matrix", "plot_map"]

#: Points are drawn above lines (trajectories, links), labels above both.
_LINE_Z, _POINT_Z, _LABEL_Z = 2.0, 3.0, 4.0


def _labelled(labels: bool | Sequence[str] | None, models: np.ndarray) -> list[str]:
    if labels is None or labels is False:
        return []
    if labels is True:
        return [str(m) for m in models]
    if isinstance(labels, str):
        labels = [labels]
    wanted = [str(x) for x in labels]
    missing = [x for x in wanted if x not in set(models.tolist())]
    if missing:
        raise unknown_labels_error(missing, list(models), "model", "on the map (labels=)")
    return wanted


def _label_points(ax: Any, pos: dict[str, np.ndarray], names: list[str], fontsize: Any) -> None:
    """Write each name beside its point: to the left of points in the right half (so labels stay in
    the axes), and nudged up by a line where it would overlap a label already placed (2-D)."""
    if not names:
        return
    xs = np.array([p[0] for p in pos.values()])
    middle = 0.5 * (xs.min() + xs.max())
    if pos[names[0]].size == 3:
        for name in names:
            p = pos[name]
            ax.text(*p, f" {name} ", fontsize=fontsize, ha="right" if p[0] > middle else "left", zorder=_LABEL_Z)
        return
    ax.autoscale_view()
    fonts = require_extra("matplotlib.font_manager", "plot", "plotting")
    size = fonts.FontProperties(size=fontsize).get_size_in_points()
    to_points = 72.0 / ax.figure.dpi
    placed: list[tuple[float, float, float]] = []  # x0, x1, y of placed labels, in points
    for name in sorted(names, key=lambda n: (pos[n][1], pos[n][0])):
        p = pos[name]
        right = p[0] > middle
        x, y = ax.transData.transform(p) * to_points
        width = 0.6 * size * len(name)
        x0, x1 = (x - 4 - width, x - 4) if right else (x + 4, x + 4 + width)
        dy = 3.0
        while any(a < x1 and x0 < b and abs((y + dy) - c) < 1.1 * size for a, b, c in placed):
            dy += 1.1 * size
        placed.append((x0, x1, y + dy))
        ax.annotate(name, p, xytext=(-4 if right else 4, dy), textcoords="offset points", fontsize=fontsize,
                    ha="right" if right else "left", va="bottom", zorder=_LABEL_Z)


def plot_map(mm: ModelMap, *, embedding: xr.DataArray | None = None, method: str = "pca", n_components: int = 2,
             color: str | None = None, trajectory: Trajectory | None = None, links: Sequence[tuple[str, str]] = (),
             labels: bool | Sequence[str] | None = None, label_size: Any = "small", max_width: float = 6.0,
             ax: Any = None, seed: int = 0, **scatter_kwargs: Any):
    """Scatter of the map's models (PCA or t-SNE, 2-D or 3-D), the paper's Fig. 2.

    Parameters
    ----------
    mm : ModelMap
        The map whose models are drawn.
    embedding : DataArray, optional
        A precomputed :meth:`ModelMap.embed` result (otherwise computed with ``method``).
    method : {"pca", "tsne"}
        Embedding computed when ``embedding`` is not given.
    n_components : {2, 3}
        Dimension of that embedding (3: a 3-D axes).
    color : str, optional
        Model coordinate to colour by (categorical: a legend; numeric: a colour bar).
    trajectory : Trajectory, optional
        Drawn as lines through its points; each segment's width follows the consecutive KL.
    links : list of (a, b)
        Extra segments, e.g. parent → child or original → quantized.
    labels : bool or list of str, optional
        ``True`` writes every model's name beside its point; a list names the models to label
        (each must be on the map).
    label_size : str or float
        Font size of the labels.
    max_width : float, default 6.0
        Line width of the trajectory's widest segment.
    ax : matplotlib.axes.Axes, optional
        Draw here (default: a new figure).
    seed : int, default 0
        Seed of t-SNE.
    **scatter_kwargs
        Passed to ``ax.scatter``.

    Returns
    -------
    matplotlib.axes.Axes
        Points are drawn above the lines. A new figure uses the constrained layout, so labels and
        the colour bar stay inside it when saved.
    """
    emb = embedding if embedding is not None else mm.embed(method, n_components, seed=seed)
    d = emb.sizes["component"]
    models = emb["model"].values
    names = _labelled(labels, models)
    ax = new_axes(ax, "3d" if d == 3 else None)
    P = emb.values[:, :d]
    pos = {str(m): P[i] for i, m in enumerate(models)}
    scatter_kwargs.setdefault("zorder", _POINT_Z)
    if color is not None:
        if color not in emb.coords:
            raise unknown_labels_error([color], [str(c) for c in emb.coords if emb[c].dims == ("model",)],
                                       "model coordinate", "to colour by")
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
                ax.plot(*np.vstack([pos[a], pos[b]]).T, color="k", lw=w, alpha=0.6, zorder=_LINE_Z)
    for a, b in links:
        if a in pos and b in pos:
            ax.plot(*np.vstack([pos[a], pos[b]]).T, color="tab:red", lw=1, ls="--", alpha=0.8, zorder=_LINE_Z)
    _label_points(ax, pos, names, label_size)
    label = "PC" if emb.attrs.get("method") == "pca" else "t-SNE "
    ax.set_xlabel(f"{label}1")
    ax.set_ylabel(f"{label}2")
    return ax


def _kl_square(kl: ModelMap | xr.DataArray, unit: str) -> xr.DataArray:
    if isinstance(kl, ModelMap):
        return kl.kl(unit=unit)
    if isinstance(kl, xr.DataArray) and kl.ndim == 2 and kl.shape[0] == kl.shape[1]:
        return kl
    raise WrongTypeError(f"plot_kl_matrix needs a ModelMap or a square DataArray such as mm.kl(), got "
                         f"{type(kl).__name__}")


def cluster_order(kl: np.ndarray, method: str = "average") -> np.ndarray:
    """Leaf order of a hierarchical clustering of models by map distance √KL (scipy.cluster.hierarchy).

    Parameters
    ----------
    kl : ndarray, shape (K, K)
        Symmetric KL (squared map distances), zeros on the diagonal.
    method : str
        Linkage method of :func:`scipy.cluster.hierarchy.linkage` (``"average"``, ``"complete"``,
        ``"single"``, ``"ward"``, …); the leaves are ordered optimally.

    Returns
    -------
    ndarray of int, shape (K,)
        Row order that puts similar models next to each other.
    """
    from scipy.cluster import hierarchy
    from scipy.spatial.distance import squareform

    if kl.shape[0] < 3:
        return np.arange(kl.shape[0])
    dist = np.sqrt(np.clip((kl + kl.T) / 2, 0.0, None))
    np.fill_diagonal(dist, 0.0)
    tree = hierarchy.linkage(squareform(dist, checks=False), method=method, optimal_ordering=True)
    return hierarchy.leaves_list(tree)


def plot_kl_matrix(kl: ModelMap | xr.DataArray, *, order: str | Sequence[str] | None = "cluster",
                   method: str = "average", unit: str = "bits/byte", log: bool = True,
                   annotate: bool | None = None, tick_labels: bool | None = None, cmap: str = "magma_r",
                   ax: Any = None):
    """Heat map of the KL between every pair of models, in clustering order (the paper's Fig. 3).

    Parameters
    ----------
    kl : ModelMap or xarray.DataArray
        A map (its :meth:`ModelMap.kl` is drawn), or an all-pairs KL such as ``mm.kl()``.
    order : "cluster", list of str or None
        ``"cluster"``: the leaf order of a hierarchical clustering on map distances √KL
        (:func:`cluster_order`); a list: these models in this order (a subset is fine);
        ``None``: the map's order.
    method : str
        Linkage method for ``order="cluster"``.
    unit : {"bits/byte", "nats"}
        For a map; a DataArray keeps its own ``units``.
    log : bool, default True
        Logarithmic colour scale (KL spans orders of magnitude); the zero diagonal is left blank.
    annotate : bool, optional
        Write each KL in its cell (default: with at most 12 models).
    tick_labels : bool, optional
        Name the models on both axes (default: with at most 40 models).
    cmap : str, default "magma_r"
        Matplotlib colour map.
    ax : matplotlib.axes.Axes, optional
        Draw here (default: a new figure).

    Returns
    -------
    matplotlib.axes.Axes
        With a colour bar labelled with the unit.
    """
    colors = require_extra("matplotlib.colors", "plot", "plotting")
    ticker = require_extra("matplotlib.ticker", "plot", "plotting")
    da = _kl_square(kl, unit)
    rows, cols = da.dims
    names = np.asarray(da[rows].values).astype(str)
    values = np.asarray(da.values, dtype=float)
    if order == "cluster":
        idx = cluster_order(values, method)
    elif order is None:
        idx = np.arange(names.size)
    elif isinstance(order, str):
        raise LoglikMapError(f"order must be 'cluster', a list of model names or None, got {order!r}")
    else:
        wanted = [str(m) for m in order]
        missing = [m for m in wanted if m not in set(names.tolist())]
        if missing:
            raise unknown_labels_error(missing, list(names), "model", "in the KL matrix (order=)")
        idx = np.array([int(np.flatnonzero(names == m)[0]) for m in wanted])
    shown = values[np.ix_(idx, idx)]
    labels = names[idx]
    K = labels.size
    ax = new_axes(ax, figsize=(6.5, 5.5))
    positive = shown[shown > 0]
    if log and positive.size:
        norm = colors.LogNorm(vmin=float(positive.min()), vmax=float(positive.max()))
        image = np.ma.masked_less_equal(shown, 0.0)
    else:
        norm, image = None, shown
    im = ax.imshow(image, cmap=cmap, norm=norm, interpolation="nearest")
    units = da.attrs.get("units", unit)
    bar = ax.figure.colorbar(im, ax=ax, label=f"KL ({units})" if units else "KL")
    if norm is not None:
        bar.ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    plain_ticks(bar.ax.yaxis)
    if tick_labels if tick_labels is not None else K <= 40:
        ax.set_xticks(range(K), labels, rotation=90, fontsize="small")
        ax.set_yticks(range(K), labels, fontsize="small")
    else:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"{K} models" + (" (clustering order)" if order == "cluster" else ""))
    if annotate if annotate is not None else K <= 12:
        middle = np.sqrt(norm.vmin * norm.vmax) if norm is not None else 0.5 * (shown.min() + shown.max())
        for i in range(K):
            for j in range(K):
                if i != j:
                    ax.text(j, i, f"{shown[i, j]:.2g}", ha="center", va="center", fontsize="x-small",
                            color="white" if shown[i, j] > middle else "black")
    if rows == "model" and cols == PAIR_DIM:
        ax.set_title("KL(row, column)", fontsize="medium")
    return ax
