"""The KL scale: which model pairs to compare (``_pairs``) and their KLs per setting beside the paper's (``_klscale``)."""

from __future__ import annotations

from ._klscale import PAPER_KL_SCALE, KLSetting, PretrainingPreprocessing, kl_scale, kl_scale_pairs
from ._pairs import (
    PairRule,
    adjacent_layers,
    child_vs_parent,
    consecutive_checkpoints,
    differing_only_in,
    original_vs,
    random_pairs,
)

__all__ = [
    "PAPER_KL_SCALE",
    "KLSetting",
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
]
