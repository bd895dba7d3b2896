"""What the blocked walks of :class:`~loglik_map.ModelMap` share: the task that writes one block pair
to an all-pairs store (:ref:`guide-large-maps`)."""

from __future__ import annotations

from typing import Any

from ._kernels.blocks import RowBlock, block_kl_se

__all__ = ["block_to_store"]


def block_to_store(a: RowBlock, b: RowBlock, same: bool, store: Any, block_size: int, backend: str) -> int:
    """Block-pair task: KL and SE of the pair, written to ``store``; returns how many pairs went direct."""
    kl, se, n_direct = block_kl_se(a, b, same=same, backend=backend)
    store.write(a.start // block_size, b.start // block_size, kl, se)
    return n_direct
