"""The KL scale as a figure: one strip of pair KLs per setting (the paper's Fig. 1 and Table 1a)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..core._groups import ordered_unique
from ._common import new_axes, symlog_ticks

__all__ = ["plot_kl_scale"]


def _linthresh(kl: np.ndarray) -> float:
    """The power of ten at or below the smallest positive KL, at most 0.1 (0.1 when there is none)."""
    positive = kl[np.isfinite(kl) & (kl > 0)]
    if not positive.size:
        return 0.1
    return float(min(0.1, 10.0 ** np.floor(np.log10(positive.min()))))


def plot_kl_scale(pairs: pd.DataFrame, *, ax: Any = None, linthresh: float | None = None, jitter: float = 0.15,
                  seed: int = 0):
    """One strip per setting of :func:`loglik_map.kl_scale_pairs`, its median as a bar.

    The KL axis is symlog from 0: linear up to ``linthresh``, logarithmic above, its ticks on
    round numbers labelled plainly (``0.02``, ``0.05``, ``0.1``, ``1``, ``10``). By default the
    linear part ends at the power of ten at or below the smallest positive KL, so every positive
    KL lies on the logarithmic part and is drawn apart from 0 (a KL of 1e-5 bits/byte, as
    between a model and a quantized copy, is not drawn as 0).

    Parameters
    ----------
    pairs : pandas.DataFrame
        Columns ``setting`` and ``kl`` (bits/byte unless ``pairs.attrs["units"]`` says otherwise).
    ax : matplotlib.axes.Axes, optional
        Draw here (default: a new figure).
    linthresh : float, optional
        End of the axis's linear part (default: from the data, at most 0.1).
    jitter : float, default 0.15
        Horizontal spread of a setting's points.
    seed : int, default 0
        Seed of the jitter.

    Returns
    -------
    matplotlib.axes.Axes
        The axes drawn on.
    """
    if linthresh is None:
        linthresh = _linthresh(pairs["kl"].to_numpy(dtype=float))
    ax = new_axes(ax, figsize=(8.0, 4.5))
    rng = np.random.default_rng(seed)
    settings = ordered_unique(pairs["setting"].to_numpy())
    for k, s in enumerate(settings):
        kl = pairs.loc[pairs.setting == s, "kl"].to_numpy()
        ax.scatter(k + rng.uniform(-jitter, jitter, kl.size), kl, s=8, alpha=0.6)
        if kl.size:
            ax.hlines(np.median(kl), k - 0.3, k + 0.3, color="k", lw=2)
    ax.set_yscale("symlog", linthresh=linthresh)
    ax.set_ylim(bottom=0.0)
    symlog_ticks(ax.yaxis, linthresh)
    ax.set_xticks(range(len(settings)), [str(s) for s in settings], rotation=35, ha="right")
    ax.set_ylabel(f"KL divergence ({pairs.attrs.get('units', 'bits/byte')})")
    return ax
