"""loglik_map — compare language models as probability distributions.

Log-likelihoods of K models on N texts form a matrix (:class:`LogLikelihoodMatrix`); its
double-centring is the model map (:class:`ModelMap`), where squared Euclidean distance
estimates KL divergence in bits/byte, with a standard error.

The package is layered; each layer imports only the ones above it::

    errors, options, units       the foundation
    texts                        TextSet, text ids, the built-in texts
    core                         matrix → centring → ModelMap → kernels → results
    io                           netCDF, Zarr, run stores, the published data, model cards
    scoring                      scorers and scoring runs (torch, imported when a model loads)
    dynamics, scale, stats,      trajectories and diffusion; the KL scale; stability;
    synthetic                    synthetic ground truth (these import the core)
    plotting, demo, cli          figures; the miniature model suite; the command line

``import loglik_map`` imports neither torch nor numba, nor the demo; ``scoring``, ``plotting``
and ``demo`` are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# Log-likelihood matrices and texts
from .core import LogLikelihoodMatrix, double_center
from .texts import TextSet, load_texts, split_utf8, text_id
from .io import convert_modelmap_pickle, open_matrix, open_pairs, save_matrix

# The model map: KL divergences and their standard errors; paired tests on the same texts
from .core import ConfidenceInterval, KLDifference, KLEstimate, ModelMap, ModelProjection
from .core import closer, kl_difference
from .options import get_options, set_options

# Trajectories, diffusion and outliers of training runs; intervals of the exponents
from .dynamics import (
    BootstrapEstimate,
    exponent_interval,
    exponent_intervals,
    holder_interval,
    HolderEstimate,
    PowerLawFit,
    PreprocessingResult,
    SpiralPeriod,
    Trajectory,
    drop_outlier_texts,
    fit_power_law,
    flag_outlier_models,
    holder_exponent,
    outlier_text_scores,
    preprocess_pretraining,
    spiral_period,
    weight_distances,
)

# The KL scale: model pairs per setting, beside the paper's Table 1a
from .scale import (
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

# Stability under resampled texts; fine-tuning lineages from model cards
from .stats import ResamplingStability, text_resampling_stability
from .io import lineage, read_base_model

# Synthetic ground truth
from .synthetic import (
    MarkovChainModel,
    MarkovExample,
    TakagiLandsberg,
    fbm,
    fractional_gaussian_noise,
    make_markov_example,
    takagi_landsberg,
)

# Errors and warnings
from .errors import (
    DataIntegrityWarning,
    LoglikMapError,
    LoglikMapWarning,
    MissingExtraError,
    UnknownLabelError,
    UnreliableEstimateWarning,
    WrongTypeError,
)

# Sub-packages
from . import core, dynamics, io, scale, stats, synthetic, texts

if TYPE_CHECKING:  # imported on first use (see __getattr__)
    from . import demo, plotting, scoring
    from .scoring import HFScorer, LogitLensScorer, ModelSpec, RunSummary, Scorer, score_models
    from .scoring.exact_kl import exact_kl
    from .scoring.kl_summary import exact_kl_report
    from .scoring.versus_exact import estimator_vs_exact

#: Names imported on first use: name → module that defines it.
_LAZY = {
    # Scoring models (torch is imported when a model loads, not here)
    "HFScorer": "loglik_map.scoring",
    "LogitLensScorer": "loglik_map.scoring",
    "ModelSpec": "loglik_map.scoring",
    "RunSummary": "loglik_map.scoring",
    "Scorer": "loglik_map.scoring",
    "score_models": "loglik_map.scoring",
    # The exact token-level KL beside the map's estimate (scores models: torch)
    "estimator_vs_exact": "loglik_map.scoring.versus_exact",
    "exact_kl": "loglik_map.scoring.exact_kl",
    "exact_kl_report": "loglik_map.scoring.kl_summary",
    # Sub-packages
    "scoring": "loglik_map.scoring",
    "plotting": "loglik_map.plotting",
    "demo": "loglik_map.demo",
}

__all__ = [
    "__version__",
    # Log-likelihood matrices and texts
    "LogLikelihoodMatrix",
    "TextSet",
    "convert_modelmap_pickle",
    "double_center",
    "load_texts",
    "open_matrix",
    "open_pairs",
    "save_matrix",
    "split_utf8",
    "text_id",
    # The model map
    "ConfidenceInterval",
    "KLDifference",
    "KLEstimate",
    "ModelMap",
    "ModelProjection",
    "closer",
    "get_options",
    "kl_difference",
    "set_options",
    # Scoring models
    "HFScorer",
    "LogitLensScorer",
    "ModelSpec",
    "RunSummary",
    "Scorer",
    "score_models",
    # The exact KL beside the map's estimate
    "estimator_vs_exact",
    "exact_kl",
    "exact_kl_report",
    # Trajectories, diffusion and outliers
    "BootstrapEstimate",
    "HolderEstimate",
    "PowerLawFit",
    "PreprocessingResult",
    "SpiralPeriod",
    "Trajectory",
    "drop_outlier_texts",
    "exponent_interval",
    "exponent_intervals",
    "fit_power_law",
    "flag_outlier_models",
    "holder_exponent",
    "holder_interval",
    "outlier_text_scores",
    "preprocess_pretraining",
    "spiral_period",
    "weight_distances",
    # The KL scale
    "KLSetting",
    "PAPER_KL_SCALE",
    "PairRule",
    "PretrainingPreprocessing",
    "adjacent_layers",
    "child_vs_parent",
    "consecutive_checkpoints",
    "differing_only_in",
    "kl_scale",
    "kl_scale_pairs",
    "original_vs",
    "random_pairs",
    # Stability and lineage
    "ResamplingStability",
    "lineage",
    "read_base_model",
    "text_resampling_stability",
    # Synthetic ground truth
    "MarkovChainModel",
    "MarkovExample",
    "TakagiLandsberg",
    "fbm",
    "fractional_gaussian_noise",
    "make_markov_example",
    "takagi_landsberg",
    # Errors and warnings
    "DataIntegrityWarning",
    "LoglikMapError",
    "LoglikMapWarning",
    "MissingExtraError",
    "UnknownLabelError",
    "UnreliableEstimateWarning",
    "WrongTypeError",
    # Sub-packages
    "core",
    "demo",
    "dynamics",
    "io",
    "plotting",
    "scale",
    "scoring",
    "stats",
    "synthetic",
    "texts",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(_LAZY[name])
        value = module if module.__name__ == f"{__name__}.{name}" else getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
