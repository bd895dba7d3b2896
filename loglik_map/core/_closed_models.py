"""Closed models placed from their samples: ``KL(q‖p_i) − KL(q‖p_j)`` without any log-probability of ``q``.

A hosted model ``q`` that returns no log-probabilities can still be *sampled*. Score its samples
x₁ … x_n with open models p_1 … p_K (the usual scorers); then, in nats per text,

    E_q[−log p_i(x)] = H(q) + KL(q‖p_i),

so the difference of two open models' mean negative log-likelihoods estimates
``KL(q‖p_i) − KL(q‖p_j)``: the unknown entropy ``H(q)`` cancels. Per byte (:ref:`closed-models`),
with B_k the UTF-8 bytes of sample k,

    m_i = Σ_k −log p_i(x_k) / (Σ_k B_k · ln 2)            (bits/byte)

and ``m_i − m_j`` is a ratio estimator of ``[KL(q‖p_i) − KL(q‖p_j)] / (E_q[B] ln 2)``. Its standard
error is paired over the samples (both models scored the same x_k) and linearised for the
ratio: with ``d_k = log p_j(x_k) − log p_i(x_k)`` and ``R = Σ d_k / Σ B_k``,

    SE = sd_k(d_k − R B_k) / (√n · B̄ ln 2),

which is ``sd_k(d_k) / (√n B̄ ln 2)`` (SPEC §10) when every sample has the same length, and
accounts for the length being part of each random draw when it is not. Samples drawn more than
once (a :meth:`~loglik_map.TextSet.from_samples` text carries ``n_draws``) count as often as they
were drawn.

What is *not* identified: the absolute ``KL(q‖p_i)`` needs ``H(q)``, which samples alone do not
give (``m_i`` is ``H(q) + KL(q‖p_i)``, an upper bound on the entropy rate of ``q``'s texts, not a
divergence); nor is ``KL(p_i‖q)``, nor ``q``'s place among the *coordinates* of a model map.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from scipy import stats

from .._labels import unknown_labels_error
from .._units import LN2, check_unit
from ..errors import LoglikMapError, LoglikMapWarning, UnreliableEstimateWarning, WrongTypeError
from ._difference_test import DifferenceTest
from ._matrix import MODEL_DIM, TEXT_DIM, LogLikelihoodMatrix
from ._results import MIN_TEXTS_FOR_SE
from ._scoring_checks import check_comparable_rows

__all__ = ["DRAWS_COORD", "IDENTIFIED", "NOT_IDENTIFIED", "SampleComparison", "closer_by_samples",
           "place_by_samples"]

#: Text coordinate: how many times each (unique) sample was drawn (:meth:`TextSet.from_samples`).
DRAWS_COORD = "n_draws"
#: Text coordinates recording how the samples were drawn, checked for tempered sampling.
_UNTEMPERED = {"temperature": 1.0, "top_p": 1.0, "top_k": 0.0}

IDENTIFIED = ("KL(q||p_i) - KL(q||p_ref) for every open model p_i (kl_excess, with a paired SE over the samples), "
              "hence which open model is nearest to q in KL(q||.); and H(q) + KL(q||p_i) (cross_entropy), an upper "
              "bound on the entropy of q's texts")
NOT_IDENTIFIED = ("the absolute KL(q||p_i), which needs the entropy H(q) (samples alone do not give it); the reverse "
                  "KL(p_i||q); q's coordinates on a model map")


@dataclass(frozen=True)
class SampleComparison(DifferenceTest):
    """``KL(q‖a) − KL(q‖b)`` for a closed model ``q`` from its samples, with an SE paired over them.

    Attributes
    ----------
    closed : str
        Name of the sampled (closed) model ``q``.
    model_a, model_b : str
        The two open models.
    cross_entropy_a, cross_entropy_b : float
        ``H(q) + KL(q‖a)`` and ``H(q) + KL(q‖b)``, in ``unit``.
    difference : float
        ``KL(q‖a) − KL(q‖b) = cross_entropy_a − cross_entropy_b``, in ``unit``.
    se : float
        Its standard error over the samples, in ``unit``.
    unit : {"bits/byte", "nats"}
        ``"nats"`` is nats per sample.
    n_samples : int
        Samples drawn (repeated draws counted).
    """

    closed: str
    model_a: str
    model_b: str
    cross_entropy_a: float
    cross_entropy_b: float
    difference: float
    se: float
    unit: str
    n_samples: int

    def __str__(self) -> str:
        q, a, b = self.closed, self.model_a, self.model_b
        verdict = ("not distinguishable at the 5 % level" if not self.p_value < 0.05 else
                   f"{a if self.difference < 0 else b!r} is closer to {q} (p = {self.p_value:.2g})")
        return (f"KL({q}‖{a}) − KL({q}‖{b}) = {self.difference:.4g} ± {self.se:.2g} {self.unit} "
                f"(paired over {self.n_samples} samples of {q}); {verdict}")


def _quantile(confidence_level: float) -> float:
    if not 0.0 < confidence_level < 1.0:
        raise LoglikMapError(f"confidence_level must be in (0, 1), e.g. 0.95, got {confidence_level}")
    return float(stats.norm.ppf(0.5 + confidence_level / 2.0))


@dataclass(frozen=True)
class _Samples:
    """The checked inputs: log-likelihoods (K × n, nats), draws per text, bytes per text, the closed model's name."""

    values: np.ndarray
    draws: np.ndarray
    n_bytes: np.ndarray
    closed: str

    @property
    def n(self) -> float:
        return float(self.draws.sum())

    @property
    def mean_bytes(self) -> float:
        return float(self.draws @ self.n_bytes) / self.n

    def ratio(self, d: np.ndarray, unit: str) -> tuple[np.ndarray, np.ndarray]:
        """Mean of the rows of ``d`` (nats per sample, or bits/byte as a ratio) and its SE over the samples."""
        w, n = self.draws, self.n
        if unit == "nats":
            mean = d @ w / n
            resid = d - mean[..., None]
            scale = 1.0
        else:
            mean = d @ w / float(w @ self.n_bytes)  # nats per byte
            resid = d - mean[..., None] * self.n_bytes
            scale = LN2
            mean = mean / LN2
        var = (resid * resid) @ w / (n - 1.0)
        se = np.sqrt(var / n) / (scale * (self.mean_bytes if unit != "nats" else 1.0))
        return mean, se


def _draws(matrix: LogLikelihoodMatrix) -> np.ndarray:
    coord = matrix.data.coords.get(DRAWS_COORD)
    if coord is None:
        return np.ones(matrix.n_texts)
    if coord.dims != (TEXT_DIM,):
        raise LoglikMapError(f"the {DRAWS_COORD!r} coordinate must be along 'text', not {coord.dims}")
    draws = np.asarray(coord.values, dtype=np.float64)
    if not (np.all(np.isfinite(draws)) and np.all(draws >= 1) and np.all(draws == np.round(draws))):
        raise LoglikMapError(f"the {DRAWS_COORD!r} text coordinate must hold positive whole numbers (how often each "
                             "sample was drawn); rebuild the texts with TextSet.from_samples")
    return draws


def _closed_name(matrix: LogLikelihoodMatrix, closed: str | None) -> str:
    if closed is not None:
        return str(closed)
    coord = matrix.data.coords.get("sampled_from")
    if coord is not None and coord.dims == (TEXT_DIM,):
        names = sorted({str(v) for v in coord.values} - {""})
        if len(names) > 1:
            raise LoglikMapError(f"the texts were sampled from {len(names)} models ({', '.join(names[:3])}); place one "
                                 "closed model at a time: select its texts with matrix.sel(text=...)")
        if names:
            return names[0]
    return "q"


def _warn_tempered(matrix: LogLikelihoodMatrix, closed: str) -> None:
    """Warn when the samples record tempered or truncated sampling: they are then not draws from ``q``."""
    for name, plain in _UNTEMPERED.items():
        coord = matrix.data.coords.get(name)
        if coord is None or coord.dims != (TEXT_DIM,):
            continue
        values = np.asarray(coord.values, dtype=np.float64)
        odd = np.isfinite(values) & (values != plain)
        if odd.any():
            warnings.warn(f"{int(odd.sum())} of the samples of {closed!r} were drawn with {name} ≠ {plain:g} "
                          f"(e.g. {values[odd][0]:g}): they are samples of a distorted distribution, not of {closed} "
                          f"itself, so the KLs placed are to that distortion. Sample with temperature=1, top_p=1 "
                          "and no top_k to place the model", LoglikMapWarning, stacklevel=4)
            return


def _samples(matrix: Any, closed: str | None, allow_truncated: bool, allow_mixed_scoring: bool,
             action: str) -> _Samples:
    if not isinstance(matrix, LogLikelihoodMatrix):
        raise WrongTypeError(f"{action} needs a LogLikelihoodMatrix (open models × samples of the closed model), got "
                             f"{type(matrix).__name__}")
    if matrix.attrs.get("clip_lower_quantile") is not None:
        raise LoglikMapError(f"{action} needs the raw log-likelihoods: this matrix was clipped at the "
                             f"{float(matrix.attrs['clip_lower_quantile']):g} quantile, which raises the lowest values "
                             "and biases every mean. Pass the matrix before .clip()")
    check_comparable_rows(matrix, action, allow_truncated=allow_truncated, allow_mixed_scoring=allow_mixed_scoring)
    draws = _draws(matrix)
    name = _closed_name(matrix, closed)
    n = float(draws.sum())
    if n < 3:
        raise LoglikMapError(f"{action} needs at least 3 samples of {name!r} for a standard error, got {n:g}; "
                             "sample more texts")
    if n < MIN_TEXTS_FOR_SE:
        warnings.warn(f"{action}: standard errors from only {n:g} samples of {name!r}; below {MIN_TEXTS_FOR_SE} the "
                      "normal approximation of the intervals is poor. Sample more texts",
                      UnreliableEstimateWarning, stacklevel=3)
    _warn_tempered(matrix, name)
    values = np.asarray(matrix.values, dtype=np.float64)
    return _Samples(values, draws, np.asarray(matrix.n_bytes, dtype=np.float64), name)


def _index(matrix: LogLikelihoodMatrix, model: str) -> int:
    idx = np.flatnonzero(matrix.models == model)
    if idx.size == 0:
        raise unknown_labels_error([model], matrix.models, "model", "in the matrix")
    return int(idx[0])


def place_by_samples(matrix: LogLikelihoodMatrix, reference: str | None = None, *, closed: str | None = None,
                     unit: str = "bits/byte", confidence_level: float = 0.95, allow_truncated: bool = False,
                     allow_mixed_scoring: bool = False) -> xr.Dataset:
    """Place a closed model ``q`` among open models from samples of ``q`` alone.

    Parameters
    ----------
    matrix : LogLikelihoodMatrix
        Open models (rows) scored on texts sampled from ``q`` (columns), nats, e.g. from
        :func:`~loglik_map.score_models` on :meth:`TextSet.from_samples
        <loglik_map.TextSet.from_samples>`. A ``n_draws`` text coordinate counts repeated samples.
    reference : str, optional
        The open model the excess KLs are measured from. Default: the one with the smallest
        cross-entropy (the nearest to ``q`` on these samples).
    closed : str, optional
        Name of ``q`` (default: the texts' ``sampled_from`` coordinate, else ``"q"``).
    unit : {"bits/byte", "nats"}
        ``"bits/byte"`` divides by the samples' mean UTF-8 bytes B̄ and ln 2; ``"nats"`` is per
        sample.
    confidence_level : float, default 0.95
        Coverage of ``ci_low``/``ci_high``.
    allow_truncated, allow_mixed_scoring : bool, default False
        As for :class:`~loglik_map.ModelMap`: rows that lost tokens to truncation, or rows scored
        under different conventions, are refused unless allowed (their differences are not KLs).

    Returns
    -------
    xarray.Dataset
        Along ``model`` (the matrix's rows and model coordinates):

        ``cross_entropy``, ``cross_entropy_se``
            ``H(q) + KL(q‖p_i)`` in ``unit`` and its SE over the samples.
        ``kl_excess``, ``se``
            ``KL(q‖p_i) − KL(q‖p_ref)`` in ``unit`` and its SE paired over the samples (0 for the
            reference itself).
        ``ci_low``, ``ci_high``
            ``kl_excess ± z·se`` (not clipped at 0: a given reference need not be the nearest).
        ``z``, ``p_value``
            ``kl_excess / se`` and the two-sided p-value of "as close to ``q`` as the reference"
            (NaN for the reference).
        ``closeness_rank``
            0 for the smallest cross-entropy (the nearest open model), 1 for the next, …

        Attributes: ``closed``, ``reference``, ``nearest``, ``units``, ``n_samples`` (draws),
        ``n_unique_samples``, ``mean_bytes``, ``confidence_level``, ``identified`` and
        ``not_identified`` (what the samples do and do not determine: the absolute KL needs
        ``H(q)``).

    Raises
    ------
    LoglikMapError
        Fewer than 3 samples, a clipped matrix (clipping biases the means), truncated or mixed
        scoring (unless allowed), an unknown reference.

    Warns
    -----
    UnreliableEstimateWarning
        Fewer than 32 samples.
    LoglikMapWarning
        The texts record tempered sampling (``temperature ≠ 1``, ``top_p < 1`` or ``top_k``).

    Examples
    --------
    >>> import loglik_map as lm
    >>> ex = lm.synthetic.make_closed_markov_example(n_samples=300, seed=1)
    >>> placed = lm.place_by_samples(ex.matrix)
    >>> placed.attrs["nearest"] == str(ex.exact_kl.idxmin().item())
    True
    """
    check_unit(unit)
    z = _quantile(confidence_level)
    s = _samples(matrix, closed, allow_truncated, allow_mixed_scoring, "place_by_samples")
    ce, ce_se = s.ratio(-s.values, unit)
    nearest = int(np.argmin(ce))
    ref = nearest if reference is None else _index(matrix, reference)
    excess, se = s.ratio(s.values[ref][None, :] - s.values, unit)
    se[ref] = 0.0
    excess[ref] = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        zs = np.where(se > 0, excess / se, np.where(excess == 0, np.nan, np.copysign(np.inf, excess)))
    zs[ref] = np.nan
    p = 2 * stats.norm.sf(np.abs(zs))
    rank = np.empty(ce.size, dtype=np.int64)
    rank[np.argsort(ce, kind="stable")] = np.arange(ce.size)
    coords: dict[str, Any] = {MODEL_DIM: matrix.models}
    for name, c in matrix.data.coords.items():
        if c.dims == (MODEL_DIM,) and name != MODEL_DIM:
            coords[str(name)] = (MODEL_DIM, c.values)
    models = matrix.models
    return xr.Dataset(
        {"cross_entropy": (MODEL_DIM, ce, {"units": unit, "meaning": "H(q) + KL(q||p_i)"}),
         "cross_entropy_se": (MODEL_DIM, ce_se, {"units": unit}),
         "kl_excess": (MODEL_DIM, excess, {"units": unit, "meaning": "KL(q||p_i) - KL(q||p_ref)"}),
         "se": (MODEL_DIM, se, {"units": unit, "meaning": "SE of kl_excess, paired over the samples"}),
         "ci_low": (MODEL_DIM, excess - z * se, {"units": unit}),
         "ci_high": (MODEL_DIM, excess + z * se, {"units": unit}),
         "z": (MODEL_DIM, zs), "p_value": (MODEL_DIM, p), "closeness_rank": (MODEL_DIM, rank)},
        coords=coords,
        attrs={"closed": s.closed, "reference": str(models[ref]),
               "reference_rule": "smallest cross-entropy" if reference is None else "given",
               "nearest": str(models[nearest]), "units": unit, "n_samples": int(s.n),
               "n_unique_samples": int(matrix.n_texts), "mean_bytes": s.mean_bytes,
               "confidence_level": confidence_level, "identified": IDENTIFIED, "not_identified": NOT_IDENTIFIED},
    )


def closer_by_samples(matrix: LogLikelihoodMatrix, a: str, b: str, *, closed: str | None = None,
                      unit: str = "bits/byte", allow_truncated: bool = False,
                      allow_mixed_scoring: bool = False) -> SampleComparison:
    """Is the closed model ``q`` closer to ``a`` than to ``b``? ``KL(q‖a) − KL(q‖b)`` from samples of ``q``.

    The closed-model analogue of :func:`~loglik_map.closer`: ``q`` is known only through the
    texts of ``matrix``, which were sampled from it.

    Parameters
    ----------
    matrix : LogLikelihoodMatrix
        Open models scored on samples of ``q``, nats (as :func:`place_by_samples`).
    a, b : str
        Two open models (rows of ``matrix``).
    closed : str, optional
        Name of ``q`` (default: the texts' ``sampled_from`` coordinate, else ``"q"``).
    unit : {"bits/byte", "nats"}
        ``"nats"`` is nats per sample.
    allow_truncated, allow_mixed_scoring : bool, default False
        As for :func:`place_by_samples`.

    Returns
    -------
    SampleComparison
        Negative ``difference``: ``a`` is closer to ``q``.

    Examples
    --------
    >>> import loglik_map as lm
    >>> ex = lm.synthetic.make_closed_markov_example(n_samples=300, seed=1)
    >>> a, b = ex.exact_kl.sortby(ex.exact_kl).model.values[[0, -1]]
    >>> lm.core.closer_by_samples(ex.matrix, a, b).difference < 0
    True
    """
    check_unit(unit)
    s = _samples(matrix, closed, allow_truncated, allow_mixed_scoring, "closer_by_samples")
    ia, ib = _index(matrix, a), _index(matrix, b)
    ce, _ = s.ratio(-s.values[[ia, ib]], unit)
    diff, se = s.ratio((s.values[ib] - s.values[ia])[None, :], unit)
    return SampleComparison(s.closed, str(a), str(b), float(ce[0]), float(ce[1]), float(diff[0]), float(se[0]), unit,
                            int(s.n))
