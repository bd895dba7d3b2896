"""Statistics on top of the map: how estimates behave when the text sample changes."""

from __future__ import annotations

from .stability import ResamplingStability, text_resampling_stability

__all__ = ["ResamplingStability", "text_resampling_stability"]
