"""New models placed on an existing model map (:meth:`ModelMap.project <loglik_map.ModelMap.project>`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from .._repr import ReprMixin, Summary, first_labels
from .._units import nats_per_bit_per_byte
from ..errors import LoglikMapError, WrongTypeError
from ._matrix import LogLikelihoodMatrix
from ._pair_queries import some_pairs
from ._results import normal_interval
from ._scoring_checks import row_conventions
from ._validation import MODEL_DIM, PAIR_DIM, TEXT_DIM
from ._weights import text_weights, weighted_mean

if TYPE_CHECKING:
    from ._modelmap import ModelMap

__all__ = ["ModelProjection", "project_onto"]


@dataclass(frozen=True, repr=False)
class ModelProjection(ReprMixin):
    """New models placed on an existing map (see :meth:`ModelMap.project <loglik_map.ModelMap.project>`).

    Attributes
    ----------
    points : xarray.DataArray
        Dims ``("model", "text")``: the new models' points, centred with the map's own text
        means and scaled like the map (squared distance = KL in bits/byte).
    kl : xarray.DataArray
        Dims ``("model", "model_")``: KL from each new model (``model``) to each mapped model
        (``model_``), in ``unit``.
    se : xarray.DataArray
        Standard errors of ``kl``, same dims and unit.
    unit : str
        ``"bits/byte"`` or ``"nats"`` (per text).
    """

    points: xr.DataArray
    kl: xr.DataArray
    se: xr.DataArray
    unit: str

    def _summary(self) -> Summary:
        new, mapped = self.kl[MODEL_DIM].values, self.kl[PAIR_DIM].values
        return Summary("ModelProjection", ((MODEL_DIM, new.size), (PAIR_DIM, mapped.size)), self.unit, (
            ("new models", first_labels(new)),
            ("mapped models", first_labels(mapped)),
            ("texts", str(self.points.sizes[TEXT_DIM])),
        ))

    def to_dataframe(self, confidence_level: float = 0.95) -> pd.DataFrame:
        """A tidy table: one row per (new model ``a``, mapped model ``b``).

        Parameters
        ----------
        confidence_level : float, default 0.95
            Coverage of the normal-approximation interval ``kl ± z·se``.

        Returns
        -------
        pandas.DataFrame
            Columns ``a, b, kl, se, ci_low, ci_high, unit``.
        """
        a, b = np.meshgrid(self.kl[MODEL_DIM].values, self.kl[PAIR_DIM].values, indexing="ij")
        kl, se = self.kl.values.ravel(), self.se.values.ravel()
        low, high = normal_interval(kl, se, confidence_level)
        out = pd.DataFrame({"a": a.ravel(), "b": b.ravel(), "kl": kl, "se": se, "ci_low": low, "ci_high": high,
                            "unit": self.unit})
        out.attrs.update(units=self.unit, confidence_level=confidence_level)
        return out


def project_onto(mm: ModelMap, other: LogLikelihoodMatrix | xr.DataArray, unit: str) -> ModelProjection:
    """Place the models of ``other`` on ``mm`` (the work of :meth:`ModelMap.project`; checks included).

    Parameters
    ----------
    mm : ModelMap
        The map.
    other : LogLikelihoodMatrix or xarray.DataArray
        The new models, scored on the map's texts.
    unit : {"bits/byte", "nats"}
        Unit of the KLs and SEs.

    Returns
    -------
    ModelProjection
    """
    if isinstance(other, xr.DataArray):
        other = LogLikelihoodMatrix.from_dataarray(other)
    if not isinstance(other, LogLikelihoodMatrix):
        raise WrongTypeError(f"project needs a LogLikelihoodMatrix, got {type(other).__name__}")
    mine = mm.matrix
    if other.n_texts != mine.n_texts or np.any(other.texts != mine.texts):
        k = int(np.argmax(other.texts != mine.texts)) if other.n_texts == mine.n_texts else None
        where = f" (first difference at position {k})" if k is not None else ""
        raise LoglikMapError(f"the new models were scored on different texts than the map{where}")
    if np.any(other.n_bytes != mine.n_bytes):
        raise LoglikMapError("the new models' texts have different byte lengths than the map's")
    allow_truncated, allow_mixed = mm._allow
    if not allow_truncated:
        other.check_not_truncated("project")
    if not allow_mixed:
        theirs, ours = set(row_conventions(other.data)) - {""}, set(row_conventions(mine.data)) - {""}
        if len(theirs | ours) > 1:
            raise LoglikMapError(f"project: the map's models were scored with convention {sorted(ours)} and the "
                                 f"new ones with {sorted(theirs)}; rescore them alike, or build the map with "
                                 "allow_mixed_scoring=True")
    mm._check_texts(with_se=True)
    L = other.values
    weights = text_weights(mine.data)  # the map's weights, whatever the new rows carry
    Q = L - weighted_mean(L, weights, axis=1)[:, None] - mm._text_means[None, :]
    if weights is not None:
        Q *= np.sqrt(weights)[None, :]
    Q *= 1.0 / math.sqrt(2.0 * mine.n_texts * nats_per_bit_per_byte(mine.mean_bytes))
    coords = xr.DataArray(Q, dims=(MODEL_DIM, TEXT_DIM), coords=other.data.coords,
                          attrs=dict(mm.points.attrs), name="points")
    Kn, K = other.n_models, len(mm)
    rows_a = np.repeat(np.arange(Kn), K)
    rows_b = np.tile(np.arange(K), Kn)
    kl, se = some_pairs(Q, rows_a, rows_b, mm._backend, other.models, other=mm.points.values,
                        other_labels=mm.models)  # the map's points are not copied
    scale = mm._scale(unit)
    kw: dict[str, Any] = dict(dims=(MODEL_DIM, PAIR_DIM), coords={MODEL_DIM: other.models, PAIR_DIM: mm.models},
                              attrs={"units": unit})
    return ModelProjection(
        points=coords,
        kl=xr.DataArray(kl.reshape(Kn, K) * scale, name="kl", **kw),
        se=xr.DataArray(se.reshape(Kn, K) * scale, name="se", **kw),
        unit=unit,
    )

