"""Clipping and the entropy summaries of a :class:`~loglik_map.LogLikelihoodMatrix` (bits/byte)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, cast

import numpy as np
import xarray as xr

from .._units import LN2
from ..errors import LoglikMapError, LoglikMapWarning
from ._lazy import exact_quantile, is_dask
from ._matrix_base import MatrixBase
from ._scoring_checks import dropped_tokens, truncation_message
from ._validation import TEXT_DIM
from ._weights import text_weights

if TYPE_CHECKING:
    from ._matrix import LogLikelihoodMatrix

__all__ = ["MatrixSummaries"]


class MatrixSummaries(MatrixBase):
    """Clipping, truncation checks and cross-entropies of :class:`~loglik_map.LogLikelihoodMatrix`."""

    __slots__ = ()

    def clip(self, lower_quantile: float = 0.02) -> LogLikelihoodMatrix:
        """Raise every entry below the ``lower_quantile`` quantile of all entries to that quantile.

        This is the paper's preprocessing (:ref:`method-preprocessing`: bottom 2 %), which bounds the
        influence of a few texts a model finds extremely unlikely. It is done once: clipping a
        clipped matrix again at the same quantile returns it unchanged with a warning, at
        another quantile is refused.

        Parameters
        ----------
        lower_quantile : float, default 0.02
            Quantile in [0, 1) of all K·N entries (linear interpolation, as ``numpy.quantile``).
            Exact for a dask-backed matrix too (a radix selection in 2–4 passes over the
            chunks, equal to ``numpy.quantile`` bit for bit); the clipped matrix stays lazy.

        Returns
        -------
        LogLikelihoodMatrix
            A new matrix; attrs record ``clip_lower_quantile`` and ``clip_value_nats``.
        """
        q = float(lower_quantile)
        if not 0.0 <= q < 1.0:
            raise LoglikMapError(f"lower_quantile must be in [0, 1), got {lower_quantile}")
        done = self.attrs.get("clip_lower_quantile")
        if done is not None:
            if float(done) == q:
                warnings.warn(f"this matrix is already clipped at the {q:g} quantile "
                              f"({float(self.attrs.get('clip_value_nats', np.nan)):.6g} nats); clipping again "
                              "would raise the next tail, so it is returned unchanged", LoglikMapWarning, stacklevel=2)
                return cast("LogLikelihoodMatrix", self)
            raise LoglikMapError(f"this matrix is already clipped at the {float(done):g} quantile; clipping it again "
                                 f"at {q:g} would compound the two. Clip the raw matrix once, at the quantile you want")
        values = self._data.data
        threshold = exact_quantile(values, q) if is_dask(values) else float(np.quantile(values, q))
        da = self._data.copy(data=np.maximum(values, threshold))
        da.attrs = {**da.attrs, "clip_lower_quantile": q, "clip_value_nats": threshold}
        return self._wrap(da)

    def truncated_texts(self) -> np.ndarray:
        """Ids of the texts that lost tokens to truncation under any model (``long_texts="truncate"``).

        Returns
        -------
        numpy.ndarray
            Text ids, read from the scorers' ``n_tokens_dropped`` cell coordinate; empty when it is
            absent.
        """
        return self.texts[dropped_tokens(self._data).per_text > 0]

    def check_not_truncated(self, action: str = "this matrix") -> None:
        """Raise a :class:`~loglik_map.LoglikMapError` if any text lost tokens to truncation.

        Used by :class:`~loglik_map.ModelMap`, :meth:`entropy` and :meth:`cross_entropy`; the
        message says how many texts and which models are affected, and what to do.

        Parameters
        ----------
        action : str, default "this matrix"
            What is refused, named in the message (e.g. ``"entropy()"``).
        """
        message = truncation_message(self._data, action)
        if message is not None:
            raise LoglikMapError(message)

    def cross_entropy(self, *, allow_truncated: bool = False) -> xr.DataArray:
        """Per-model cross-entropy estimate −mean_s ℓ_i(x_s) / (B̄ ln 2), in bits/byte.

        Parameters
        ----------
        allow_truncated : bool, default False
            Compute it even if some texts lost tokens to truncation (then it is too low: the
            log-likelihood of a prefix is divided by the bytes of the whole text).

        Returns
        -------
        xarray.DataArray
            Dims ``("model",)``, with the model coordinates.
        """
        if not allow_truncated:
            self.check_not_truncated("cross_entropy()")
        with np.errstate(over="ignore", invalid="ignore"):
            weights = text_weights(self._data)
            mean = self._data.mean(TEXT_DIM) if weights is None else self._data.weighted(
                xr.DataArray(weights, dims=TEXT_DIM)).mean(TEXT_DIM)
            ce = (-mean / (self.mean_bytes * LN2)).compute()
        if not np.isfinite(ce.values).all():
            bad = self.models[int(np.argmax(~np.isfinite(ce.values)))]
            raise LoglikMapError(f"the cross-entropy of model {bad!r} overflows float64: its log-likelihoods are far "
                                 "larger in magnitude than any real text's; check the matrix's values and units")
        ce.attrs = {"units": "bits/byte", "quantity": "cross-entropy estimate"}
        return ce.rename("cross_entropy")

    def entropy(self, *, allow_truncated: bool = False) -> float:
        """Text-entropy estimate: the smallest per-model cross-entropy, in bits/byte (:ref:`text entropy <method-entropy>`).

        Since −mean ℓ_i ≈ H(p_0) + KL(p_0, p_i), the best model gives an upper bound close to
        the entropy of the text source (≈ 0.71 bits/byte for the paper's Pile texts). Refused
        if texts lost tokens to truncation, unless ``allow_truncated=True``.

        Parameters
        ----------
        allow_truncated : bool, default False
            Compute it even if some texts lost tokens to truncation (then it is too low).

        Returns
        -------
        float
            Bits/byte.
        """
        if not allow_truncated:
            self.check_not_truncated("entropy()")
        return float(self.cross_entropy(allow_truncated=True).min())
