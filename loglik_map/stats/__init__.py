"""Statistics on top of the map: how estimates behave when the text sample changes; fewer, weighted texts."""

from __future__ import annotations

from ._resample import TextBudget, resample_texts, resampling_error, selection_probabilities, texts_needed
from .stability import ResamplingStability, text_resampling_stability

__all__ = ["ResamplingStability", "TextBudget", "resample_texts", "resampling_error", "selection_probabilities",
           "text_resampling_stability", "texts_needed"]
