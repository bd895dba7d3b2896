"""Double-centering of a log-likelihood matrix (:ref:`method-map`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from ..errors import LoglikMapError
from ._lazy import double_center_lazy, is_dask
from ._matrix import MODEL_DIM, TEXT_DIM, LogLikelihoodMatrix
from ._weights import weighted_mean

__all__ = ["DoubleCentering", "double_center", "double_center_array"]


@dataclass(frozen=True)
class DoubleCentering:
    """The parts of a double-centred matrix: ``L = Q + model_means[:, None] + text_means[None, :]``.

    Attributes
    ----------
    centered : ndarray or dask array, shape (K, N)
        Q: every row and every column sums to zero (nats).
    model_means : ndarray, shape (K,)
        Mean log-likelihood of each model over the texts (nats).
    text_means : ndarray, shape (N,)
        Mean over models of the row-centred matrix, per text (nats); new models are centred
        with these to place them on an existing map.
    """

    centered: np.ndarray
    model_means: np.ndarray
    text_means: np.ndarray


def double_center_array(values: Any, weights: np.ndarray | None = None) -> DoubleCentering:
    """Double-centre a K × N array: subtract row means, then column means (float64).

    A dask array stays lazy: ``centered`` is then a dask array, the means are computed in one pass.
    With ``weights`` (one per text) the row means are the weighted means ``Σ w x / Σ w``
    (:mod:`loglik_map.core._weights`); the column means are over models and do not change.
    """
    if is_dask(values):
        if weights is not None:
            raise LoglikMapError("a weighted text set (text_weight coordinate) cannot be mapped from a dask-backed "
                                 "matrix yet; load it into memory first (matrix.data.load())")
        centered, model_means, text_means = double_center_lazy(values)
        return DoubleCentering(centered=centered, model_means=model_means, text_means=text_means)
    L = np.asarray(values, dtype=np.float64)
    if L.ndim != 2 or L.size == 0:
        raise LoglikMapError(f"expected a non-empty two-dimensional array, got shape {L.shape}")
    model_means = weighted_mean(L, weights, axis=1)
    Q = L - model_means[:, None]
    text_means = Q.mean(axis=0)
    Q -= text_means[None, :]
    return DoubleCentering(centered=Q, model_means=model_means, text_means=text_means)


def double_center(x: Any) -> Any:
    """Double-centre a log-likelihood matrix: Q = L − row means − column means + grand mean.

    Parameters
    ----------
    x : LogLikelihoodMatrix, xarray.DataArray or array_like, shape (K, N)
        Log-likelihoods in nats (models × texts).

    Returns
    -------
    xarray.DataArray or ndarray
        Q in nats, with the labels of the input (a DataArray for labelled input, an ndarray
        for plain arrays). Rows and columns sum to zero.
    """
    if isinstance(x, LogLikelihoodMatrix):
        x = x.data
    if isinstance(x, xr.DataArray):
        if set(x.dims) != {MODEL_DIM, TEXT_DIM}:
            raise LoglikMapError(f"expected dims ('model', 'text'), got {x.dims}")
        x = x.transpose(MODEL_DIM, TEXT_DIM)
        out = x.copy(data=double_center_array(x.values).centered)
        out.attrs = {"units": "nats", "quantity": "double-centred log-likelihood"}
        return out
    return double_center_array(x).centered
