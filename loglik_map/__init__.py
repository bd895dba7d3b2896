"""loglik_map — compare language models as probability distributions.

Log-likelihoods of K models on N texts form a matrix (:class:`LogLikelihoodMatrix`); its
double-centring is the model map (:class:`ModelMap`), where squared Euclidean distance
estimates KL divergence in bits/byte, with a standard error.
"""

from __future__ import annotations

__version__ = "0.1.0.dev0"

from .centering import DoubleCentering, double_center
from .errors import LoglikMapError
from .io import open_matrix
from .matrix import LogLikelihoodMatrix
from .modelmap import ModelMap, ModelProjection
from .options import get_options, set_options
from .results import ConfidenceInterval, KLEstimate
from .scoring import HFScorer, LogitLensScorer, ModelSpec, RunSummary, Scorer, score_models
from .synthetic import MarkovChainModel, MarkovExample, make_markov_example
from .textids import text_id
from .texts import TextSet, split_utf8

__all__ = [
    "__version__",
    "ConfidenceInterval",
    "HFScorer",
    "LogitLensScorer",
    "ModelSpec",
    "RunSummary",
    "Scorer",
    "TextSet",
    "score_models",
    "split_utf8",
    "DoubleCentering",
    "KLEstimate",
    "LogLikelihoodMatrix",
    "LoglikMapError",
    "MarkovChainModel",
    "MarkovExample",
    "ModelMap",
    "ModelProjection",
    "double_center",
    "get_options",
    "make_markov_example",
    "open_matrix",
    "set_options",
    "text_id",
]
