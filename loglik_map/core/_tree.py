"""The multiscale bootstrap of a model map's clustering tree over texts (what :meth:`ModelMap.tree` runs).

The texts are the independent units. A replicate at scale ``r`` draws ``n' = ⌊r·N⌋`` texts with
replacement, i.e. multinomial counts ``w`` (summing to ``n'``) over the N texts, and recomputes
the map on them: each model's mean over the drawn texts is removed again and B̄ is the drawn
texts' mean length. The replicate's KL of a pair needs no K × n' copy of the matrix: with
``d = q̃_i − q̃_j`` (the full map's coordinates; a per-text constant cancels in ``d`` and the
per-model one is removed by the re-centring),

    ``KL_w(i, j) = (Σ_k w_k d_k² − (Σ_k w_k d_k)² / n') · N B̄ / (n' B̄_w)``,

so every replicate is a row of two products ``W @ (d²)ᵀ`` and ``W @ Q̃ᵀ`` over all pairs: K × K
numbers per replicate from its counts, the bulk of the work in BLAS. The tree of each replicate
is built with scipy and its clades (sets of models) are counted against the hypotheses (the
observed tree's clades and any others asked for); :func:`~loglik_map.core._multiscale.multiscale_fit`
turns the counts into AU/BP p-values. This is pvclust's ``boot.hclust`` with the texts as
pvclust's rows (Suzuki and Shimodaira 2006).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr
from scipy.cluster import hierarchy

from .._progress import progress_reporter
from ..errors import LoglikMapError, require_extra
from ._blocked import materialise
from ._model_tree import ModelTree
from ._multiscale import DEFAULT_SCALES, multiscale_fit
from ._tree_lineage import clade_hypotheses

if TYPE_CHECKING:
    from ._modelmap import ModelMap

__all__ = ["DEFAULT_SCALES", "LINKAGES", "METRICS", "build_tree", "replicate_kl"]

#: Linkage methods (scipy's names; R's hclust calls ``"weighted"`` ``"mcquitty"`` and ``"ward"`` ``"ward.D2"``).
LINKAGES = ("average", "complete", "single", "weighted", "ward")
#: ``"kl"``: cluster on KL (bits/byte, the squared map distance); ``"euclidean"``: on the map distance √KL.
METRICS = ("kl", "euclidean")
#: Working memory of one block of the replicate products (bytes): bounds the count rows and text columns held at once.
_BLOCK_BYTES = 1 << 25

Progress = Callable[[int, int], None]


# ---------------------------------------------------------------------- replicate KLs from counts
def replicate_kl(Q: np.ndarray, n_bytes: np.ndarray, W: np.ndarray, pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """KL (bits/byte) of the map recomputed on resampled texts, for many replicates at once.

    Parameters
    ----------
    Q : ndarray, shape (K, N)
        The full map's scaled coordinates Q̃ (:attr:`ModelMap.points`).
    n_bytes : ndarray, shape (N,)
        The texts' UTF-8 lengths.
    W : ndarray, shape (R, N)
        Counts: how often each text is drawn in each of R replicates; every row sums to the same n'.
    pairs : (ndarray, ndarray)
        Row indices ``(i, j)`` of the P pairs wanted.

    Returns
    -------
    ndarray, shape (R, P)
        The replicate maps' KL of each pair, in bits/byte: ``var_w(ℓ_i − ℓ_j) / (2 B̄_w ln 2)``
        with the count-weighted variance and mean length over the drawn texts.
    """
    N = Q.shape[1]
    ia, ib = pairs
    size = float(W[0].sum())
    S = np.zeros((W.shape[0], ia.size))
    cols = max(1, _BLOCK_BYTES // (8 * max(ia.size, 1)))
    for start in range(0, N, cols):
        block = Q[:, start:start + cols]
        d2 = block[ia] - block[ib]
        np.square(d2, out=d2)
        S += W[:, start:start + cols] @ d2.T
    M = W @ Q.T
    diff = M[:, ia] - M[:, ib]
    D2 = S - diff * diff / size
    np.maximum(D2, 0.0, out=D2)
    mean_bytes = float(np.mean(n_bytes))
    D2 *= (N * mean_bytes / size) / ((W @ n_bytes) / size)[:, None]
    return D2


def linkage_function(method: str) -> Callable[[np.ndarray], np.ndarray]:
    """``y ↦ scipy.cluster.hierarchy.linkage(y, method)`` for one replicate's finite condensed distances.

    scipy's public ``linkage`` spends ~0.3 ms per call on argument handling, more than the
    clustering of a few dozen models takes; the replicate loop calls the compiled routine it
    dispatches to (same results, checked by the tests) and falls back to the public function
    where a scipy release lacks it.
    """
    compiled = getattr(hierarchy, "_hierarchy", None)
    codes = getattr(hierarchy, "_LINKAGE_METHODS", {})
    name = "mst_single_linkage" if method == "single" else "nn_chain"
    routine = getattr(compiled, name, None)
    if routine is None or method not in codes:  # pragma: no cover - depends on the scipy release
        return lambda y: hierarchy.linkage(y, method=method)
    code = codes[method]

    def link(y: np.ndarray) -> np.ndarray:
        n = round((1 + math.sqrt(1 + 8 * y.size)) / 2)
        y = np.ascontiguousarray(y, dtype=np.float64)
        return np.asarray(routine(y, n) if method == "single" else routine(y, n, code))

    return link


def _distances(kl: np.ndarray, metric: str) -> np.ndarray:
    return kl if metric == "kl" else np.sqrt(kl)


def clade_masks(Z: np.ndarray, n_leaves: int) -> list[int]:
    """Each linkage row's clade as a bit mask over the leaves (bit i: leaf i is in it)."""
    masks = [1 << i for i in range(n_leaves)]
    for a, b in Z[:, :2].astype(np.int64).tolist():
        masks.append(masks[a] | masks[b])
    return masks[n_leaves:]


def _counts_task(Q: np.ndarray, n_bytes: np.ndarray, size: int, n_rep: int, rng: np.random.Generator,
                 method: str, metric: str, targets: Mapping[int, int]) -> np.ndarray:
    """How many of ``n_rep`` replicates of ``size`` texts contain each target clade (a module-level task)."""
    K, N = Q.shape
    pairs = np.triu_indices(K, 1)
    draws = rng.integers(0, N, size=(n_rep, size))
    W = np.bincount((draws + N * np.arange(n_rep)[:, None]).ravel(), minlength=n_rep * N)
    kl = replicate_kl(Q, n_bytes, W.reshape(n_rep, N).astype(np.float64), pairs)
    counts = np.zeros(len(targets), dtype=np.int64)
    link = linkage_function(method)
    for row in _distances(kl, metric):
        for mask in clade_masks(link(row), K):
            hit = targets.get(mask)
            if hit is not None:
                counts[hit] += 1
    return counts


# ---------------------------------------------------------------------- checks
def _check(method: str, metric: str, n_boot: int, scales: Sequence[float], n_models: int, n_texts: int) -> np.ndarray:
    if method not in LINKAGES:
        raise LoglikMapError(f"unknown linkage {method!r}; use one of {LINKAGES}")
    if metric not in METRICS:
        raise LoglikMapError(f"unknown metric {metric!r}; use one of {METRICS}")
    if method == "ward" and metric != "euclidean":
        raise LoglikMapError("Ward linkage needs Euclidean distances; pass metric='euclidean' (or another linkage)")
    if n_models < 3:
        raise LoglikMapError(f"a tree needs at least 3 models (a clade other than the root), got {n_models}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 10:
        raise LoglikMapError(f"n_boot must be an integer ≥ 10 (pvclust's default is 1000), got {n_boot!r}")
    r = np.asarray(scales, dtype=np.float64).ravel()
    if r.size == 0 or not np.all(np.isfinite(r)) or np.any(r <= 0):
        raise LoglikMapError(f"scales must be positive numbers, e.g. {DEFAULT_SCALES}; got {scales!r}")
    sizes = np.unique(np.floor(n_texts * np.sort(r) + 1e-9).astype(np.int64))  # pvclust: unique(floor(n * r))
    if sizes[0] < 2:
        raise LoglikMapError(f"the smallest scale draws {sizes[0]} text(s) of {n_texts}; a replicate map needs ≥ 2: "
                             "use larger scales or more texts")
    if sizes.size < 3:
        raise LoglikMapError(f"the scales give {sizes.size} distinct replicate sizes of {n_texts} texts; the multiscale "
                             "fit (AU p-values) needs at least 3: pass more scales, e.g. the default "
                             f"{DEFAULT_SCALES}")
    return sizes


# ---------------------------------------------------------------------- the tree
def _observed(Q: np.ndarray, n_bytes: np.ndarray, method: str, metric: str) -> np.ndarray:
    """The linkage of the full map (the replicate with every text once), leaves in optimal order."""
    K, N = Q.shape
    kl = replicate_kl(Q, n_bytes, np.ones((1, N)), np.triu_indices(K, 1))[0]
    if not np.all(np.isfinite(kl)):
        raise LoglikMapError("the map has non-finite KLs; a tree needs finite log-likelihoods")
    return hierarchy.linkage(_distances(kl, metric), method=method, optimal_ordering=True)


def _tasks(sizes: np.ndarray, n_boot: int, per_task: int) -> list[tuple[int, int]]:
    """``(scale index, replicates)`` of every task: each scale's replicates in chunks of ``per_task``."""
    return [(s, min(per_task, n_boot - start)) for s in range(sizes.size) for start in range(0, n_boot, per_task)]


def _run(tasks: list[tuple[int, int]], rngs: list[np.random.Generator], Q: np.ndarray, n_bytes: np.ndarray,
         sizes: np.ndarray, method: str, metric: str, targets: dict[int, int], client: Any,
         report: Progress | None) -> np.ndarray:
    counts = np.zeros((len(targets), sizes.size), dtype=np.int64)
    total, done = sum(n for _, n in tasks), 0
    if client is None:
        for (s, n), rng in zip(tasks, rngs):
            counts[:, s] += _counts_task(Q, n_bytes, int(sizes[s]), n, rng, method, metric, targets)
            done += n
            if report is not None:
                report(done, total)
        return counts
    distributed = require_extra("distributed", "parallel", "running on a dask cluster")
    q, b = client.scatter([Q, n_bytes], broadcast=True)
    futures = {client.submit(_counts_task, q, b, int(sizes[s]), n, rng, method, metric, targets, pure=False): (s, n)
               for (s, n), rng in zip(tasks, rngs)}
    try:
        for future, result in distributed.as_completed(futures, with_results=True):
            s, n = futures[future]
            counts[:, s] += result
            done += n
            if report is not None:
                report(done, total)
    finally:
        client.cancel(list(futures) + [q, b])
    return counts


def build_tree(mm: ModelMap, *, linkage: str = "average", metric: str = "kl", n_boot: int = 1000,
               scales: Sequence[float] = DEFAULT_SCALES, seed: int | np.random.Generator | None = None,
               clades: Mapping[str, Sequence[str]] | Sequence[Sequence[str]] | pd.DataFrame | None = None,
               progress: bool | Progress | None = None, client: Any = None) -> ModelTree:
    """The clustering tree of a map with multiscale-bootstrap AU/BP p-values of its clades (see :meth:`ModelMap.tree`)."""
    models = np.asarray(mm.models)
    K, N = len(models), mm.n_texts
    sizes = _check(linkage, metric, n_boot, scales, K, N)
    tests = clade_hypotheses(clades, models)
    Q = materialise(mm.points.data)
    n_bytes = np.asarray(mm.matrix.n_bytes, dtype=np.float64)
    Z = _observed(Q, n_bytes, linkage, metric)
    masks = clade_masks(Z, K)
    targets = {mask: i for i, mask in enumerate(masks)}
    test_rows = []
    for mask in tests.masks:
        if mask not in targets:
            targets[mask] = len(targets)
        test_rows.append(targets[mask])
    per_task = max(1, min(n_boot, _BLOCK_BYTES // (8 * max(N, K * (K - 1) // 2))))
    tasks = _tasks(sizes, n_boot, per_task)
    rngs = np.random.default_rng(seed).spawn(len(tasks))
    with progress_reporter(progress, desc="multiscale bootstrap", unit="replicate") as report:
        counts = _run(tasks, rngs, Q, n_bytes, sizes, linkage, metric, targets, client, report)
    r = sizes / N
    fits = multiscale_fit(counts, r, n_boot)
    scale_coords = {"scale": r, "n_drawn": ("scale", sizes)}
    clade_counts = xr.DataArray(counts[:K - 1], dims=("clade", "scale"),
                                coords={"clade": np.arange(K - 1), **scale_coords}, name="counts",
                                attrs={"n_boot": n_boot, "quantity": "replicates whose tree has the clade"})
    test_counts = xr.DataArray(counts[test_rows].reshape(len(test_rows), r.size), dims=("test", "scale"),
                               coords={"test": list(tests.names), **scale_coords}, name="counts",
                               attrs={"n_boot": n_boot, "quantity": "replicates whose tree has the tested group"})
    fits = pd.concat([fits.iloc[:K - 1], fits.iloc[test_rows]], ignore_index=True)
    return ModelTree._from_fit(models=models, linkage_matrix=Z, masks=masks, fits=fits, counts=clade_counts,
                              hypotheses=tests, test_counts=test_counts, method=linkage, metric=metric, n_texts=N,
                              n_boot=n_boot)

