"""Stability of the map's KLs under a change of text sample: disjoint splits and a bootstrap over texts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from ..core._matrix import LogLikelihoodMatrix
from ..core._modelmap import ModelMap
from ..core._weights import text_weights
from ..errors import LoglikMapError

__all__ = ["ResamplingStability", "text_resampling_stability"]


@dataclass(frozen=True)
class ResamplingStability:
    """Stability of pairwise KLs under a change of text sample (:ref:`method-limits`; the paper reports 0.99).

    Attributes
    ----------
    correlation : float
        Mean Pearson correlation of all-pairs KL between the disjoint text splits.
    split_kl : xarray.DataArray
        Dims ``("split", "pair")``: the KLs on each split (bits/byte).
    pairs : pandas.DataFrame
        Pairs checked by bootstrap: ``a, b, kl, se`` (closed form) and ``bootstrap_se``.
    """

    correlation: float
    split_kl: xr.DataArray
    pairs: pd.DataFrame

    def __str__(self) -> str:
        ratio = float(np.median(self.pairs.bootstrap_se / self.pairs.se)) if len(self.pairs) else math.nan
        return (f"KL correlation between {self.split_kl.sizes['split']} disjoint text splits: {self.correlation:.3f}; "
                f"bootstrap SE / closed-form SE (median over {len(self.pairs)} pairs): {ratio:.2f}")


def text_resampling_stability(source: ModelMap | LogLikelihoodMatrix, n_splits: int = 2, *, seed: int = 0,
                              n_boot: int = 200, max_pairs: int = 50) -> ResamplingStability:
    """How stable the map is under resampled texts.

    Recompute all-pairs KL on disjoint random splits of the texts and correlate them; set a
    bootstrap SE over texts beside the closed-form SE for up to ``max_pairs`` pairs.

    Parameters
    ----------
    source : ModelMap or LogLikelihoodMatrix
        At least 3 models.
    n_splits : int, default 2
        Number of disjoint text splits (2 … N/2).
    seed : int, default 0
        Seed of the splits and the bootstrap.
    n_boot : int, default 200
        Bootstrap resamples of the texts.
    max_pairs : int, default 50
        Pairs whose bootstrap SE is computed.

    Returns
    -------
    ResamplingStability
        The mean correlation of split KLs and the bootstrap vs closed-form SEs.
    """
    matrix = source.matrix if isinstance(source, ModelMap) else source
    if matrix.n_models < 3:
        raise LoglikMapError("need at least 3 models (2 pairs) to correlate KLs")
    if text_weights(matrix.data) is not None:
        raise LoglikMapError("text_resampling_stability splits and bootstraps the texts as equals; this text set is "
                             "weighted (a resample_texts selection): run it on the full text set")
    if not 2 <= n_splits <= matrix.n_texts // 2:
        raise LoglikMapError(f"n_splits must be between 2 and N/2 = {matrix.n_texts // 2}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(matrix.n_texts)
    parts = np.array_split(perm, n_splits)
    iu = np.triu_indices(matrix.n_models, 1)
    split_kl = np.vstack([ModelMap(matrix.isel(text=np.sort(p))).kl().values[iu] for p in parts])
    corr = np.corrcoef(split_kl)
    correlation = float(corr[np.triu_indices(n_splits, 1)].mean())
    full = ModelMap(matrix)
    n_pairs = iu[0].size
    pick = np.sort(rng.choice(n_pairs, size=min(max_pairs, n_pairs), replace=False))
    L = matrix.values
    boot = np.empty((n_boot, pick.size))
    diffs = L[iu[0][pick]] - L[iu[1][pick]]  # (pairs, N)
    for b in range(n_boot):
        idx = rng.integers(0, matrix.n_texts, size=matrix.n_texts)
        nb = matrix.n_bytes[idx].mean() * 2.0 * math.log(2.0)
        boot[b] = np.var(diffs[:, idx], axis=1) / nb
    a, bnames = matrix.models[iu[0][pick]], matrix.models[iu[1][pick]]
    df = full.summary(list(zip(a, bnames)))[["a", "b", "kl", "se"]]
    df["bootstrap_se"] = boot.std(axis=0, ddof=1)
    labels = [f"{x} | {y}" for x, y in zip(matrix.models[iu[0]], matrix.models[iu[1]])]
    da = xr.DataArray(split_kl, dims=("split", "pair"), coords={"split": np.arange(n_splits), "pair": labels},
                      attrs={"units": "bits/byte"}, name="kl")
    return ResamplingStability(correlation, da, df)
