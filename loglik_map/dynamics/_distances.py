"""Where a :class:`~loglik_map.Trajectory` gets its squared distances: a model map, or a precomputed matrix.

A trajectory asks its distances for four things only (:class:`DistanceProvider`): the points'
names and coordinates, the squared distance (with its SE) from one point to others, the scale of
a unit, and the map's points when there are texts to resample. The two providers are
:class:`MapDistances` (KL in bits/byte on a :class:`~loglik_map.ModelMap`, with SEs) and
:class:`PrecomputedDistances` (a K × K matrix such as weight-space ‖W_t − W_s‖², without SEs).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import numpy as np

from .._units import check_unit, nats_per_bit_per_byte
from ..core._kernels import pairs_kl_se
from ..core._matrix import MODEL_DIM
from ..core._modelmap import ModelMap

__all__ = ["DistanceProvider", "MapDistances", "PrecomputedDistances"]


class DistanceProvider(Protocol):
    """The squared distances a trajectory is built on."""

    #: Model coordinates (an xarray coordinates mapping with a ``model`` dimension).
    coords: Any
    #: Point names, shape (K,).
    names: np.ndarray
    #: The map's points (K × N) when the distances come from texts that can be resampled, else None.
    points: np.ndarray | None

    def kl_se(self, i: int, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Squared distance and its SE (NaN when there is none) from point ``i`` to points ``j``."""
        ...

    def scale(self, unit: str | None) -> tuple[float, str]:
        """Factor from the native unit to ``unit`` (None: the native one), and the unit's name."""
        ...

    def describe(self) -> str:
        """Where the distances come from, for the trajectory's summary."""
        ...


class MapDistances:
    """KL (squared distance on a model map) in bits/byte, with its SE."""

    def __init__(self, mm: ModelMap) -> None:
        self.points: np.ndarray | None = mm.points.values
        self.coords = mm.points.coords
        self.names = mm.models
        self._nats_per_bit = nats_per_bit_per_byte(mm.mean_bytes)

    def kl_se(self, i: int, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        assert self.points is not None
        return pairs_kl_se(self.points, np.full(j.size, i), j)

    def scale(self, unit: str | None) -> tuple[float, str]:
        unit = check_unit(unit or "bits/byte")
        return (1.0 if unit == "bits/byte" else self._nats_per_bit), unit

    def describe(self) -> str:
        assert self.points is not None
        return f"model map over {self.points.shape[1]} texts"


class PrecomputedDistances:
    """A precomputed K × K matrix of squared distances, in its own unit; no SEs."""

    def __init__(self, squared: np.ndarray, coords: Any, unit: str) -> None:
        self.points: np.ndarray | None = None  # no texts to resample
        self.squared = squared
        self.coords = coords
        self.names = coords[MODEL_DIM].values
        self.unit = unit

    def kl_se(self, i: int, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.squared[i, j], np.full(j.size, math.nan)

    def scale(self, unit: str | None) -> tuple[float, str]:
        return 1.0, self.unit

    def describe(self) -> str:
        return "precomputed squared distances"
