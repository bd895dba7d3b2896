"""The KL scale: which model pairs to compare (:mod:`.pairs`) and their KLs per setting beside the paper's (:mod:`.klscale`)."""

from __future__ import annotations

from .klscale import PAPER_KL_SCALE, KLSetting, PretrainingPreprocessing, kl_scale, kl_scale_pairs
from .pairs import (
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
