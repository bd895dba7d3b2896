"""What the atlas shows, computed once (:func:`atlas_data`): 2-D positions, each model's exact k nearest
neighbours in the full map space with KL ± SE, which of them a paired test cannot tell from the nearest,
and how many of them stay near in the 2-D picture.

The neighbours come from :meth:`ModelMap.nearest(k=k) <loglik_map.ModelMap.nearest>` (exact, block by block,
never K × K). The paired test is the one of :meth:`ModelMap.nearest(model, k, test=True, correction="holm")
<loglik_map.ModelMap.nearest>` (delta-method SE of ``KL(i, j) − KL(i, nearest)``, two-sided p-values,
Holm over the k − 1 comparisons; the method's default step-down studentized range is slower to
evaluate for every model, and Holm is slightly liberal when several neighbours tie: about 7 % instead
of 5 % with four ties), evaluated for every model at once on its k neighbours: on
the map's points ``q`` (squared distance = KL in bits/byte) the per-text terms are
``e_t = (q_i − q_j)_t² − (q_i − q_n)_t²``, the difference is ``Σ_t e_t`` and its SE
``sqrt(Σ_t (e_t − ē)²)`` — the same numbers the per-model method gives (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import spatial, stats

from .._progress import PROGRESS_DOC, ProgressArg
from .._units import check_unit, nats_per_bit_per_byte
from .._util import fill_doc
from ..errors import LoglikMapError
from ._atlas_lines import edge_paths, resolve_edges

if TYPE_CHECKING:
    from ..core._modelmap import ModelMap

__all__ = ["ATLAS_MAX_MODELS", "TRUSTWORTHINESS_MAX_MODELS", "AtlasData", "atlas_data"]

#: Above this many models the atlas refuses and points to :func:`atlas_table` (a browser cannot hold more).
ATLAS_MAX_MODELS = 100_000
#: scikit-learn's global trustworthiness needs the K × K KL matrix: computed up to this many models.
TRUSTWORTHINESS_MAX_MODELS = 5_000
#: Bytes of the (rows, k, N) float64 work array of the paired test.
_WORK_BYTES = 64 * 2**20


@dataclass(frozen=True)
class AtlasData:
    """The numbers behind an atlas; arrays over models in map order.

    Attributes
    ----------
    models : numpy.ndarray
        Names, shape (K,).
    xy : numpy.ndarray
        2-D positions, shape (K, 2).
    embedding : str
        How ``xy`` was made (``"pca"``, ``"tsne"`` or ``"given"``).
    neighbours : numpy.ndarray
        Indices of each model's k nearest models in the full map space, nearest first, shape (K, k).
    kl, se : numpy.ndarray
        Their KL and its standard error, shape (K, k), in ``unit``.
    tied : numpy.ndarray
        Boolean (K, k): the paired test cannot tell this neighbour from the nearest (Holm-adjusted
        two-sided p ≥ ``level``); False for the nearest itself.
    kept : numpy.ndarray
        Share of each model's k nearest (full map) that are also among its k nearest in 2-D, shape (K,).
    trustworthiness : float or None
        scikit-learn's trustworthiness of the 2-D picture with ``k`` neighbours (None above
        :data:`TRUSTWORTHINESS_MAX_MODELS` models, or without scikit-learn).
    coords : dict
        The model coordinates (family, step, …), name → array (K,).
    pin : str or None
        The pinned model.
    pin_kl, pin_se : numpy.ndarray or None
        KL and SE from the pinned model to every model, shape (K,), in ``unit``.
    successor : numpy.ndarray
        Each checkpoint's next checkpoint in its training run (index, −1 for none), shape (K,).
    successor_kl, successor_se : numpy.ndarray
        KL and SE to it (NaN for none), shape (K,), in ``unit``.
    level : float
        Significance level of the paired test.
    unit : str
        Unit of every KL and SE.
    n_texts : int
        Texts on the map.
    """

    models: np.ndarray
    xy: np.ndarray
    embedding: str
    neighbours: np.ndarray
    kl: np.ndarray
    se: np.ndarray
    tied: np.ndarray
    kept: np.ndarray
    trustworthiness: float | None
    coords: dict[str, np.ndarray]
    pin: str | None
    pin_kl: np.ndarray | None
    pin_se: np.ndarray | None
    successor: np.ndarray
    successor_kl: np.ndarray
    successor_se: np.ndarray
    level: float
    unit: str
    n_texts: int

    @property
    def k(self) -> int:
        """Neighbours per model."""
        return int(self.neighbours.shape[1])


def check_size(n_models: int, what: str = "the atlas") -> None:
    """Refuse maps a browser cannot hold, naming :func:`atlas_table`."""
    if n_models > ATLAS_MAX_MODELS:
        raise LoglikMapError(
            f"{what} draws every model in one HTML file; {n_models:,} models are more than a browser holds "
            f"(limit {ATLAS_MAX_MODELS:,}). Write a table instead with lm.plotting.atlas_table(map, 'atlas.parquet') "
            "(x, y, model coordinates, k-NN ids, KL, SE) and open it in Embedding Atlas or datamapplot")


def _positions(mm: ModelMap, embedding: Any, seed: int, perplexity: float | None) -> tuple[np.ndarray, str]:
    """2-D positions of the models: the map's own embedding, or given ones checked for shape."""
    K = len(mm)
    if isinstance(embedding, str):
        options: dict[str, Any] = {"seed": seed}
        if embedding == "tsne":
            options["perplexity"] = perplexity if perplexity is not None else min(30.0, max((K - 1) / 3, 1.0))
        if embedding not in ("pca", "tsne"):
            raise LoglikMapError(f"unknown embedding {embedding!r}; use 'pca' or 'tsne', or pass the positions "
                                 "themselves (an array or DataArray of shape (K, 2), e.g. from UMAP)")
        return np.asarray(mm.embed(embedding, 2, **options).values, dtype=np.float64), embedding
    if hasattr(embedding, "dims") and "model" in getattr(embedding, "coords", {}):  # a labelled DataArray: map order
        missing = sorted(set(mm.models.tolist()) - set(embedding.coords["model"].values.tolist()))
        if missing:
            raise LoglikMapError(f"the embedding has no position for {len(missing)} mapped model(s), e.g. {missing[:3]}")
        embedding = embedding.sel(model=mm.models)
    xy = np.asarray(getattr(embedding, "values", embedding), dtype=np.float64)
    if xy.shape != (K, 2):
        raise LoglikMapError(f"embedding positions must have shape ({K}, 2) (one row per model, in map order), "
                             f"got {xy.shape}")
    if not np.isfinite(xy).all():
        raise LoglikMapError("embedding positions hold NaN or infinite values; give finite x, y for every model")
    return xy, "given"


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values of every row of ``p`` (NaNs left out of a row's count, as the map's test)."""
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    full = ok.all(axis=1)
    if full.any():
        rows = p[full]
        order = np.argsort(rows, axis=1, kind="stable")
        m = rows.shape[1]
        adjusted = np.maximum.accumulate((m - np.arange(m)) * np.take_along_axis(rows, order, axis=1), axis=1)
        block = np.empty_like(rows)
        np.put_along_axis(block, order, np.minimum(adjusted, 1.0), axis=1)
        out[full] = block
    for r in np.flatnonzero(~full):
        keep = np.flatnonzero(ok[r])
        order = keep[np.argsort(p[r, keep], kind="stable")]
        adjusted = np.maximum.accumulate((order.size - np.arange(order.size)) * p[r, order])
        out[r, order] = np.minimum(adjusted, 1.0)
    return out


def tied_with_nearest(points: np.ndarray, neighbours: np.ndarray, level: float) -> np.ndarray:
    """Which neighbours a paired test cannot tell from the nearest (see the module docstring).

    Parameters
    ----------
    points : numpy.ndarray
        The map's points, shape (K, N); squared distance is KL.
    neighbours : numpy.ndarray
        Each row's neighbours, nearest first, shape (K, k).
    level : float
        Significance level of the Holm-adjusted two-sided test.

    Returns
    -------
    numpy.ndarray
        Boolean (K, k); column 0 (the nearest itself) is False.
    """
    K, k = neighbours.shape
    tied = np.zeros((K, k), dtype=bool)
    if k < 2:
        return tied
    rows = max(1, _WORK_BYTES // (8 * k * max(points.shape[1], 1)))
    for start in range(0, K, rows):
        stop = min(K, start + rows)
        d = points[start:stop, None, :] - points[neighbours[start:stop]]
        d *= d
        e = d[:, 1:, :] - d[:, :1, :]
        diff = e.sum(axis=2)
        e -= e.mean(axis=2, keepdims=True)
        se = np.sqrt(np.einsum("rjt,rjt->rj", e, e))
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(se > 0, diff / se, np.where(diff > 0, np.inf, np.nan))
        p_adj = _holm(2.0 * stats.norm.sf(np.abs(z)))  # two-sided, as ModelMap.nearest's test
        tied[start:stop, 1:] = ~(np.nan_to_num(p_adj, nan=1.0) < level)
    return tied


def kept_in_2d(xy: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """Share of each model's full-space neighbours that are also among its k nearest in 2-D, shape (K,)."""
    K, k = neighbours.shape
    _, near = spatial.cKDTree(xy).query(xy, k=min(k + 1, K))
    near = np.atleast_2d(near)
    # drop the model itself (not always in column 0 when points coincide), else the farthest
    own = near == np.arange(K)[:, None]
    drop = np.where(own.any(axis=1), own.argmax(axis=1), near.shape[1] - 1)
    keep = np.ones(near.shape, dtype=bool)
    keep[np.arange(K), drop] = False
    near = near[keep].reshape(K, near.shape[1] - 1)
    return (neighbours[:, :, None] == near[:, None, :]).any(axis=2).mean(axis=1)


def _trustworthiness(mm: ModelMap, xy: np.ndarray, k: int) -> float | None:
    K = len(mm)
    if K > TRUSTWORTHINESS_MAX_MODELS or not k < K / 2:
        return None
    try:
        from sklearn.manifold import trustworthiness
    except ImportError:
        return None
    kl = np.asarray(mm.kl().values)  # squared distance: the same neighbour ranks as distance
    return float(trustworthiness(kl, xy, n_neighbors=k, metric="precomputed"))


def model_coords(mm: ModelMap) -> dict[str, np.ndarray]:
    """The map's model coordinates (everything over ``model`` but the names), name → array."""
    points = mm.points
    return {str(n): np.asarray(c.values) for n, c in points.coords.items()
            if c.dims == ("model",) and str(n) != "model"}


def _successors(mm: ModelMap, coords: dict[str, np.ndarray], run: str | None,
                unit: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each checkpoint's next one in its run (step order), with the KL ± SE of the step; −1 and NaN elsewhere."""
    K = len(mm)
    nxt, kl, se = np.full(K, -1, dtype=np.int64), np.full(K, np.nan), np.full(K, np.nan)
    kinds = resolve_edges("auto", coords, run)
    if "checkpoints" not in kinds:
        return nxt, kl, se
    pairs = [(a, b) for path in edge_paths("checkpoints", kinds["checkpoints"], coords, mm.models)
             for a, b in pairwise(path)]
    if pairs:
        a, b = np.array(pairs).T
        table = mm.summary([(mm.models[i], mm.models[j]) for i, j in pairs], unit=unit)
        nxt[a], kl[a], se[a] = b, table["kl"].to_numpy(), table["se"].to_numpy()
    return nxt, kl, se


@fill_doc(progress=PROGRESS_DOC)
def atlas_data(mm: ModelMap, *, k: int = 10, embedding: Any = "pca", pin: str | None = None, level: float = 0.05,
               unit: str = "bits/byte", seed: int = 0, perplexity: float | None = None, run: str | None = None,
               progress: ProgressArg = None) -> AtlasData:
    """Compute what :func:`~loglik_map.plotting.atlas` and :func:`~loglik_map.plotting.atlas_table` show.

    Parameters
    ----------
    mm : ModelMap
        The map.
    k : int, default 10
        Neighbours per model, 1 ≤ k < K.
    embedding : {"pca", "tsne"} or array-like, default "pca"
        The 2-D picture: the map's :meth:`~loglik_map.ModelMap.embed`, or positions of shape (K, 2).
    pin : str, optional
        A model whose KL ± SE to every model is shown.
    level : float, default 0.05
        Significance level of the paired test against the nearest neighbour.
    unit : {"bits/byte", "nats"}
        Unit of the KLs and SEs.
    seed : int, default 0
        Seed of t-SNE.
    perplexity : float, optional
        The t-SNE perplexity (default ``min(30, (K − 1) / 3)``).
    run : str, optional
        The coordinate grouping checkpoints into runs (default ``run``, else ``source_model``).
    progress : bool, callable or None, default None
        Progress of the k-NN search over block pairs (:meth:`ModelMap.nearest <loglik_map.ModelMap.nearest>`).
        {progress}

    Returns
    -------
    AtlasData
    """
    check_unit(unit)
    if not 0 < level < 1:
        raise LoglikMapError(f"level must be in (0, 1), got {level}")
    K = len(mm)
    if K < 3:
        raise LoglikMapError(f"an atlas needs at least 3 models, got {K}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < K:
        raise LoglikMapError(f"k must be a whole number with 1 ≤ k < {K} (the other models on this map), got {k!r}")
    pin_kl = pin_se = None
    if pin is not None:
        # one row, O(K N), from the listed-pairs kernel (as mm.kl(pin) and mm.kl_se(pin)); never K × K
        table = mm.summary([(pin, m) for m in mm.models.tolist()], unit=unit)
        pin_kl, pin_se = table["kl"].to_numpy(), table["se"].to_numpy()
    xy, how = _positions(mm, embedding, seed, perplexity)
    nearest = mm.nearest(k=int(k), unit="bits/byte", progress=progress)
    names = nearest["neighbour"].values
    neighbours = pd.Index(mm.models).get_indexer(names.ravel()).reshape(names.shape).astype(np.int64)
    points = np.asarray(mm.points.values, dtype=np.float64)
    scale = 1.0 if unit == "bits/byte" else nats_per_bit_per_byte(mm.mean_bytes)
    coords = model_coords(mm)
    successor, successor_kl, successor_se = _successors(mm, coords, run, unit)
    return AtlasData(
        models=np.asarray(mm.models), xy=xy, embedding=how, neighbours=neighbours,
        kl=np.asarray(nearest["kl"].values) * scale, se=np.asarray(nearest["se"].values) * scale,
        tied=tied_with_nearest(points, neighbours, level), kept=kept_in_2d(xy, neighbours),
        trustworthiness=_trustworthiness(mm, xy, int(k)), coords=coords, pin=pin, pin_kl=pin_kl,
        pin_se=pin_se, successor=successor, successor_kl=successor_kl, successor_se=successor_se, level=level,
        unit=unit, n_texts=mm.n_texts)
