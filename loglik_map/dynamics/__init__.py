"""Dynamics: models ordered along training (or depth) — trajectories, diffusion exponents, weights, outliers.

Builds on the core only: a :class:`Trajectory` orders a map's points, ``_fits`` fits power
laws to their displacements, ``_weights`` measures the same paths in weight space,
``_outliers`` and ``_preprocessing`` apply the paper's cleaning of pretraining runs, and
``_spiral`` the spiral check of App. D.1.
"""

from __future__ import annotations

from ._fits import HolderEstimate, PowerLawFit, fit_power_law, holder_exponent
from ._outliers import drop_outlier_texts, flag_outlier_models, outlier_text_scores
from ._preprocessing import PreprocessingResult, preprocess_pretraining
from ._spiral import SpiralPeriod, spiral_period
from ._trajectory import Trajectory
from ._uncertainty import BootstrapEstimate, exponent_interval, exponent_intervals, holder_interval
from ._weights import weight_distances

__all__ = [
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
]
