"""The computations of the paired comparisons (:mod:`loglik_map.core._paired`): KL differences with paired SEs.

Two KL estimates of a map share their texts, so their errors are correlated: the SE of a
difference is not ``sqrt(se₁² + se₂²)``. A pair's KL is ``var(ℓ_a − ℓ_b) / (2 B̄ ln 2)``, the mean
over texts of ``t_k = (u_k − ū)² / (2 B̄ ln 2)`` with ``u = ℓ_a − ℓ_b`` (:ref:`method-se`). The difference
of two KLs is the mean of the per-text differences ``t_k − t'_k``; its standard error treats the
texts, not the two estimates, as independent:

``"delta"`` (default)
    ``sqrt(Σ_k (d_k − d̄)²) / N`` with ``d_k = t_k − t'_k`` — the delta method, the same
    formula (and the same population normalisation) as the map's own SE (App. C), which it
    reproduces when the second pair is a model and itself.
``"jackknife"``
    The leave-one-text-out jackknife of the difference, with both variances recomputed (their
    means included) without each text.

Both are calibrated on synthetic data in ``tests/core/test_paired.py`` (coverage of nominal 95 %
intervals over 400 replicates).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from scipy import stats

from .._units import check_unit, nats_per_bit_per_byte
from ..errors import LoglikMapError
from ._difference_test import DifferenceTest
from ._matrix import MODEL_DIM
from ._weights import text_weights, weighted_mean

if TYPE_CHECKING:
    from ._modelmap import ModelMap

__all__ = ["CORRECTIONS", "PAIRED_METHODS", "KLDifference", "compare_with_nearest", "kl_difference_on",
           "nearest_neighbours_on"]

PAIRED_METHODS = ("delta", "jackknife")


@dataclass(frozen=True)
class KLDifference(DifferenceTest):
    """``KL(pair_1) − KL(pair_2)`` on the same texts, with a standard error from the paired texts.

    Attributes
    ----------
    pair_1, pair_2 : tuple of str
    kl_1, kl_2 : float
        The two KL estimates (as :meth:`ModelMap.kl`), in ``unit``.
    difference : float
        ``kl_1 − kl_2``, in ``unit``.
    se : float
        Its standard error (texts as independent draws), in ``unit``. It and the p-value are
        about the difference of the two estimates on the whole population of texts (the
        estimator's target), not the difference of the exact KLs (:ref:`method-se`).
    unit : {"bits/byte", "nats"}
    n_texts : int
    method : {"delta", "jackknife"}
    """

    pair_1: tuple[str, str]
    pair_2: tuple[str, str]
    kl_1: float
    kl_2: float
    difference: float
    se: float
    unit: str
    n_texts: int
    method: str

    def __str__(self) -> str:
        (a, b), (c, d) = self.pair_1, self.pair_2
        if math.isnan(self.p_value):  # 0 / 0: the paired differences are 0 on every text
            verdict = "the two KLs are equal on every text (difference 0, SE 0), so there is nothing to test"
        elif self.p_value >= 0.05:
            verdict = "the difference is not distinguishable from 0 at the 5 % level"
        else:
            verdict = f"KL({a}, {b}) is {'smaller' if self.difference < 0 else 'larger'} (p = {self.p_value:.2g})"
        return (f"KL({a}, {b}) − KL({c}, {d}) = {self.kl_1:.4g} − {self.kl_2:.4g} = {self.difference:.4g} ± "
                f"{self.se:.2g} {self.unit} (paired over N = {self.n_texts} texts, {self.method}); {verdict}")


def _row(mm: ModelMap, name: str) -> np.ndarray:
    return _rows(mm.matrix.data.data, mm._index(name))


def _rows(values: Any, index: Any) -> np.ndarray:
    """``values[index]`` as float64 numpy; of a dask-backed matrix only the chunks holding those rows are read."""
    return np.asarray(values[index], dtype=np.float64)


def _centered(u: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
    """Rows of ``u`` minus their means (float64); with text weights, minus the weighted means and
    times ``sqrt(w)``, so that the plain means of squares below are the map's weighted sums."""
    u = np.asarray(u, dtype=np.float64)
    if weights is None:
        return u - u.mean(axis=-1, keepdims=True)
    return (u - weighted_mean(u, weights, axis=-1)[..., None]) * np.sqrt(weights)


#: Rows of centred differences held at once by :func:`_kl_se_from` (each temporary ≤ 16 MiB).
_BLOCK_ELEMENTS = 1 << 21


def _kl_se_from(me: np.ndarray, values: Any, rows: np.ndarray,
                weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """KL and SE (nats per text, before the factor ½) from row ``me`` to ``values[rows]``.

    Computed a block of rows at a time (O(block · N) memory); every row's numbers are the bits
    an all-at-once computation gives, since each is reduced along its own texts.
    """
    n = values.shape[1]
    kl, se = np.empty(rows.size), np.empty(rows.size)
    step = max(1, _BLOCK_ELEMENTS // max(n, 1))
    for start in range(0, rows.size, step):
        block = slice(start, start + step)
        t = _centered(me[None, :] - _rows(values, rows[block]), weights)
        t *= t
        kl[block] = t.mean(axis=1)
        se[block] = np.sqrt(np.sum((t - t.mean(axis=1, keepdims=True)) ** 2, axis=1)) / n
    return kl, se


def _weights(mm: ModelMap, method: str) -> np.ndarray | None:
    weights = text_weights(mm.matrix.data)
    if weights is not None and method == "jackknife":
        raise LoglikMapError("the jackknife leaves out one text at a time, which a weighted (resampled) text set "
                             "does not support; use method='delta'")
    return weights


def _jackknife_var(u: np.ndarray) -> np.ndarray:
    """Leave-one-out variances (ddof 0) of each row of centred ``u``, shape like ``u``."""
    n = u.shape[-1]
    s2 = np.sum(u * u, axis=-1, keepdims=True)
    mean = -u / (n - 1)  # the row sums to 0, so without u_k it sums to −u_k
    return (s2 - u * u) / (n - 1) - mean * mean


def _difference_se(u: np.ndarray, v: np.ndarray, method: str) -> np.ndarray:
    """SE (nats per text, before the factor ½) of var(u) − var(v) for centred rows."""
    n = u.shape[-1]
    if method == "delta":
        d = u * u - v * v
        d -= d.mean(axis=-1, keepdims=True)
        return np.sqrt(np.sum(d * d, axis=-1)) / n
    if method == "jackknife":
        loo = _jackknife_var(u) - _jackknife_var(v)
        loo -= loo.mean(axis=-1, keepdims=True)
        return np.sqrt((n - 1) / n * np.sum(loo * loo, axis=-1))
    raise LoglikMapError(f"unknown method {method!r}; use one of {PAIRED_METHODS}")


def kl_difference_on(mm: ModelMap, pair_1: Sequence[str], pair_2: Sequence[str], *,
                     unit: str = "bits/byte", method: str = "delta") -> KLDifference:
    """``KL(a, b) − KL(c, d)`` for ``pair_1 = (a, b)``, ``pair_2 = (c, d)``, with a paired SE.

    Parameters
    ----------
    mm : ModelMap
        The map.
    pair_1, pair_2 : (str, str)
        Model names; the pairs may share a model (see :func:`closer`) or not.
    unit : {"bits/byte", "nats"}
        ``"nats"`` is nats per text.
    method : {"delta", "jackknife"}
        See the module documentation.

    Returns
    -------
    KLDifference
    """
    check_unit(unit)
    mm._check_texts(with_se=True)
    matrix = mm.matrix
    (a, b), (c, d) = tuple(pair_1), tuple(pair_2)
    weights = _weights(mm, method)
    u = _centered(_row(mm, a) - _row(mm, b), weights)
    v = _centered(_row(mm, c) - _row(mm, d), weights)
    scale = 2.0 * (1.0 if unit == "nats" else nats_per_bit_per_byte(matrix.mean_bytes))
    kl_1, kl_2 = float(np.mean(u * u)) / scale, float(np.mean(v * v)) / scale
    se = float(_difference_se(u, v, method)) / scale
    return KLDifference((a, b), (c, d), kl_1, kl_2, kl_1 - kl_2, se, unit, matrix.n_texts, method)


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (NaN entries are left out and stay NaN)."""
    out = np.full(p.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="stable")]
    m = order.size
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out[order] = np.minimum(adjusted, 1.0)
    return out


def _step_down_range(z: np.ndarray) -> np.ndarray:
    """Adjusted p-values of the step-down studentized-range test of "farther than the nearest".

    ``z`` (≥ 0 or NaN) are the standardised differences of the ``m − 1`` neighbours from the
    nearest, which was picked as the smallest of the ``m`` estimates. Under a tie of ``r`` models
    with the nearest, the largest such ``z`` is a studentized range of ``r`` estimates (divided
    by √2), not one normal deviate: the ``s``-th largest ``z`` is referred to the range of the
    ``r = m − s + 1`` models not yet separated (Tukey's distribution, infinite degrees of freedom),
    and the adjusted p-values are made non-decreasing down the steps, as in Holm's procedure. With
    two models this is the two-sided normal p-value.
    """
    out = np.full(z.shape, np.nan)
    ok = np.flatnonzero(np.isfinite(z) | (z == np.inf))
    order = ok[np.argsort(-z[ok], kind="stable")]
    m = order.size + 1
    remaining = m - np.arange(order.size)  # models not yet separated, the nearest included
    with np.errstate(invalid="ignore"):
        p = np.where(np.isinf(z[order]), 0.0, stats.studentized_range.sf(np.sqrt(2.0) * z[order], remaining, np.inf))
    out[order] = np.minimum(np.maximum.accumulate(p), 1.0)
    return out


#: Multiple-testing corrections of :func:`nearest_neighbours_on`.
CORRECTIONS = ("range", "holm", "none")


def compare_with_nearest(U: np.ndarray, method: str = "delta",
                         correction: str = "range") -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The tests of :func:`nearest_neighbours_on` on centred differences, nearest row first.

    Parameters
    ----------
    U : ndarray, shape (m, N)
        Centred ``ℓ_model − ℓ_j`` (nats per text) of the ``m`` neighbours kept, sorted by KL
        estimate (row 0 the nearest).
    method : {"delta", "jackknife"}
    correction : {"range", "holm", "none"}

    Returns
    -------
    difference, difference_se, z, p_value, p_adjusted : ndarray, shape (m,)
        The KL differences from the nearest and their SEs in nats per text, then the standard
        scores, two-sided p-values and adjusted p-values (NaN for the nearest itself).
    """
    if correction not in CORRECTIONS:
        raise LoglikMapError(f"unknown correction {correction!r}; use one of {CORRECTIONS}")
    t = U * U
    kl = t.mean(axis=1) / 2.0
    diff = kl - kl[0]
    diff_se = _difference_se(U, np.broadcast_to(U[0], U.shape), method) / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(diff_se > 0, diff / diff_se, np.where(diff > 0, np.inf, np.nan))
    z[0] = np.nan
    p = 2.0 * stats.norm.sf(np.abs(z))  # two-sided; NaN stays NaN
    if correction == "range":
        p_adj = _step_down_range(z)
    else:
        p_adj = _holm(p) if correction == "holm" else p
    return diff, diff_se, z, p, p_adj


def nearest_neighbours_on(mm: ModelMap, model: str, k: int | None = None, *,
                          level: float = 0.05, unit: str = "bits/byte", method: str = "delta",
                          correction: str = "range") -> xr.Dataset:
    """Which of a model's neighbours are distinguishable from the nearest one?

    Every other model ``j`` is compared with the nearest ``n`` by the paired difference
    ``KL(model, j) − KL(model, n)``. The nearest is picked from the same estimates, so the
    difference is never negative and, when ``j`` and ``n`` tie, is the larger of two: a one-sided
    test of it would call tied neighbours distinguishable twice as often as its level. The
    p-values are two-sided, and the default correction refers them to the studentized range of
    the models not yet separated from the nearest (``"range"``): with ``r`` neighbours tied with
    the nearest, the chance that any is called distinguishable stays at ``level``
    (``tests/core/test_paired.py`` simulates maps with two and four ties). ``"holm"`` (Holm over the
    two-sided p-values) keeps it with one tie only (about 7 % at level 5 % with four ties).
    The test is about the estimator's target (:ref:`method-se`), not the exact KL: two
    neighbours whose estimates are biased differently are "distinguishable" when their
    estimates differ, whatever their exact KLs.

    Parameters
    ----------
    mm : ModelMap
        The map.
    model : str
    k : int, optional
        Keep the ``k`` nearest (default all other models); the multiple-testing correction is
        over the ``k − 1`` comparisons kept.
    level : float
        Significance level for ``distinguishable``.
    unit : {"bits/byte", "nats"}
    method : {"delta", "jackknife"}
    correction : {"range", "holm", "none"}
        Step-down studentized range (default), Holm–Bonferroni over the two-sided p-values, or
        none.

    Returns
    -------
    xarray.Dataset
        Over ``model`` (neighbours, nearest first): ``kl`` and ``se`` (as :meth:`ModelMap.kl`),
        ``difference`` and ``difference_se`` (from the nearest, paired), ``z``, ``p_value``
        (two-sided), ``p_adjusted`` and ``distinguishable`` (``p_adjusted < level``; False for
        the nearest itself and for neighbours tied with it). Attributes: ``reference_model``,
        ``nearest``, ``level``, ``method``, ``correction``, ``units``.
    """
    check_unit(unit)
    if not 0 < level < 1:
        raise LoglikMapError(f"level must be in (0, 1), got {level}")
    if correction not in CORRECTIONS:
        raise LoglikMapError(f"unknown correction {correction!r}; use one of {CORRECTIONS}")
    mm._check_texts(with_se=True)
    matrix = mm.matrix
    if matrix.n_models < 3:
        raise LoglikMapError("the nearest-neighbour question needs at least 3 models")
    if k is not None and k < 2:
        raise LoglikMapError(f"k must be at least 2 (the nearest and one more), got {k}")
    me = _row(mm, model)
    others = np.flatnonzero(matrix.models != model)
    weights = _weights(mm, method)
    scale = 1.0 if unit == "nats" else nats_per_bit_per_byte(matrix.mean_bytes)
    values = matrix.data.data  # numpy, or dask: then read a block of rows at a time
    kl, se = _kl_se_from(me, values, others, weights)
    kl, se = kl / (2.0 * scale), se / (2.0 * scale)
    order = np.argsort(kl, kind="stable")[:k]
    kl, se, others = kl[order], se[order], others[order]
    U = _centered(me[None, :] - _rows(values, others), weights)  # only the k kept: O(k N), not O(K N)
    diff, diff_se, z, p, p_adj = compare_with_nearest(U, method, correction)
    diff, diff_se = diff / scale, diff_se / scale
    coords: dict[str, Any] = {MODEL_DIM: matrix.models[others]}
    for name, c in matrix.data.coords.items():
        if c.dims == (MODEL_DIM,) and name != MODEL_DIM:
            coords[str(name)] = (MODEL_DIM, c.values[others])
    return xr.Dataset(
        {"kl": (MODEL_DIM, kl), "se": (MODEL_DIM, se), "difference": (MODEL_DIM, diff),
         "difference_se": (MODEL_DIM, diff_se), "z": (MODEL_DIM, z), "p_value": (MODEL_DIM, p),
         "p_adjusted": (MODEL_DIM, p_adj), "distinguishable": (MODEL_DIM, np.nan_to_num(p_adj, nan=1.0) < level)},
        coords=coords,
        attrs={"reference_model": model, "nearest": str(matrix.models[others[0]]), "level": level, "method": method,
               "correction": correction, "units": unit},
    )
