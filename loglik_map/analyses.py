"""Further analyses of the paper: fine-tuning lineages, text-resampling stability, the spiral period."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .errors import LoglikMapError, require_extra
from .matrix import LogLikelihoodMatrix
from .modelmap import ModelMap

__all__ = ["lineage", "read_base_model", "text_resampling_stability", "ResamplingStability", "spiral_period",
           "SpiralPeriod"]


# ---------------------------------------------------------------------- lineage
def _front_matter(text: str) -> dict[str, Any]:
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        return {}
    import yaml

    data = yaml.safe_load(text[3:end])
    return data if isinstance(data, dict) else {}


def read_base_model(model: str | PathLike[str], *, token: str | None = None) -> list[str]:
    """The ``base_model`` entries of a model card: a local folder's README.md front matter, or the
    hub card (through huggingface_hub) for a hub id. Empty list when there is none."""
    path = Path(model)
    if path.is_dir():
        readme = path / "README.md"
        meta = _front_matter(readme.read_text(encoding="utf-8")) if readme.is_file() else {}
    else:
        ModelCard = require_extra("huggingface_hub", "models", "reading hub model cards").ModelCard
        try:
            meta = ModelCard.load(str(model), token=token).data.to_dict()
        except Exception as err:  # noqa: BLE001 - no card, offline, gated: report, do not guess
            raise LoglikMapError(f"cannot read the model card of {model!r}: {type(err).__name__}: {err}") from err
    base = meta.get("base_model")
    if base is None:
        return []
    return [str(b) for b in (base if isinstance(base, list) else [base])]


def lineage(models: Sequence[str | PathLike[str]], *, follow: bool = False, token: str | None = None,
            max_depth: int = 10) -> pd.DataFrame:
    """Parent → child links from model cards' ``base_model`` metadata (SPEC §4 fine-tuning pairs).

    Parameters
    ----------
    models : sequence of hub ids or folders
    follow : bool
        Also read the cards of parents outside ``models`` to compute depths further up.
    token : str, optional
        Hub token for gated cards.
    max_depth : int
        Stop following a chain after this many generations (guards against cycles).

    Returns
    -------
    pandas.DataFrame
        One row per model: ``model``, ``parent`` (None for roots and for merges), ``n_parents``,
        ``merge`` (several base models — excluded from fine-tuning pairs), ``depth`` (generations
        from the root along single-parent links).
    """
    names = [str(m) for m in models]
    parents: dict[str, list[str]] = {m: read_base_model(m, token=token) for m in names}

    def parents_of(m: str) -> list[str]:
        if m not in parents:
            parents[m] = read_base_model(m, token=token) if follow else []
        return parents[m]

    def depth(m: str) -> int:
        d, cur = 0, m
        seen = {m}
        while d < max_depth:
            ps = parents_of(cur)
            if len(ps) != 1 or ps[0] in seen:
                break
            cur = ps[0]
            seen.add(cur)
            d += 1
        return d

    rows = []
    for m in names:
        ps = parents[m]
        rows.append({"model": m, "parent": ps[0] if len(ps) == 1 else None, "n_parents": len(ps),
                     "merge": len(ps) > 1, "depth": depth(m)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------- resampling stability
@dataclass(frozen=True)
class ResamplingStability:
    """Stability of pairwise KLs under a change of text sample (SPEC §8; the paper reports 0.99).

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
                              n_bootstrap: int = 200, max_pairs: int = 50) -> ResamplingStability:
    """Recompute all-pairs KL on disjoint random splits of the texts and correlate them; set a
    bootstrap SE over texts beside the closed-form SE for up to ``max_pairs`` pairs."""
    matrix = source.matrix if isinstance(source, ModelMap) else source
    if matrix.n_models < 3:
        raise LoglikMapError("need at least 3 models (2 pairs) to correlate KLs")
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
    boot = np.empty((n_bootstrap, pick.size))
    diffs = L[iu[0][pick]] - L[iu[1][pick]]  # (pairs, N)
    for b in range(n_bootstrap):
        idx = rng.integers(0, matrix.n_texts, size=matrix.n_texts)
        nb = matrix.n_bytes[idx].mean() * 2.0 * math.log(2.0)
        boot[b] = np.var(diffs[:, idx], axis=1) / nb
    a, bnames = matrix.models[iu[0][pick]], matrix.models[iu[1][pick]]
    df = full.pairs(list(zip(a, bnames)))
    df["bootstrap_se"] = boot.std(axis=0, ddof=1)
    labels = [f"{x} | {y}" for x, y in zip(matrix.models[iu[0]], matrix.models[iu[1]])]
    da = xr.DataArray(split_kl, dims=("split", "pair"), coords={"split": np.arange(n_splits), "pair": labels},
                      attrs={"units": "bits/byte"}, name="kl")
    return ResamplingStability(correlation, da, df)


# ---------------------------------------------------------------------- spiral period
@dataclass(frozen=True)
class SpiralPeriod:
    """Period of the oscillation of a trajectory's principal component (App. D.1).

    Attributes
    ----------
    period : int or None
        Lag (in saved points) of the ACF maximum between its 2nd and 3rd zero crossings; None
        if the ACF does not cross zero three times.
    acf : numpy.ndarray
        The autocorrelation function at lags 0, 1, ….
    zero_crossings : tuple of int
        Lags at which the ACF changes sign.
    """

    period: int | None
    acf: np.ndarray
    zero_crossings: tuple[int, ...]


def _acf(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float) - np.mean(x)
    n = x.size
    full = np.correlate(x, x, mode="full")[n - 1 :]
    return full / full[0] if full[0] > 0 else np.zeros(n)


def spiral_period(embedding: xr.DataArray | np.ndarray, component: int = 3) -> SpiralPeriod:
    """Spiral check of SPEC §7: PCA of a (3-D t-SNE) embedding of an ordered trajectory, then the
    ACF of principal component ``component``; the period is the lag of the ACF maximum between its
    2nd and 3rd zero crossings.

    Parameters
    ----------
    embedding : DataArray or array, shape (T, d)
        Points in trajectory order (e.g. ``ModelMap.embed("tsne", 3)`` of a late trajectory,
        sorted by step).
    component : int
        1-based principal component to analyse (the paper uses PC3).
    """
    X = np.asarray(embedding, dtype=float)
    if X.ndim != 2 or X.shape[1] < component or X.shape[0] < 4:
        raise LoglikMapError(f"need at least 4 points with ≥ {component} dimensions, got shape {X.shape}")
    Xc = X - X.mean(axis=0)
    _, _, vt = np.linalg.svd(Xc, full_matrices=False)
    pc = Xc @ vt[component - 1]
    acf = _acf(pc)
    sign = np.sign(acf)
    crossings = tuple(int(k) for k in np.flatnonzero(sign[1:] * sign[:-1] < 0) + 1)
    period = None
    if len(crossings) >= 3:
        lo, hi = crossings[1], crossings[2]
        period = int(lo + np.argmax(acf[lo:hi]))
    return SpiralPeriod(period, acf, crossings)

