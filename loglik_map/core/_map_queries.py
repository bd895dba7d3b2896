"""The model map's per-pair queries: one pair with its SE, a table of pairs, nearest neighbours."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import LoglikMapError, WrongTypeError
from ._paired_math import nearest_neighbours_on
from ._validation import MODEL_DIM
from .blocked import DEFAULT_BLOCK_SIZE
from .kernels import PairwiseKL
from .results import KLEstimate, normal_interval

__all__ = ["MapQueries"]


class MapQueries:
    """:meth:`compare`, :meth:`summary` and :meth:`nearest` of :class:`~loglik_map.ModelMap`."""

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
        def _all_pairs(self) -> PairwiseKL: ...
        def _pair(self, i: int, j: int) -> tuple[float, float]: ...
        def _pairs(self, X: np.ndarray, ia: np.ndarray, ib: np.ndarray,
                   names: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]: ...
        def _neighbour_table(self, k: int, unit: str, block_size: int, client: Any,
                             progress: bool | Callable[[int, int], None] | None) -> xr.Dataset: ...

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

    def _pairs_table(self, pairs: Iterable[Sequence[str]], unit: str) -> pd.DataFrame:
        """Columns ``a``, ``b``, ``kl``, ``se`` (in ``unit``) for a list of ``(a, b)``, one row per pair."""
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

    def summary(self, pairs: Any = None, *, unit: str = "bits/byte", confidence_level: float = 0.95) -> pd.DataFrame:
        """One tidy table of model pairs: KL, SE and confidence interval, a row per pair (as ``az.summary``).

        Parameters
        ----------
        pairs : optional
            Which pairs:

            * ``None`` (default): every unordered pair ``(a, b)`` of mapped models, in map order
              (K (K − 1) / 2 rows; KL is symmetric);
            * a list of ``(a, b)`` model names;
            * a pair rule, i.e. any callable that gives the pairs of a map, such as the rules of
              the KL scale: ``lm.consecutive_checkpoints("step", by="run")`` or
              ``lm.original_vs("quantization")`` (a :class:`~loglik_map.KLSetting` with its own
              preprocessing is :func:`~loglik_map.kl_scale_pairs`' to apply);
            * a mapping ``{setting: rule or list of pairs}``: the pairs of every setting, with a
              ``setting`` column first.
        unit : {"bits/byte", "nats"}
            Unit of ``kl``, ``se`` and the interval (``"nats"``: nats per text).
        confidence_level : float, default 0.95
            Coverage of the normal-approximation interval ``kl ± z·se`` (lower end clipped at 0).

        Returns
        -------
        pandas.DataFrame
            Columns ``a, b, kl, se, ci_low, ci_high, unit`` (and ``setting``); ``attrs`` hold
            ``units``, ``confidence_level`` and ``n_texts``. Below 32 texts the SEs come with an
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
            out = self._pairs_table(self._resolve_pairs(pairs), unit)
        if "setting" not in out:
            out["ci_low"], out["ci_high"] = normal_interval(out["kl"].to_numpy(), out["se"].to_numpy(),
                                                            confidence_level)
            out["unit"] = unit
        out.attrs.update(units=unit, confidence_level=confidence_level, n_texts=self.n_texts)
        return out

    def _all_pairs_table(self, unit: str) -> pd.DataFrame:
        """Every unordered pair (i < j) from the all-pairs kernels."""
        scale = self._scale(unit)
        self._check_texts(with_se=True)
        ia, ib = np.triu_indices(len(self), k=1)
        full = self._all_pairs()
        return pd.DataFrame({"a": self.models[ia], "b": self.models[ib], "kl": full.kl[ia, ib] * scale,
                             "se": full.se[ia, ib] * scale})

    def _resolve_pairs(self, pairs: Any) -> list[tuple[str, str]]:
        """A list of ``(a, b)`` from a list of pairs or a pair rule (a callable on a map)."""
        if callable(pairs):
            pairs = pairs(self)  # a pair rule; the core does not import loglik_map.scale
        if isinstance(pairs, str) or not isinstance(pairs, Iterable):
            kind = "a string" if isinstance(pairs, str) else f"a {type(pairs).__name__}"
            raise WrongTypeError(f"pairs={pairs!r:.80} is {kind}, not a list of (a, b) model pairs or a pair rule "
                                 "such as lm.consecutive_checkpoints('step', by='run'); for a KLSetting (which may "
                                 "carry its own preprocessing) use lm.kl_scale_pairs(matrix, {name: setting})")
        out = [tuple(p) for p in pairs]
        for p in out:
            if len(p) != 2:
                raise LoglikMapError(f"each pair must be (a, b), got {p!r}")
        return out

    def nearest(self, model: str | None = None, k: int | None = None, *, test: bool = False,
                unit: str = "bits/byte", level: float = 0.05, method: str = "delta", correction: str = "range",
                block_size: int = DEFAULT_BLOCK_SIZE, client: Any = None,
                progress: bool | Callable[[int, int], None] | None = None) -> xr.DataArray | xr.Dataset:
        """The models closest to ``model`` (itself excluded), nearest first; or to every model.

        Parameters
        ----------
        model : str, optional
            The reference model. ``None``: the ``k`` nearest neighbours of every model, exact,
            computed block by block in O(K·k + block_size²) memory, never K × K
            (:ref:`guide-large-maps`); ties are ordered by model position.
        k : int, optional
            How many neighbours: default 5, or with ``test=True`` every other model (the
            multiple-testing correction is over the ``k − 1`` comparisons kept).
        test : bool, default False
            Test every neighbour against the nearest one with the paired difference
            ``KL(model, j) − KL(model, nearest)``, two-sided (the nearest is picked from the same
            estimates, so the difference from a tied neighbour is the larger of two); needs
            ``model``. The test is calibrated for the estimator's target, not the exact KL
            (:ref:`method-se`).
        unit : {"bits/byte", "nats"}
            Unit of the KLs and SEs.
        level : float, default 0.05
            With ``test=True``: significance level of ``distinguishable``.
        method : {"delta", "jackknife"}
            With ``test=True``: SE of the paired difference (:mod:`loglik_map.core.paired`).
        correction : {"range", "holm", "none"}
            With ``test=True``: how the p-values are adjusted over the comparisons. ``"range"``
            (default) refers each, step down, to the studentized range of the models not yet
            separated from the nearest, which keeps the level however many neighbours tie with
            it; ``"holm"`` is Holm–Bonferroni over the two-sided p-values (level kept with one
            tie only: about 7 % at level 5 % with four); ``"none"``.
        block_size : int, default 2048
            With ``model=None``: rows per block; a block pair holds a few ``block_size²`` arrays.
        client : distributed.Client, optional
            With ``model=None``: run the block pairs on this dask cluster (``parallel`` extra).
        progress : bool or callable, optional
            With ``model=None``: a tqdm bar over block pairs (default: the ``progress`` option,
            when tqdm is installed), or a callable called as ``progress(done, total)``.

        Returns
        -------
        xarray.DataArray or xarray.Dataset
            ``model`` given: KL over a ``model`` dimension of length ``min(k, K - 1)`` with the SE
            as an ``se`` coordinate. ``test=True``: a Dataset over ``model`` (neighbours, nearest
            first) with ``kl``, ``se``, ``difference``, ``difference_se``, ``z``, ``p_value``
            (two-sided), ``p_adjusted`` and ``distinguishable`` (``p_adjusted < level``; False
            for the nearest itself and for neighbours tied with it); attributes name the
            reference model and the nearest. ``model=None``: a Dataset over ``("model", "rank")``
            (rank 1 = nearest) with ``neighbour`` (model name), ``kl`` and ``se``.

        References
        ----------
        Oyama, M., Yamagiwa, H., Takase, Y., and Shimodaira, H. (2025). *Mapping 1,000+ Language
        Models via the Log-Likelihood Vector.* Proceedings of ACL 2025 (:ref:`method-references`).

        Examples
        --------
        >>> import numpy as np, loglik_map as lm
        >>> rng = np.random.default_rng(0)
        >>> m = lm.LogLikelihoodMatrix(-500 + rng.normal(size=(4, 200)), models=["a", "b", "c", "d"],
        ...                            texts=[f"t{k}" for k in range(200)], n_bytes=np.full(200, 1000))
        >>> lm.ModelMap(m).nearest("a", k=2).sizes["model"]
        2
        >>> lm.ModelMap(m).nearest(k=1, progress=False)["neighbour"].dims
        ('model', 'rank')
        """
        if model is None:
            if test:
                raise LoglikMapError("test=True compares one model's neighbours with its nearest; name the model")
            return self._neighbour_table(5 if k is None else k, unit, block_size, client, progress)
        if test:
            return nearest_neighbours_on(self, model, k, level=level, unit=unit,  # type: ignore[arg-type]
                                         method=method, correction=correction)
        k = 5 if k is None else k
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
