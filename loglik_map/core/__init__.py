"""The numerical core: the log-likelihood matrix, its double-centring, the model map and its kernels.

``matrix`` → ``centering`` → ``modelmap`` (KL and SE through ``kernels``) → ``results``. The
core imports only :mod:`loglik_map.errors`, :mod:`~loglik_map.options`, :mod:`~loglik_map.units`
and the small foundation modules: storage (:mod:`loglik_map.io`) registers itself with the
matrix, never the other way round.
"""

from __future__ import annotations

from ._closed_models import SampleComparison, closer_by_samples, place_by_samples
from .centering import double_center
from .groups import ordered_groups
from .matrix import MODEL_DIM, TEXT_DIM, LogLikelihoodMatrix
from .modelmap import MIN_TEXTS_FOR_SE, PAIR_DIM, ModelMap, ModelProjection, ModelTree
from .paired import KLDifference, closer, kl_difference
from .results import ConfidenceInterval, KLEstimate

__all__ = [
           "MIN_TEXTS_FOR_SE",
           "MODEL_DIM",
           "PAIR_DIM",
           "TEXT_DIM",
           "ConfidenceInterval",
           "KLDifference",
           "KLEstimate",
           "LogLikelihoodMatrix",
           "ModelMap",
           "ModelProjection",
           "ModelTree",
           "SampleComparison",
           "closer",
           "closer_by_samples",
           "double_center",
           "kl_difference",
           "ordered_groups",
           "place_by_samples",
]
