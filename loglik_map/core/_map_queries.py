"""The model map's per-pair queries: one pair with its SE, a list of pairs, nearest neighbours."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import LoglikMapError
from ._paired_math import KLDifference, kl_difference_on, nearest_neighbours_on
from ._validation import MODEL_DIM
from .results import KLEstimate

__all__ = ["MapQueries"]


class MapQueries:
    """:meth:`compare`, :meth:`pairs`, :meth:`nearest` and the paired tests of :class:`~loglik_map.ModelMap`."""

    __slots__ = ()

    if TYPE_CHECKING:  # provided by ModelMap
        _coords: xr.DataArray

        @property
        def models(self) -> np.ndarray: ...
        @property
        def n_texts(self) -> int: ...
        def __len__(self) -> int: ...
        def _scale(self, unit: str) -> float: ...
        def _check_texts(self, with_se: bool) -> None: ...
        def _index(self, model: str) -> int: ...
        def _pair(self, i: int, j: int) -> tuple[float, float]: ...
        def _pairs(self, X: np.ndarray, ia: np.ndarray, ib: np.ndarray,
                   names: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]: ...

    def compare(self, a: str, b: str, *, unit: str = "bits/byte") -> KLEstimate:
        """KL between two models with its SE.

        Parameters
        ----------
        a, b : str
            Model names.
        unit : {"bits/byte", "nats"}
            Unit of the estimate.

        Returns
        -------
        KLEstimate
            ``kl``, ``se``, the unit and N; ``confidence_interval()`` gives ``kl ± z·se``.
        """
        scale = self._scale(unit)
        self._check_texts(with_se=True)
        i, j = self._index(a), self._index(b)
        kl, se = self._pair(i, j)
        return KLEstimate(model_a=a, model_b=b, kl=scale * kl, se=scale * se, unit=unit, n_texts=self.n_texts)

    def pairs(self, pairs: Iterable[Sequence[str]], *, unit: str = "bits/byte") -> pd.DataFrame:
        """KL and SE for a list of ``(a, b)`` model pairs.

        Parameters
        ----------
        pairs : iterable of (str, str)
            Model-name pairs.
        unit : {"bits/byte", "nats"}
            Unit of ``kl`` and ``se``.

        Returns
        -------
        pandas.DataFrame
            Columns ``a``, ``b``, ``kl``, ``se`` (in ``unit``), one row per pair, in order.
        """
        scale = self._scale(unit)
        pairs = [tuple(p) for p in pairs]
        for p in pairs:
            if len(p) != 2:
                raise LoglikMapError(f"each pair must be (a, b), got {p!r}")
        ia = np.array([self._index(a) for a, _ in pairs], dtype=np.int64)
        ib = np.array([self._index(b) for _, b in pairs], dtype=np.int64)
        if len(pairs):
            self._check_texts(with_se=True)
            kl, se = self._pairs(self._coords.values, ia, ib)
        else:
            kl = se = np.zeros(0)
        return pd.DataFrame(
            {"a": [p[0] for p in pairs], "b": [p[1] for p in pairs], "kl": kl * scale, "se": se * scale}
        )

    def nearest(self, model: str, k: int = 5, *, unit: str = "bits/byte") -> xr.DataArray:
        """The ``k`` models closest to ``model`` (itself excluded), nearest first.

        Parameters
        ----------
        model : str
            The reference model.
        k : int, default 5
            How many neighbours.
        unit : {"bits/byte", "nats"}
            Unit of the KLs and SEs.

        Returns
        -------
        xarray.DataArray
            KL over a ``model`` dimension of length ``min(k, K - 1)``, with the SE as an ``se``
            coordinate.
        """
        if k < 1:
            raise LoglikMapError(f"k must be ≥ 1, got {k}")
        i = self._index(model)
        self._check_texts(with_se=True)
        X = self._coords.values
        others = np.delete(np.arange(len(self)), i)
        kl, se = self._pairs(X, np.full(others.size, i), others)
        order = np.argsort(kl, kind="stable")[:k]
        scale = self._scale(unit)
        return xr.DataArray(
            kl[order] * scale,
            dims=(MODEL_DIM,),
            coords={MODEL_DIM: self.models[others[order]], "se": (MODEL_DIM, se[order] * scale)},
            attrs={"units": unit, "reference_model": model},
            name="kl",
        )

    def paired(self, a: str, b: str, c: str, *, unit: str = "bits/byte", method: str = "delta") -> KLDifference:
        """Is ``a`` closer to ``b`` than to ``c``? ``KL(a, b) − KL(a, c)`` with an SE paired over texts.

        Parameters
        ----------
        a, b, c : str
            Model names.
        unit : {"bits/byte", "nats"}
            Unit of the KLs.
        method : {"delta", "jackknife"}
            How the SE of the difference is computed (:mod:`loglik_map.core.paired`).

        Returns
        -------
        KLDifference
            Negative: ``b`` is closer (as :func:`loglik_map.closer`).
        """
        return kl_difference_on(self, (a, b), (a, c), unit=unit, method=method)  # type: ignore[arg-type]

    def distinguishable_neighbours(self, model: str, k: int | None = None, **options: Any) -> xr.Dataset:
        """Neighbours of ``model`` tested against the nearest one (as :func:`loglik_map.nearest_neighbours`).

        Parameters
        ----------
        model : str
            The reference model.
        k : int, optional
            Keep the ``k`` nearest.
        **options
            ``level``, ``unit``, ``method``, ``correction`` of :func:`loglik_map.nearest_neighbours`.

        Returns
        -------
        xarray.Dataset
        """
        return nearest_neighbours_on(self, model, k, **options)  # type: ignore[arg-type]
