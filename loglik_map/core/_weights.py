"""Text weights: a weighted text set (from :func:`loglik_map.resample_texts`) and the means it changes.

A matrix whose texts carry a ``text_weight`` coordinate stands for a larger text set: text ``s``
of weight ``w_s`` counts as ``w_s`` texts. The weights of :func:`~loglik_map.resample_texts` are
importance weights scaled to average 1 in expectation (``w_s = c_s N / (n π_s N_source)``: drawn
``c_s`` times in ``n`` draws with probability ``π_s`` from ``N_source`` texts, ``N`` unique kept), so
all weights 1 is the unweighted map. The map then takes

* locations (row centring, B̄, cross-entropy) as normalised weighted means ``Σ w x / Σ w``;
* the KL and its SE from the weighted sums ``Σ_s w_s (d_s − d̄)² / N`` (a Horvitz–Thompson
  estimate of the source set's value), exactly as the authors' code does
  (shimo-lab/modelmap ``resampling-texts/src/matrix.py``: centring with the normalised weights,
  columns scaled by ``sqrt(w)``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import xarray as xr

from ..errors import LoglikMapError, LoglikMapWarning
from ._validation import TEXT_DIM

__all__ = ["SELECTION_PREFIX", "TEXT_WEIGHT", "check_weight_scale", "text_weights", "weighted_mean", "weights_text"]

#: Name of the text coordinate that holds the weights.
TEXT_WEIGHT = "text_weight"
#: Prefix of the attrs that record a selection (method, draws, source fingerprint, …).
SELECTION_PREFIX = "selection_"


def text_weights(data: xr.DataArray) -> np.ndarray | None:
    """The ``text_weight`` coordinate of a matrix as float64, checked; ``None`` when absent.

    Parameters
    ----------
    data : xarray.DataArray
        A matrix's data, dims ``("model", "text")``.

    Returns
    -------
    numpy.ndarray or None
        Shape (N,): finite, positive weights.

    Raises
    ------
    LoglikMapError
        A weight that is not a finite positive number (the message names the first one).
    """
    if TEXT_WEIGHT not in data.coords:
        return None
    coord = data.coords[TEXT_WEIGHT]
    if coord.dims != (TEXT_DIM,):
        raise LoglikMapError(f"the {TEXT_WEIGHT!r} coordinate must lie along 'text', not {coord.dims}; "
                             "it holds one weight per text")
    try:
        w = np.asarray(coord.values, dtype=np.float64)
    except (TypeError, ValueError):
        raise LoglikMapError(f"the {TEXT_WEIGHT!r} coordinate must be numeric, got dtype {coord.dtype}") from None
    bad = ~(np.isfinite(w) & (w > 0))
    if bad.any():
        k = int(np.argmax(bad))
        raise LoglikMapError(f"text weight {k} ({data[TEXT_DIM].values[k]!r}) is {w[k]}; weights must be finite and "
                             f"positive (drop the text, or drop the {TEXT_WEIGHT!r} coordinate for an unweighted map)")
    return w


def check_weight_scale(data: xr.DataArray, weights: np.ndarray | None) -> None:
    """Warn when text weights given by hand do not average about 1: the KL is the sum ``Σ w y / N``.

    Weights of :func:`~loglik_map.resample_texts` (marked by their ``selection_probability``
    coordinate) average 1 only in expectation, and far from it for few draws: they pass.

    Parameters
    ----------
    data : xarray.DataArray
        The matrix's data.
    weights : numpy.ndarray or None
        One weight per text.
    """
    if weights is None or f"{SELECTION_PREFIX}probability" in data.coords:
        return
    mean = float(weights.mean())
    if not 0.5 <= mean <= 2.0:
        warnings.warn(f"the text weights average {mean:.3g}, not about 1: the map's KLs are the weighted sums "
                      f"Σ w·y / N, so they are {mean:.3g} times what equal weights give; divide the weights by their "
                      "mean for a weighted mean instead (resample_texts' weights average 1 in expectation)",
                      LoglikMapWarning, stacklevel=3)


def weighted_mean(values: np.ndarray, weights: np.ndarray | None, axis: int = -1) -> Any:
    """``Σ w x / Σ w`` along ``axis`` (the plain mean when ``weights`` is None).

    Parameters
    ----------
    values : numpy.ndarray
        The values; ``axis`` runs over texts.
    weights : numpy.ndarray or None
        One weight per text.
    axis : int, default -1
        The text axis.

    Returns
    -------
    numpy.ndarray or float
    """
    if weights is None:
        return np.mean(values, axis=axis)
    return np.average(values, axis=axis, weights=weights)


def weights_text(data: xr.DataArray) -> str:
    """One line for a repr: whether and how the texts are weighted ("" when they are not)."""
    w = text_weights(data)
    if w is None:
        return ""
    attrs = data.attrs
    method = attrs.get(f"{SELECTION_PREFIX}method")
    how = (f"{str(method).upper()} resampling: {w.size} unique texts of {attrs.get(f'{SELECTION_PREFIX}n_draws')} "
           f"draws from {attrs.get(f'{SELECTION_PREFIX}source_n_texts')}" if method else "text_weight coordinate")
    return f"weighted ({how}; weights {w.min():.3g}–{w.max():.3g}, mean {w.mean():.3g})"
