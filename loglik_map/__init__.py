"""loglik_map — compare language models as probability distributions.

Log-likelihoods of K models on N texts form a matrix (:class:`LogLikelihoodMatrix`); its
double-centring is the model map (:class:`ModelMap`), where squared Euclidean distance
estimates KL divergence in bits/byte, with a standard error.
"""

from __future__ import annotations

__version__ = "0.1.0.dev0"

from . import datasets, plotting, zoo
from .analyses import (
    ResamplingStability,
    SpiralPeriod,
    lineage,
    read_base_model,
    spiral_period,
    text_resampling_stability,
)
from .centering import DoubleCentering, double_center
from .errors import DataIntegrityWarning, LoglikMapError, LoglikMapWarning, MissingExtraError, UnreliableEstimateWarning
from .fits import HolderEstimate, PowerLawFit, fit_power_law, holder_exponent
from .io import open_matrix
from .klscale import (
    PAPER_KL_SCALE,
    KLSetting,
    PairRule,
    PretrainingPreprocessing,
    adjacent_layers,
    child_vs_parent,
    consecutive_checkpoints,
    differing_only_in,
    kl_scale,
    kl_scale_pairs,
    original_vs,
    random_pairs,
)
from .matrix import LogLikelihoodMatrix
from .modelmap import ModelMap, ModelProjection
from .options import get_options, set_options
from .paths import TakagiLandsberg, fbm, fractional_gaussian_noise, takagi_landsberg
from .preprocessing import (
    PreprocessingResult,
    drop_outlier_texts,
    flag_outlier_models,
    outlier_text_scores,
    preprocess_pretraining,
)
from .results import ConfidenceInterval, KLEstimate
from .scoring import HFScorer, LogitLensScorer, ModelSpec, RunSummary, Scorer, score_models
from .synthetic import MarkovChainModel, MarkovExample, make_markov_example
from .textids import text_id
from .texts import TextSet, split_utf8
from .trajectory import Trajectory
from .weights import weight_distances

# ---- issue 15: exact token-level KL beside the estimator, paired tests, exponent uncertainty
from .paired import KLDifference, closer, kl_difference, nearest_neighbours
from .scoring.exact_kl import exact_kl
from .scoring.kl_summary import exact_kl_report
from .scoring.versus_exact import estimator_vs_exact
from .uncertainty import BootstrapEstimate, exponent_interval, exponent_intervals, holder_interval

__all__ = [
    "__version__",
    "HolderEstimate",
    "KLSetting",
    "PAPER_KL_SCALE",
    "PairRule",
    "PretrainingPreprocessing",
    "PowerLawFit",
    "PreprocessingResult",
    "ResamplingStability",
    "SpiralPeriod",
    "TakagiLandsberg",
    "Trajectory",
    "adjacent_layers",
    "child_vs_parent",
    "consecutive_checkpoints",
    "differing_only_in",
    "drop_outlier_texts",
    "fbm",
    "fit_power_law",
    "flag_outlier_models",
    "fractional_gaussian_noise",
    "holder_exponent",
    "kl_scale",
    "kl_scale_pairs",
    "lineage",
    "original_vs",
    "outlier_text_scores",
    "preprocess_pretraining",
    "datasets",
    "zoo",
    "plotting",
    "random_pairs",
    "read_base_model",
    "spiral_period",
    "takagi_landsberg",
    "text_resampling_stability",
    "weight_distances",
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
    "LoglikMapWarning",
    "MissingExtraError",
    "DataIntegrityWarning",
    "UnreliableEstimateWarning",
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
    # issue 15
    "BootstrapEstimate",
    "KLDifference",
    "closer",
    "estimator_vs_exact",
    "exact_kl",
    "exact_kl_report",
    "exponent_interval",
    "exponent_intervals",
    "holder_interval",
    "kl_difference",
    "nearest_neighbours",
]
