"""The spiral check of App. D.1: the period of a trajectory's oscillation along a principal component."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from ..errors import LoglikMapError

__all__ = ["SpiralPeriod", "spiral_period"]


@dataclass(frozen=True)
class SpiralPeriod:
    """Period of the oscillation of a trajectory's principal component (App. D.1).

    Attributes
    ----------
    period : int or None
        Lag (in saved points) of the ACF maximum between its 2nd and 3rd zero crossings; None
        if the ACF does not cross zero three times.
    acf : numpy.ndarray
        The autocorrelation function at lags 0, 1, ….
    zero_crossings : tuple of int
        Lags at which the ACF changes sign.
    """

    period: int | None
    acf: np.ndarray
    zero_crossings: tuple[int, ...]


def _acf(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float) - np.mean(x)
    n = x.size
    full = np.correlate(x, x, mode="full")[n - 1 :]
    return full / full[0] if full[0] > 0 else np.zeros(n)


def spiral_period(embedding: xr.DataArray | np.ndarray, component: int = 3) -> SpiralPeriod:
    """Spiral check of :ref:`method-figures` (App. D.1) on an ordered trajectory's embedding.

    PCA of a (3-D t-SNE) embedding of an ordered trajectory, then the ACF of principal component
    ``component``; the period is the lag of the ACF maximum between its 2nd and 3rd zero crossings.

    Parameters
    ----------
    embedding : DataArray or array, shape (T, d)
        Points in trajectory order (e.g. ``ModelMap.embed("tsne", 3)`` of a late trajectory,
        sorted by step).
    component : int
        1-based principal component to analyse (the paper uses PC3).

    Returns
    -------
    SpiralPeriod
        The period in points, with the ACF it was read from.
    """
    X = np.asarray(embedding, dtype=float)
    if X.ndim != 2 or X.shape[1] < component or X.shape[0] < 4:
        raise LoglikMapError(f"need at least 4 points with ≥ {component} dimensions, got shape {X.shape}")
    Xc = X - X.mean(axis=0)
    _, _, vt = np.linalg.svd(Xc, full_matrices=False)
    pc = Xc @ vt[component - 1]
    acf = _acf(pc)
    sign = np.sign(acf)
    crossings = tuple(int(k) for k in np.flatnonzero(sign[1:] * sign[:-1] < 0) + 1)
    period = None
    if len(crossings) >= 3:
        lo, hi = crossings[1], crossings[2]
        period = int(lo + np.argmax(acf[lo:hi]))
    return SpiralPeriod(period, acf, crossings)
