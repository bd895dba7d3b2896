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

The top level holds the names a user types (about forty); everything else lives in its
sub-package, and every type the package returns is documented in :mod:`loglik_map.results`.
``import loglik_map`` imports neither torch nor numba, nor the demo; ``scoring``, ``plotting``
and ``demo`` are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

# Log-likelihood matrices and texts
from .core import LogLikelihoodMatrix
from .texts import TextSet, load_texts
from .io import open_matrix, open_pairs

# The model map: KL divergences and their standard errors; paired tests on the same texts
from .core import ModelMap, closer, kl_difference

from .options import set_options

# Closed models, placed from their samples
from .core import place_by_samples

# Trajectories, diffusion and the exponents' intervals
from .dynamics import (
    Trajectory,
    exponent_intervals,
    fit_power_law,
    holder_exponent,
    preprocess_pretraining,
    weight_distances,
)

# The KL scale: model pairs per setting, beside the paper's Table 1a
from .scale import (
    PAPER_KL_SCALE,
    KLSetting,
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

# Stability under resampled texts; fewer (weighted) texts; benchmark prediction; synthetic ground truth
from .stats import predict_benchmarks, resample_texts, texts_needed
from .synthetic import make_markov_example

# Errors and warnings (the specific ones: loglik_map.errors)
from .errors import LoglikMapError, LoglikMapWarning, UnreliableEstimateWarning

# Sub-packages and the returned types
from . import core, dynamics, errors, io, options, results, scale, stats, synthetic, texts

if TYPE_CHECKING:  # imported on first use (see __getattr__)
    from . import demo, plotting, scoring
    from .scoring import HFScorer, LogitLensScorer, ModelSpec, score_models
    from .scoring._exact_kl import exact_kl
    from .scoring._numerics_floor import numerics_floor

#: Names imported on first use: name → module that defines it.
_LAZY = {
    # Scoring models (torch is imported when a model loads, not here)
    "HFScorer": "loglik_map.scoring",
    "LogitLensScorer": "loglik_map.scoring",
    "ModelSpec": "loglik_map.scoring",
    "score_models": "loglik_map.scoring",
    # The exact token-level KL beside the map's estimate (scores models: torch)
    "exact_kl": "loglik_map.scoring._exact_kl",
    "numerics_floor": "loglik_map.scoring._numerics_floor",
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
    "load_texts",
    "open_matrix",
    "open_pairs",
    # The model map
    "ModelMap",
    "closer",
    "kl_difference",
    "set_options",
    # Closed models, placed from their samples
    "place_by_samples",
    # Scoring models
    "HFScorer",
    "LogitLensScorer",
    "ModelSpec",
    "score_models",
    # The exact KL beside the map's estimate
    "exact_kl",
    "numerics_floor",
    # Trajectories and diffusion
    "Trajectory",
    "exponent_intervals",
    "fit_power_law",
    "holder_exponent",
    "preprocess_pretraining",
    "weight_distances",
    # The KL scale
    "KLSetting",
    "PAPER_KL_SCALE",
    "PretrainingPreprocessing",
    "adjacent_layers",
    "child_vs_parent",
    "consecutive_checkpoints",
    "differing_only_in",
    "kl_scale",
    "kl_scale_pairs",
    "original_vs",
    "random_pairs",
    # Stability, fewer texts, benchmark prediction and synthetic ground truth
    "make_markov_example",
    "predict_benchmarks",
    "resample_texts",
    "texts_needed",
    # Errors and warnings
    "LoglikMapError",
    "LoglikMapWarning",
    "UnreliableEstimateWarning",
    # Sub-packages
    "core",
    "demo",
    "dynamics",
    "errors",
    "io",
    "options",
    "plotting",
    "results",
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
