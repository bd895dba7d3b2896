"""The numerical core: the log-likelihood matrix, its double-centring, the model map and its kernels.

``_matrix`` → ``_centering`` → ``_modelmap`` (KL and SE through ``_kernels``) → ``_results``. The
core imports only :mod:`loglik_map.errors`, :mod:`~loglik_map.options`, ``loglik_map._units``
and the small foundation modules: storage (:mod:`loglik_map.io`) registers itself with the
matrix, never the other way round.
"""

from __future__ import annotations

from ._centering import double_center
from ._closed_models import SampleComparison, closer_by_samples, place_by_samples
from ._groups import ordered_groups
from ._matrix import MODEL_DIM, TEXT_DIM, LogLikelihoodMatrix
from ._modelmap import MIN_TEXTS_FOR_SE, PAIR_DIM, ModelMap, ModelProjection, ModelTree
from ._paired import KLDifference, closer, kl_difference
from ._results import ConfidenceInterval, KLEstimate

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
