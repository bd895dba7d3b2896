"""What the method groups of :class:`~loglik_map.LogLikelihoodMatrix` may use of the matrix (for type checkers)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

if TYPE_CHECKING:
    from ._matrix import LogLikelihoodMatrix

__all__ = ["MatrixBase"]


class MatrixBase:
    """Base of the method groups (:mod:`._selection`, :mod:`._summaries`); the matrix provides these."""

    __slots__ = ()

    if TYPE_CHECKING:
        _data: xr.DataArray

        @classmethod
        def _wrap(cls, da: xr.DataArray) -> LogLikelihoodMatrix: ...
        @property
        def n_models(self) -> int: ...
        @property
        def models(self) -> np.ndarray: ...
        @property
        def texts(self) -> np.ndarray: ...
        @property
        def values(self) -> np.ndarray: ...
        @property
        def attrs(self) -> dict[str, Any]: ...
        @property
        def mean_bytes(self) -> float: ...
