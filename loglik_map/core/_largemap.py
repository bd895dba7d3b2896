"""What the blocked walks of :class:`~loglik_map.ModelMap` share: the progress report and the
task that writes one block pair to an all-pairs store (:ref:`guide-large-maps`)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ..options import resolve_progress
from ._kernels.blocks import RowBlock, block_kl_se

__all__ = ["block_to_store", "progress_callback"]

Progress = Callable[[int, int], None]


@contextmanager
def progress_callback(progress: bool | Progress | None, desc: str,
                      unit: str = "block pair") -> Iterator[Progress | None]:
    """``progress`` itself if it is a callable ``progress(done, total)``; else a tqdm bar counting ``unit``
    (block pairs) when ``progress`` (or, for None, the ``progress`` option) is true and tqdm is installed."""
    if callable(progress):
        yield progress
        return
    if not resolve_progress(progress) or importlib.util.find_spec("tqdm") is None:
        yield None
        return
    from tqdm.auto import tqdm

    bars: list[Any] = []  # made on the first report: a resumed store with nothing left shows none

    def update(done: int, total: int) -> None:
        if not bars:
            bars.append(tqdm(total=total, desc=desc, unit=unit))
        bars[0].update(done - bars[0].n)

    try:
        yield update
    finally:
        for bar in bars:
            bar.close()


def block_to_store(a: RowBlock, b: RowBlock, same: bool, store: Any, block_size: int, backend: str) -> int:
    """Block-pair task: KL and SE of the pair, written to ``store``; returns how many pairs went direct."""
    kl, se, n_direct = block_kl_se(a, b, same=same, backend=backend)
    store.write(a.start // block_size, b.start // block_size, kl, se)
    return n_direct
