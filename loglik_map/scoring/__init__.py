"""Scorers: log-likelihood vectors from language models, and resumable scoring runs.

Importing this package does not import torch; loading a model does.
"""

from __future__ import annotations

from .hf import FINAL_NORM_PATHS, HFScorer, LogitLensScorer, find_final_norm
from .protocol import Scorer
from .runs import ModelSpec, RunSummary, is_store, open_store, score_models, store_failures
from .windows import CONVENTIONS, LONG_TEXT_MODES, encode_text

__all__ = [
    "CONVENTIONS",
    "FINAL_NORM_PATHS",
    "HFScorer",
    "LONG_TEXT_MODES",
    "LogitLensScorer",
    "ModelSpec",
    "RunSummary",
    "Scorer",
    "encode_text",
    "find_final_norm",
    "is_store",
    "open_store",
    "score_models",
    "store_failures",
]
