"""Statistics on top of the map: stability under resampled texts, fewer (weighted) texts, benchmark prediction."""

from __future__ import annotations

from ._predict import map_features, predict_benchmarks
from ._resample import TextBudget, resample_texts, resampling_error, selection_probabilities, texts_needed
from ._stability import ResamplingStability, text_resampling_stability

__all__ = ["ResamplingStability", "TextBudget", "map_features", "predict_benchmarks", "resample_texts", "resampling_error",
           "selection_probabilities", "text_resampling_stability", "texts_needed"]
