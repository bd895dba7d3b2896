"""The model map's per-pair queries: one pair with its SE, a list of pairs, nearest neighbours."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import LoglikMapError
from ._floor import flag_below_floor
from ._paired_math import KLDifference, kl_difference_on, nearest_neighbours_on
from ._validation import MODEL_DIM
from .kernels import PairwiseKL
from .results import KLEstimate, normal_interval

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
        @property
        def mean_bytes(self) -> float: ...
        def __len__(self) -> int: ...
        def _scale(self, unit: str) -> float: ...
        def _check_texts(self, with_se: bool) -> None: ...
        def _index(self, model: str) -> int: ...
        def _all_pairs(self) -> PairwiseKL: ...
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

    def summary(self, pairs: Any = None, *, unit: str = "bits/byte", confidence_level: float = 0.95,
                floor: Any = None) -> pd.DataFrame:
        """One tidy table of model pairs: KL, SE and confidence interval, a row per pair (as ``az.summary``).

        Parameters
        ----------
        pairs : optional
            Which pairs:

            * ``None`` (default): every unordered pair ``(a, b)`` of mapped models, in map order
              (K (K − 1) / 2 rows; KL is symmetric);
            * a list of ``(a, b)`` model names;
            * a rule of the KL-scale module applied to this map, e.g.
              ``lm.consecutive_checkpoints("step", by="run")`` or ``lm.original_vs("quantization")``;
            * a mapping ``{setting: rule or list of pairs}``: the pairs of every setting, with a
              ``setting`` column first.
        unit : {"bits/byte", "nats"}
            Unit of ``kl``, ``se`` and the interval (``"nats"``: nats per text).
        confidence_level : float, default 0.95
            Coverage of the normal-approximation interval ``kl ± z·se`` (lower end clipped at 0).
        floor : float or xarray.Dataset, optional
            The numerics floor in bits/byte, or a :func:`~loglik_map.numerics_floor` result:
            adds columns ``floor`` (in ``unit``) and ``below_floor`` (``kl + 2 se < floor``: the
            pair differs less than the model differs from itself under other numerics).

        Returns
        -------
        pandas.DataFrame
            Columns ``a, b, kl, se, ci_low, ci_high, unit`` (and ``setting``; ``floor``,
            ``below_floor``); ``attrs`` hold ``units``, ``confidence_level`` and ``n_texts``. Below 32 texts the SEs come with an
            :class:`~loglik_map.UnreliableEstimateWarning`.

        Examples
        --------
        >>> import numpy as np, loglik_map as lm
        >>> rng = np.random.default_rng(0)
        >>> m = lm.LogLikelihoodMatrix(-500 + rng.normal(size=(3, 200)), models=["a", "b", "c"],
        ...                            texts=[f"t{k}" for k in range(200)], n_bytes=np.full(200, 1000))
        >>> table = lm.ModelMap(m).summary()
        >>> table[["a", "b"]].to_numpy().tolist()
        [['a', 'b'], ['a', 'c'], ['b', 'c']]
        >>> list(table.columns)
        ['a', 'b', 'kl', 'se', 'ci_low', 'ci_high', 'unit']
        """
        if isinstance(pairs, Mapping):
            frames = []
            for name, spec in pairs.items():
                frame = self.summary(spec, unit=unit, confidence_level=confidence_level)
                frame.insert(0, "setting", name)
                frames.append(frame)
            if not frames:
                raise LoglikMapError("summary(pairs={}) has no settings; give at least one {name: rule}")
            out = pd.concat(frames, ignore_index=True)
        elif pairs is None:
            out = self._all_pairs_table(unit)
        else:
            out = self.pairs(self._resolve_pairs(pairs), unit=unit)
        if "setting" not in out:
            out["ci_low"], out["ci_high"] = normal_interval(out["kl"].to_numpy(), out["se"].to_numpy(),
                                                            confidence_level)
            out["unit"] = unit
        out.attrs.update(units=unit, confidence_level=confidence_level, n_texts=self.n_texts)
        if floor is not None:
            flag_below_floor(out, floor, unit, self.mean_bytes)
        return out

    def _all_pairs_table(self, unit: str) -> pd.DataFrame:
        """Every unordered pair (i < j) from the all-pairs kernels."""
        scale = self._scale(unit)
        self._check_texts(with_se=True)
        ia, ib = np.triu_indices(len(self), k=1)
        full = self._all_pairs()
        return pd.DataFrame({"a": self.models[ia], "b": self.models[ib], "kl": full.kl[ia, ib] * scale,
                             "se": full.se[ia, ib] * scale})

    def _resolve_pairs(self, pairs: Any) -> Any:
        """A list of (a, b) from a list, a pair rule of :mod:`loglik_map.scale` or a plain KLSetting."""
        if isinstance(pairs, str):
            raise LoglikMapError(f"pairs={pairs!r} is a string; give a rule such as lm.consecutive_checkpoints(...) "
                                 "or a list of (a, b) model pairs")
        if hasattr(pairs, "preprocessing") and hasattr(pairs, "pairs"):  # a KLSetting
            if pairs.preprocessing is not None:
                raise LoglikMapError("this KLSetting has its own preprocessing, which a map cannot apply to itself; "
                                     "use lm.kl_scale_pairs(matrix, {name: setting}) for it")
            pairs = pairs.pairs
        return pairs(self) if callable(pairs) else pairs  # the core does not import loglik_map.scale

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
