"""The tree of a map with its support (:func:`plot_tree`): a dendrogram with AU/BP on the clades, as pvclust draws it."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..core._modelmap import ModelTree
from ..errors import WrongTypeError, require_extra
from ._common import new_axes

__all__ = ["plot_tree"]

#: pvclust's colours: AU red, BP green; clades that are not supported are drawn in grey.
_AU_COLOR, _BP_COLOR, _PLAIN = "#c0392b", "#1e8449", "0.35"


def _node_positions(linkage: np.ndarray, leaves: np.ndarray) -> np.ndarray:
    """x of every node as scipy's dendrogram places it: leaf at position p at 5 + 10 p, a merge midway between its children."""
    K = leaves.size
    x = np.empty(2 * K - 1)
    x[leaves] = 5.0 + 10.0 * np.arange(K)
    for i, (a, b) in enumerate(linkage[:, :2].astype(np.int64)):
        x[K + i] = 0.5 * (x[a] + x[b])
    return x


def _hex(color: Any) -> str:
    """A colour as scipy's dendrogram wants it (a string)."""
    return color if isinstance(color, str) else "#" + "".join(f"{round(255 * c):02x}" for c in color[:3])


def plot_tree(tree: ModelTree, *, level: float = 0.05, max_only: bool = True, annotate: bool | None = None,
              label_size: Any = "small", ax: Any = None):
    """Dendrogram of a :class:`~loglik_map.core.ModelTree` with the clades' p-values (pvclust's ``plot`` + ``pvrect``).

    Each internal node carries its AU (red, left) and BP (green, right) p-values in percent;
    the clades with ``AU ≥ 1 − level`` (the largest ones, by default) are drawn each in its own
    colour, the rest in grey.

    Parameters
    ----------
    tree : ModelTree
        From :meth:`ModelMap.tree`.
    level : float, default 0.05
        Clades with AU ≥ 1 − level are coloured.
    max_only : bool, default True
        Colour only the largest supported clades (as ``pvrect`` boxes them); False gives every
        supported clade its own colour, nested ones included.
    annotate : bool, optional
        Write AU/BP at the nodes (default: with at most 60 models).
    label_size : str or float, default "small"
        Font size of the model names and p-values.
    ax : matplotlib Axes, optional
        Draw into these axes; default a new figure.

    Returns
    -------
    matplotlib.axes.Axes
        Heights (y) in the tree's unit (bits/byte for ``metric="kl"``).

    References
    ----------
    .. [1] Suzuki, R. and Shimodaira, H. (2006). Pvclust: an R package for assessing the
       uncertainty in hierarchical clustering. Bioinformatics 22(12), 1540–1542.
    """
    if not isinstance(tree, ModelTree):
        raise WrongTypeError(f"plot_tree needs a ModelTree (ModelMap.tree(...)), got {type(tree).__name__}")
    hierarchy = require_extra("scipy.cluster.hierarchy", "plot", "plotting")
    colormaps = require_extra("matplotlib", "plot", "plotting").colormaps
    K = len(tree.models)
    supported = tree.significant(level, max_only=max_only)
    palette = [c for i, c in enumerate(colormaps["tab10"].colors) if i != 7]  # tab10 without its grey
    color_of: dict[int, Any] = {}  # node id → colour; a nested supported clade overrides its parent's
    order = supported.n_members.sort_values(ascending=False, kind="stable").index
    for n, clade in enumerate(order):
        inside = set(supported.members[clade])
        for j, members in enumerate(tree.clades.members):
            if inside.issuperset(members):
                color_of[K + j] = palette[n % len(palette)]
    width = max(6.0, min(0.28 * K, 24.0))
    ax = new_axes(ax, figsize=(width, 5.0))
    hierarchy.dendrogram(tree.linkage, labels=[str(m) for m in tree.models], ax=ax, leaf_rotation=90,
                         leaf_font_size=None, link_color_func=lambda k: _hex(color_of.get(k, _PLAIN)))
    ax.tick_params(axis="x", labelsize=label_size)
    if annotate if annotate is not None else K <= 60:
        x = _node_positions(tree.linkage, tree.leaves)
        for i, row in enumerate(tree.clades.itertuples()):
            if i == K - 2:  # the root: AU = BP = 1 by construction
                continue
            h = tree.linkage[i, 2]
            ax.annotate(f"{round(100 * row.au)}", (x[K + i], h), xytext=(-2, 2), textcoords="offset points",
                        ha="right", va="bottom", color=_AU_COLOR, fontsize=label_size)
            ax.annotate(f"{round(100 * row.bp)}", (x[K + i], h), xytext=(2, 2), textcoords="offset points",
                        ha="left", va="bottom", color=_BP_COLOR, fontsize=label_size)
    ax.set_ylabel(f"height ({tree.unit})")
    ax.set_title(f"{tree.method} linkage; AU (red) / BP (green) in %; AU ≥ {round(100 * (1 - level))} % in colour",
                 fontsize="medium")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax
