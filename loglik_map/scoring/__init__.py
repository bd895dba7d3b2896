"""Scoring: log-likelihood vectors from language models, and resumable scoring runs.

``protocol`` (what a scorer is) · ``windows`` (which tokens are scored) · ``loading``,
``quantization``, ``architectures`` (getting a model ready) · ``batching``, ``unembed`` (the
forward passes) · ``hf`` (:class:`HFScorer`, :class:`LogitLensScorer`) · ``naming``,
``settings`` (row names; the settings groups :class:`Loading`, :class:`Windowing`,
:class:`Execution`) · ``runs`` (:func:`score_models` into a run store,
whose file format is :mod:`loglik_map.io.runstore`). Importing this package does not import
torch; loading a model does.
"""

from __future__ import annotations

from ..io.runstore import is_store, open_store, store_failures
from .architectures import FINAL_NORM_PATHS, find_final_norm
from .exact_kl import exact_kl
from .hf import HFScorer
from .kl_summary import exact_kl_report
from .lens import LogitLensScorer
from .protocol import Scorer
from .runs import ModelSpec, RunSummary, score_models
from .settings import Execution, Loading, Windowing
from .versus_exact import estimator_vs_exact
from .windows import CONVENTIONS, LONG_TEXT_MODES, encode_text

__all__ = [
    "CONVENTIONS",
    "FINAL_NORM_PATHS",
    "LONG_TEXT_MODES",
    "Execution",
    "HFScorer",
    "Loading",
    "LogitLensScorer",
    "ModelSpec",
    "RunSummary",
    "Scorer",
    "Windowing",
    "encode_text",
    "estimator_vs_exact",
    "exact_kl",
    "exact_kl_report",
    "find_final_norm",
    "is_store",
    "open_store",
    "score_models",
    "store_failures",
]
