"""Weight-space distances ‖W_t − W_s‖² between saved checkpoints (:ref:`method-trajectories`).

Checkpoints are read tensor by tensor from their safetensors files (sharded or not), in chunks,
accumulating in float64: never two whole models in memory. Finished pairs are cached in a JSON
file, so an interrupted computation resumes where it stopped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .._util import write_json_atomic
from ..errors import LoglikMapError

__all__ = ["checkpoint_tensors", "weight_distances"]

_CHUNK_ELEMENTS = 1 << 22


def checkpoint_tensors(folder: str | PathLike[str]) -> dict[str, Path]:
    """Map every tensor name of a checkpoint folder to the safetensors file holding it."""
    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        return {name: folder / fname for name, fname in weight_map.items()}
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise LoglikMapError(f"{folder}: no safetensors file (save checkpoints with safe_serialization=True)")
    out: dict[str, Path] = {}
    from safetensors import safe_open

    for f in files:
        with safe_open(f, framework="np") as fh:
            for name in fh.keys():
                out[name] = f
    return out


class _Reader:
    """Open safetensors files lazily; yield float64 chunks of a tensor (bf16 through torch)."""

    def __init__(self, mapping: dict[str, Path]) -> None:
        self.mapping = mapping
        self.handles: dict[Path, Any] = {}

    def _handle(self, path: Path):
        if path not in self.handles:
            from safetensors import safe_open

            try:
                import torch  # noqa: F401

                framework = "pt"
            except ImportError:
                framework = "np"
            self.handles[path] = safe_open(path, framework=framework)
        return self.handles[path]

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self._handle(self.mapping[name]).get_slice(name).get_shape())

    def rows(self, name: str, start: int, stop: int) -> np.ndarray:
        sl = self._handle(self.mapping[name]).get_slice(name)
        shape = sl.get_shape()
        block = sl[start:stop] if len(shape) > 0 else sl[:]
        if hasattr(block, "float"):  # torch tensor (handles bfloat16)
            block = block.double().numpy()
        return np.asarray(block, dtype=np.float64)


def _squared_distance(a: _Reader, b: _Reader, names: Sequence[str], chunk: int) -> float:
    total = 0.0
    for name in names:
        shape = a.shape(name)
        if b.shape(name) != shape:
            raise LoglikMapError(f"tensor {name!r} has shape {shape} in one checkpoint and {b.shape(name)} in another")
        if len(shape) == 0:
            d = a.rows(name, 0, 0) - b.rows(name, 0, 0)
            total += float(np.sum(d * d))
            continue
        per_row = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        step = max(1, chunk // max(per_row, 1))
        for r0 in range(0, shape[0], step):
            d = a.rows(name, r0, r0 + step) - b.rows(name, r0, r0 + step)
            d = d.ravel()
            total += float(np.dot(d, d))
    return total


def weight_distances(
    checkpoints: Sequence[str | PathLike[str]],
    *,
    names: Sequence[str] | None = None,
    pairs: str | Sequence[tuple[int, int]] = "all",
    window: int | None = None,
    cache: str | PathLike[str] | None = None,
    include: str | None = None,
    chunk_elements: int = _CHUNK_ELEMENTS,
) -> xr.DataArray:
    """Squared Euclidean distances between the flattened parameters of saved checkpoints.

    Parameters
    ----------
    checkpoints : sequence of folders
        Each holds ``*.safetensors`` (and ``model.safetensors.index.json`` if sharded).
    names : sequence of str, optional
        Labels (default: folder names).
    pairs : {"all"} or list of (i, j)
        Which pairs to compute; with ``window`` only pairs at most ``window`` apart in the list.
    window : int, optional
        Limit to ``|i − j| ≤ window`` (enough for diffusion exponents over that window).
    cache : path, optional
        JSON file of finished pairs: read first, written after every pair (atomic replace).
    include : str, optional
        Only tensors whose name contains this substring (e.g. ``"layers."``).
    chunk_elements : int
        Elements per read chunk.

    Returns
    -------
    xarray.DataArray
        Dims ``("checkpoint", "checkpoint_")``, symmetric, NaN for pairs not computed.
    """
    folders = [Path(c) for c in checkpoints]
    K = len(folders)
    if K < 2:
        raise LoglikMapError("need at least two checkpoints")
    labels = list(names) if names is not None else [f.name for f in folders]
    if len(labels) != K or len(set(labels)) != K:
        raise LoglikMapError("need one unique name per checkpoint")
    if isinstance(pairs, str):
        if pairs != "all":
            raise LoglikMapError(f"pairs must be 'all' or a list of (i, j) index pairs, got {pairs!r}")
        todo = [(i, j) for i in range(K) for j in range(i + 1, K) if window is None or j - i <= window]
    else:
        todo = sorted({(min(i, j), max(i, j)) for i, j in pairs if i != j})
    mappings = [checkpoint_tensors(f) for f in folders]
    tensor_names = sorted(mappings[0])
    if include is not None:
        tensor_names = [n for n in tensor_names if include in n]
    for f, m in zip(folders[1:], mappings[1:]):
        missing = set(tensor_names) - set(m)
        if missing:
            raise LoglikMapError(f"{f}: tensors missing compared with {folders[0]}: {sorted(missing)[:3]}")
    done: dict[str, float] = {}
    cache_path = Path(cache) if cache is not None else None
    if cache_path is not None and cache_path.is_file():
        done = json.loads(cache_path.read_text(encoding="utf-8")).get("pairs", {})
    D = np.full((K, K), np.nan)
    np.fill_diagonal(D, 0.0)
    readers: dict[int, _Reader] = {}

    def reader(i: int) -> _Reader:
        if i not in readers:
            if len(readers) >= 4:
                readers.pop(next(iter(readers)))
            readers[i] = _Reader(mappings[i])
        return readers[i]

    for i, j in todo:
        key = f"{folders[i].resolve()}|{folders[j].resolve()}|{include or ''}"
        if key not in done:
            done[key] = _squared_distance(reader(i), reader(j), tensor_names, chunk_elements)
            if cache_path is not None:
                write_json_atomic(cache_path, {"pairs": done})
        D[i, j] = D[j, i] = done[key]
    return xr.DataArray(D, dims=("checkpoint", "checkpoint_"), coords={"checkpoint": labels, "checkpoint_": labels},
                        attrs={"units": "squared parameter distance", "tensors": include or "all"},
                        name="weight_distance")
