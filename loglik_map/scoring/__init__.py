"""Scoring: log-likelihood vectors from language models, and resumable scoring runs.

This package's ``__init__`` is its public face; the implementation modules are private:
``_protocol`` (what a scorer is) · ``_windows`` (which tokens are scored) · ``_loading``,
``_quantization``, ``_architectures``, ``_head``, ``_selfcheck`` (getting a model ready and checking it
against its own forward) · ``_batching``, ``_unembed`` (the forward passes) · ``_hf``, ``_lens``
(:class:`HFScorer`, :class:`LogitLensScorer`) · ``_naming`` (row names) · ``_settings`` (a scorer's
settings in three groups: :class:`Loading`, :class:`Windowing`, :class:`Execution`) · ``_torch`` (the
one way scoring code gets torch) ·
``_runs`` (:func:`score_models` into a run store, whose file format lives in :mod:`loglik_map.io`).
Importing this package does not import torch; loading a model does.
"""

from __future__ import annotations

from ..io._runstore import is_store, open_store, store_failures
from ._architectures import FINAL_NORM_PATHS, find_final_norm
from ._exact_kl import exact_kl
from ._hf import HFScorer
from ._kl_summary import exact_kl_report, select_texts, summarize_exact_kl
from ._lens import LogitLensScorer
from ._naming import default_model_name
from ._protocol import Scorer
from ._runs import ModelSpec, RunSummary, score_models
from ._settings import Execution, Loading, Windowing
from ._versus_exact import estimator_vs_exact
from ._vocabulary import tokenizer_difference
from ._windows import CONVENTIONS, LONG_TEXT_MODES, encode_text

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
    "default_model_name",
    "encode_text",
    "estimator_vs_exact",
    "exact_kl",
    "exact_kl_report",
    "find_final_norm",
    "is_store",
    "open_store",
    "score_models",
    "select_texts",
    "store_failures",
    "summarize_exact_kl",
    "tokenizer_difference",
]
