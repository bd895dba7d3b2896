"""Paired comparisons of KL estimates on the same texts: "is A closer to B than to C?".

Two KL estimates of a map share their texts, so their errors are correlated: the SE of a
difference is not ``sqrt(se₁² + se₂²)``. A pair's KL is ``var(ℓ_a − ℓ_b) / (2 B̄ ln 2)``, the mean
over texts of ``t_k = (u_k − ū)² / (2 B̄ ln 2)`` with ``u = ℓ_a − ℓ_b`` (:ref:`method-se`). The
difference of two KLs is the mean of the per-text differences ``t_k − t'_k``; its standard error
treats the texts, not the two estimates, as independent:

``"delta"`` (default)
    ``sqrt(Σ_k (d_k − d̄)²) / N`` with ``d_k = t_k − t'_k`` — the delta method, the same
    formula (and the same population normalisation) as the map's own SE (App. C), which it
    reproduces when the second pair is a model and itself.
``"jackknife"``
    The leave-one-text-out jackknife of the difference, with both variances recomputed (their
    means included) without each text.

Both are calibrated on synthetic data in ``tests/core/test_paired.py`` (coverage of nominal 95 %
intervals over 400 replicates) — for the *estimator's target*, the difference of the two
estimates on the whole population of texts. They are not calibrated for the difference of the
exact KLs: where the two pairs' estimates are biased differently (:doc:`/exact_kl`), a
significant difference of estimates says nothing about the exact KLs (outside checks found
coverage of 0.37–0.55 against them for such pairs). The test of every neighbour of a model
against the nearest one is :meth:`ModelMap.nearest(model, test=True) <loglik_map.ModelMap.nearest>`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..errors import WrongTypeError
from ._matrix import LogLikelihoodMatrix
from ._modelmap import ModelMap
from ._paired_math import PAIRED_METHODS, KLDifference, kl_difference_on

__all__ = ["PAIRED_METHODS", "KLDifference", "closer", "kl_difference"]


def _map(source: ModelMap | LogLikelihoodMatrix) -> ModelMap:
    """``source`` as a map: a matrix is checked as :class:`ModelMap` checks it."""
    if isinstance(source, LogLikelihoodMatrix):
        source = ModelMap(source)
    if not isinstance(source, ModelMap):
        raise WrongTypeError(f"paired comparisons need a ModelMap or LogLikelihoodMatrix, got {type(source).__name__}")
    return source


def kl_difference(source: ModelMap | LogLikelihoodMatrix, pair_1: Sequence[str], pair_2: Sequence[str], *,
                  unit: str = "bits/byte", method: str = "delta") -> KLDifference:
    """``KL(a, b) − KL(c, d)`` for ``pair_1 = (a, b)``, ``pair_2 = (c, d)``, with a paired SE.

    Parameters
    ----------
    source : ModelMap or LogLikelihoodMatrix
        The models (a matrix is mapped first, with the map's checks).
    pair_1, pair_2 : (str, str)
        Model names; the pairs may share a model (see :func:`closer`) or not.
    unit : {"bits/byte", "nats"}
        ``"nats"`` is nats per text.
    method : {"delta", "jackknife"}
        See the module documentation.

    Returns
    -------
    KLDifference
        ``KL(pair_1) − KL(pair_2)`` with its paired SE, z and p-value.
    """
    return kl_difference_on(_map(source), pair_1, pair_2, unit=unit, method=method)


def closer(source: ModelMap | LogLikelihoodMatrix, a: str, b: str, c: str, *, unit: str = "bits/byte",
           method: str = "delta") -> KLDifference:
    """Is ``a`` closer to ``b`` than to ``c``? ``KL(a, b) − KL(a, c)`` with its paired SE.

    Parameters
    ----------
    source : ModelMap or LogLikelihoodMatrix
        The models.
    a, b, c : str
        Model names.
    unit : {"bits/byte", "nats"}
        Unit of the KLs.
    method : {"delta", "jackknife"}
        See the module documentation.

    Returns
    -------
    KLDifference
        Negative: ``b`` is closer. See :func:`kl_difference`.
    """
    return kl_difference_on(_map(source), (a, b), (a, c), unit=unit, method=method)
