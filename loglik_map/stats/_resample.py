"""Fewer texts, same map: likelihood-variance resampling of texts and the text budget of a target SE.

Oyama, Kishino, Yamagiwa & Shimodaira (2025), "Likelihood Variance as Text Importance for
Resampling Texts to Map Language Models" (arXiv 2505.15428; code: shimo-lab/modelmap
``resampling-texts/src/matrix.py``, class ``ColumnSampling``). From the double-centred matrix Q of
the models in hand, text ``s`` is drawn ``n`` times with replacement with probability

* ``"uniform"``: ``π_s = 1 / N``;
* ``"ls"`` (length-squared): ``π_s ∝ Σ_i Q_is²``, the text's log-likelihood variance across models;
* ``"kl"``: ``π_s ∝ sqrt(Σ_i Σ_j (Q_is − Q_js)⁴) = sqrt(2K Σ_i Q_is⁴ + 6 (Σ_i Q_is²)² − 8 Σ_i Q_is Σ_i Q_is³)``,

and a unique text drawn ``c_s`` times carries the importance weight ``c_s / (n π_s)`` (the square of
the authors' ``scaling_factors``); the map's squared distances are then the Horvitz–Thompson
estimates of the full set's (:mod:`loglik_map.core._weights`).
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._units import check_unit, nats_per_bit_per_byte
from ..core._centering import double_center_array
from ..core._matrix import LogLikelihoodMatrix
from ..core._modelmap import ModelMap
from ..core._pair_queries import MIN_TEXTS_FOR_SE
from ..core._validation import TEXT_DIM
from ..core._weights import SELECTION_PREFIX, TEXT_WEIGHT, text_weights
from ..errors import LoglikMapError, UnreliableEstimateWarning, WrongTypeError

__all__ = ["METHODS", "TextBudget", "resample_texts", "resampling_error", "selection_probabilities", "texts_needed"]

#: The selection methods: uniform, length-squared (log-likelihood variance), KL-based.
METHODS = ("uniform", "ls", "kl")
_MAX_PAIRS = 2000


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise LoglikMapError(f"unknown method {method!r}; use one of {METHODS} ('ls' = length-squared: probability "
                             "proportional to a text's log-likelihood variance across models)")
    return method


def _centred(matrix: LogLikelihoodMatrix, what: str) -> np.ndarray:
    if not isinstance(matrix, LogLikelihoodMatrix):
        raise WrongTypeError(f"{what} needs a LogLikelihoodMatrix, got {type(matrix).__name__}")
    if text_weights(matrix.data) is not None:
        raise LoglikMapError(f"{what}: this matrix is already a weighted selection of texts; resample from the full "
                             "text set it came from")
    if matrix.n_models < 2:
        raise LoglikMapError(f"{what} needs at least 2 models to measure how texts separate them, got "
                             f"{matrix.n_models}")
    return np.asarray(double_center_array(np.asarray(matrix.values, dtype=np.float64)).centered)


def selection_probabilities(matrix: LogLikelihoodMatrix, method: str = "ls") -> np.ndarray:
    """Probability of drawing each text under ``method`` (the authors' ``ColumnSampling``).

    Parameters
    ----------
    matrix : LogLikelihoodMatrix
        The models in hand on the full text set (clip it first, as the paper does).
    method : {"ls", "kl", "uniform"}
        Length-squared (log-likelihood variance across models), KL-based, or uniform.

    Returns
    -------
    numpy.ndarray
        Shape (N,), non-negative, sums to 1.
    """
    method = _check_method(method)
    Q = _centred(matrix, "selection_probabilities")
    K, N = Q.shape
    if method == "uniform":
        return np.full(N, 1.0 / N)
    Q2 = Q * Q
    if method == "ls":
        scores = Q2.sum(axis=0)
    else:
        s1, s2, s3, s4 = Q.sum(axis=0), Q2.sum(axis=0), (Q2 * Q).sum(axis=0), (Q2 * Q2).sum(axis=0)
        scores = np.sqrt(np.maximum(2.0 * K * s4 + 6.0 * s2**2 - 8.0 * s1 * s3, 0.0))
    total = scores.sum()
    if not np.isfinite(total) or total <= 0:
        raise LoglikMapError(f"{method!r} sampling needs texts on which the models differ; every text has the same "
                             "log-likelihood under all models (after centring)")
    return np.asarray(scores / total)


def _fingerprint(ids: Sequence[str] | np.ndarray) -> str:
    """The run store's text-set fingerprint (SHA-256 of the ordered ids, 32 hex digits)."""
    h = hashlib.sha256()
    for tid in ids:
        h.update(str(tid).encode("ascii"))
    return h.hexdigest()[:32]


def resample_texts(matrix: LogLikelihoodMatrix, n: int, method: str = "ls", *,
                   seed: int | np.random.Generator | None = None) -> LogLikelihoodMatrix:
    """Draw ``n`` texts with replacement by likelihood variance and keep the unique ones, weighted.

    Parameters
    ----------
    matrix : LogLikelihoodMatrix
        The models in hand on the full text set (N texts; clip it first, as the paper does).
    n : int
        Number of draws (the unique texts kept are fewer: texts drawn twice are kept once).
    method : {"ls", "kl", "uniform"}, default "ls"
        Selection probabilities (see :func:`selection_probabilities`).
    seed : int or numpy.random.Generator, optional
        An int draws exactly as the authors' code with ``np.random.seed(seed)`` does
        (``numpy.random.RandomState(seed).choice``), so their published selections are reproduced.

    Returns
    -------
    LogLikelihoodMatrix
        The unique selected texts in source order, with text coordinates ``text_weight``
        (importance weight ``c_s N_u / (n π_s N)``, averaging 1 in expectation),
        ``selection_count`` (``c_s``) and ``selection_probability`` (``π_s``), and attrs
        ``selection_method``, ``selection_n_draws``, ``selection_source_n_texts``,
        ``selection_source_fingerprint`` (the run store's fingerprint of the full text set) and
        ``selection_seed``. A :class:`~loglik_map.ModelMap` of it is weighted; new models scored on
        the same texts (``TextSet.matching``) join it or are projected onto it.

    Examples
    --------
    >>> import numpy as np, loglik_map as lm
    >>> rng = np.random.default_rng(0)
    >>> m = lm.LogLikelihoodMatrix(-500 + rng.normal(size=(4, 300)) * rng.uniform(0.2, 3, 300),
    ...                            models=list("abcd"), texts=[f"t{k}" for k in range(300)],
    ...                            n_bytes=np.full(300, 900))
    >>> sel = lm.resample_texts(m, 100, "ls", seed=42)
    >>> sel.n_texts <= 100, sel.attrs["selection_method"]
    (True, 'ls')
    """
    probs = selection_probabilities(matrix, method)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise LoglikMapError(f"n (the number of draws) must be a positive integer, got {n!r}")
    N = probs.size
    if isinstance(seed, np.random.Generator):
        draws = seed.choice(N, size=int(n), replace=True, p=probs)
    else:
        draws = np.random.RandomState(seed).choice(N, size=int(n), replace=True, p=probs)
    unique, counts = np.unique(draws, return_counts=True)
    importance = counts / (n * probs[unique])  # the authors' scaling_factors squared; sums to about N
    weights = importance * unique.size / N
    out = matrix.isel({TEXT_DIM: unique})
    da = out.data.assign_coords({TEXT_WEIGHT: (TEXT_DIM, weights), f"{SELECTION_PREFIX}count": (TEXT_DIM, counts),
                                 f"{SELECTION_PREFIX}probability": (TEXT_DIM, probs[unique])})
    da.attrs = {**da.attrs, f"{SELECTION_PREFIX}method": method, f"{SELECTION_PREFIX}n_draws": int(n),
                f"{SELECTION_PREFIX}source_n_texts": int(N),
                f"{SELECTION_PREFIX}source_fingerprint": _fingerprint(matrix.texts),
                f"{SELECTION_PREFIX}seed": "" if seed is None or isinstance(seed, np.random.Generator) else int(seed)}
    return LogLikelihoodMatrix.from_dataarray(da)


@dataclass(frozen=True)
class TextBudget:
    """How many texts a target KL standard error needs (:func:`texts_needed`).

    Attributes
    ----------
    n_draws : int
        Draws with replacement (the ``n`` of :func:`resample_texts`).
    n_unique : int
        Expected number of distinct texts among them: the texts every new model is scored on.
    method : str
        Selection method.
    target_se : float
        The target SE, in ``unit``.
    quantile : float
        Which quantile of the pairs' SEs meets the target (0.5: the median pair).
    full_set_se : float
        The same quantile of the SEs on the whole text set in hand (the error no selection of
        these texts can go below), in ``unit``.
    unit : str
        ``"bits/byte"`` or ``"nats"``.
    n_pairs : int
        Model pairs the budget was computed from.
    """

    n_draws: int
    n_unique: int
    method: str
    target_se: float
    quantile: float
    full_set_se: float
    unit: str
    n_pairs: int

    def __str__(self) -> str:
        return (f"{self.method} sampling: {self.n_draws} draws (≈ {self.n_unique} unique texts) for a KL SE of "
                f"{self.target_se:.3g} {self.unit} at the {self.quantile:g} quantile of {self.n_pairs} pairs; the full "
                f"text set gives {self.full_set_se:.3g}")


def _pairs(K: int, max_pairs: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    ia, ib = np.triu_indices(K, k=1)
    if ia.size > max_pairs:
        keep = np.sort(rng.choice(ia.size, size=max_pairs, replace=False))
        ia, ib = ia[keep], ib[keep]
    return ia, ib


def texts_needed(matrix: LogLikelihoodMatrix, target_se: float, method: str = "ls", *, unit: str = "bits/byte",
                 quantile: float = 0.5, max_pairs: int = _MAX_PAIRS, seed: int = 0) -> TextBudget:
    """Estimate how many texts a target KL standard error needs, from the matrix in hand.

    For a pair with per-text terms ``y_s = (d_s − d̄)²`` (``d = ℓ_a − ℓ_b``), ``n`` draws with
    probabilities ``π`` give the KL with variance ``V / (4 n)``, where
    ``V = Σ_s π_s (y_s / (N π_s) − ȳ)²`` (the variance of the Horvitz–Thompson estimate; for
    uniform draws ``V = var(y)``, the usual SE). The budget is the smallest ``n`` at which the
    ``quantile`` of the pairs' SEs is at most ``target_se``.

    Parameters
    ----------
    matrix : LogLikelihoodMatrix
        The models in hand on the full text set.
    target_se : float
        The KL standard error wanted, in ``unit``.
    method : {"ls", "kl", "uniform"}, default "ls"
        Selection method (see :func:`resample_texts`).
    unit : {"bits/byte", "nats"}
        Unit of ``target_se`` (``"nats"``: nats per text).
    quantile : float, default 0.5
        Which pairs must meet the target: 0.5 the median pair, 0.9 all but the noisiest 10 %.
    max_pairs : int, default 2000
        Pairs used (a random subset, by ``seed``, when there are more).
    seed : int, default 0
        Seed of the pair subset.

    Returns
    -------
    TextBudget
        ``n_draws``, the expected ``n_unique`` texts, and the full set's own SE for comparison.

    Raises
    ------
    LoglikMapError
        A target below what the whole text set gives: more texts are needed, not a selection.
    """
    check_unit(unit)
    if not (isinstance(target_se, (int, float)) and math.isfinite(target_se) and target_se > 0):
        raise LoglikMapError(f"target_se must be a positive number, got {target_se!r}")
    if not 0 < quantile < 1:
        raise LoglikMapError(f"quantile must lie in (0, 1), got {quantile}")
    probs = selection_probabilities(matrix, method)
    L = np.asarray(matrix.values, dtype=np.float64)
    N = L.shape[1]
    ia, ib = _pairs(L.shape[0], max_pairs, np.random.default_rng(seed))
    V = np.empty(ia.size)
    full = np.empty(ia.size)
    for k, (a, b) in enumerate(zip(ia, ib)):
        d = L[a] - L[b]
        y = (d - d.mean()) ** 2
        ybar = y.mean()
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.where(probs > 0, y / (N * probs), 0.0)
        V[k] = float(np.sum(probs * (z - ybar) ** 2))  # a text never drawn (π = 0) has y = 0: nothing is missed
        full[k] = float(np.var(y))
    to_unit = 1.0 if unit == "nats" else 1.0 / nats_per_bit_per_byte(matrix.mean_bytes)
    target_nats = target_se / to_unit
    n_needed = V / (4.0 * target_nats**2)
    full_se = float(np.quantile(np.sqrt(full / (4.0 * N)), quantile)) * to_unit
    if full_se >= target_se:
        raise LoglikMapError(f"a KL SE of {target_se:.3g} {unit} is below what all {N} texts in hand give "
                             f"({full_se:.3g} at the {quantile:g} quantile of the pairs): no selection of these texts "
                             "reaches it; score more texts, or ask for a larger target_se")
    n_draws = max(1, math.ceil(float(np.quantile(n_needed, quantile))))
    n_unique = round(float(np.sum(-np.expm1(n_draws * np.log1p(-np.minimum(probs, 1.0 - 1e-16))))))
    if n_unique < MIN_TEXTS_FOR_SE:
        warnings.warn(f"{method} sampling reaches a KL SE of {target_se:.3g} {unit} with about {n_unique} texts, but "
                      f"SEs from fewer than {MIN_TEXTS_FOR_SE} texts are unreliable; draw at least enough for "
                      f"{MIN_TEXTS_FOR_SE} unique texts", UnreliableEstimateWarning, stacklevel=2)
    return TextBudget(n_draws=n_draws, n_unique=max(1, n_unique), method=method, target_se=float(target_se),
                      quantile=quantile, full_set_se=full_se, unit=unit, n_pairs=int(ia.size))


def resampling_error(selected: ModelMap, full: ModelMap, measure: str = "absolute", *, eps: float = 1e-3) -> float:
    """The authors' error of a map on selected texts against the map on all texts.

    With ``G`` the matrix of squared distances between the models' centred log-likelihood
    vectors summed over the full text set (``G = 2 N KL`` in nats; on a selection, the weighted
    estimate of it), as in shimo-lab/modelmap ``resampling-texts/fig2_resampling_error.py``:

    * ``"absolute"``: ``‖G_sel − G‖_F / ‖G‖_F``;
    * ``"relative"``: ``sqrt(mean((|G_sel − G| / max(G, eps))²))`` over all K² entries.

    Parameters
    ----------
    selected : ModelMap
        The map of a selection (:func:`resample_texts`) or of any subset of the texts.
    full : ModelMap
        The map of the same models on the full text set.
    measure : {"absolute", "relative"}, default "absolute"
        Which error.
    eps : float, default 1e-3
        Floor of the denominator of the relative error (in the units of ``G``: nats summed over
        the full set's texts), the authors' value.

    Returns
    -------
    float
        The error, a ratio without units (0: the selection's map equals the full map).
    """
    if measure not in ("absolute", "relative"):
        raise LoglikMapError(f"unknown measure {measure!r}; use 'absolute' or 'relative'")
    if not (isinstance(selected, ModelMap) and isinstance(full, ModelMap)):
        raise WrongTypeError("resampling_error needs two ModelMaps (the selection's and the full set's)")
    if not np.array_equal(selected.models, full.models):
        raise LoglikMapError("the two maps must hold the same models in the same order")
    n = full.n_texts
    G = 2.0 * n * np.asarray(full.kl(unit="nats").values)
    G_sel = 2.0 * n * np.asarray(selected.kl(unit="nats").values)
    if measure == "absolute":
        return float(np.linalg.norm(G_sel - G) / np.linalg.norm(G))
    return float(np.sqrt(np.mean((np.abs(G_sel - G) / np.maximum(G, eps)) ** 2)))
