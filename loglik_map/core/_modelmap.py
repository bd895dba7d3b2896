"""``ModelMap``: the double-centred coordinate system in which squared distance is KL in bits/byte.

The whole class is here: its queries are thin methods over the array functions of the kernels
(:mod:`loglik_map.core._kernels`), the blocked walks (:mod:`loglik_map.core._blocked`,
:mod:`loglik_map.core._neighbours`) and the paired tests (:mod:`loglik_map.core._paired`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from os import PathLike
from typing import Any, overload

import numpy as np
import pandas as pd
import xarray as xr

from .._labels import unknown_labels_error
from .._progress import PROGRESS_DOC, Progress, progress_reporter
from .._repr import ReprMixin, Summary, clip_text, conventions_text, first_labels
from .._units import check_unit, nats_per_bit_per_byte
from .._util import fill_doc
from ..errors import LoglikMapError, WrongTypeError
from ..options import KERNEL_BACKENDS
from ._blocked import DEFAULT_BLOCK_SIZE, block_pairs, check_block_size, map_block_pairs, matrix_fingerprint, row_ranges
from ._centering import double_center_array
from ._embedding import embed_points
from ._floor import flag_below_floor
from ._kernels import NonFiniteKLError, PairwiseKL, resolve_backend
from ._largemap import block_to_store
from ._lazy import is_dask
from ._matrix import MODEL_DIM, TEXT_DIM, LogLikelihoodMatrix, _storage
from ._model_tree import ModelTree
from ._multiscale import DEFAULT_SCALES
from ._neighbours import exact_neighbours
from ._pair_queries import MIN_TEXTS_FOR_SE, _non_finite, check_texts, some_pairs
from ._pair_queries import all_pairs as dense_all_pairs
from ._paired_math import nearest_neighbours_on
from ._projection import ModelProjection, project_onto
from ._results import KLEstimate, normal_interval
from ._scoring_checks import check_comparable_rows, row_conventions
from ._validation import PAIR_DIM
from ._weights import check_weight_scale, text_weights, weights_text

__all__ = ["MIN_TEXTS_FOR_SE", "PAIR_DIM", "ModelMap", "ModelProjection", "ModelTree"]

class ModelMap(ReprMixin):
    """The model map of a log-likelihood matrix (:ref:`method-map`).

    The matrix L (K models × N texts, nats) is double-centred to Q and scaled to
    ``Q̃ = Q / sqrt(2 N B̄ ln 2)``; then ``‖q̃_i − q̃_j‖²`` estimates KL(p_i, p_j) in bits/byte,
    with the standard error ``sqrt(Σ_k (Q̃_ik − Q̃_jk)⁴ − KL²/N)`` (App. C).

    A pair's KL and SE equal ``var(ℓ_i − ℓ_j) / (2 B̄ ln 2)`` and do not depend on the other
    models; the coordinates (and so any embedding) are relative to the models mapped.

    Parameters
    ----------
    matrix : LogLikelihoodMatrix or xarray.DataArray
        Log-likelihoods in nats. Clip first (:meth:`LogLikelihoodMatrix.clip`) to follow the paper.
    backend : {"auto", "blas", "numba", "numpy"}, optional
        Kernel for all-pairs KL/SE; defaults to the ``kernel_backend`` option.
    allow_truncated : bool, default False
        Map a matrix in which some texts lost tokens to truncation (scored with
        ``long_texts="truncate"``). Refused by default: such a row's log-likelihood covers a
        prefix of the text, so its KLs are wrong by an unknown amount.
    allow_mixed_scoring : bool, default False
        Map rows scored under different conventions (``"reference"`` and ``"bos"``) anyway.

    References
    ----------
    Oyama, M., Yamagiwa, H., Takase, Y., and Shimodaira, H. (2025). *Mapping 1,000+ Language
    Models via the Log-Likelihood Vector.* Proceedings of ACL 2025 (:ref:`method-references`).

    Examples
    --------
    >>> import numpy as np, loglik_map as lm
    >>> rng = np.random.default_rng(0)
    >>> L = -500 + rng.normal(size=(3, 200))
    >>> m = lm.LogLikelihoodMatrix(L, models=["a", "b", "c"],
    ...                            texts=[f"t{k}" for k in range(200)], n_bytes=np.full(200, 1000))
    >>> mm = lm.ModelMap(m)
    >>> kl = mm.kl("a", "b")            # bits/byte
    >>> bool(np.isclose(kl, np.var(L[0] - L[1]) / (2 * 1000 * np.log(2))))
    True
    """

    __slots__ = ("_allow", "_backend", "_coords", "_matrix", "_pairwise", "_text_means")

    def __init__(self, matrix: LogLikelihoodMatrix | xr.DataArray, *, backend: str | None = None,
                 allow_truncated: bool = False, allow_mixed_scoring: bool = False) -> None:
        if backend is not None and backend not in KERNEL_BACKENDS:
            raise LoglikMapError(f"unknown backend {backend!r}; use one of {KERNEL_BACKENDS} (or None for the "
                                 "kernel_backend option); the kernels run on the CPU")
        if isinstance(matrix, xr.DataArray):
            matrix = LogLikelihoodMatrix.from_dataarray(matrix)
        if not isinstance(matrix, LogLikelihoodMatrix):
            raise WrongTypeError(f"ModelMap needs a LogLikelihoodMatrix or DataArray, got {type(matrix).__name__}")
        self._check_scoring(matrix, "ModelMap", allow_truncated, allow_mixed_scoring)
        self._matrix = matrix
        self._backend = backend
        weights = text_weights(matrix.data)  # a resampled text set: weighted means, sqrt(w)-scaled columns
        check_weight_scale(matrix.data, weights)
        parts = double_center_array(matrix.data.data, weights)  # a dask-backed matrix stays lazy (:ref:`guide-large-maps`)
        Q = parts.centered
        if weights is not None:
            Q *= np.sqrt(weights)[None, :]
        Q *= 1.0 / math.sqrt(2.0 * matrix.n_texts * nats_per_bit_per_byte(matrix.mean_bytes))
        coords = xr.DataArray(Q, dims=(MODEL_DIM, TEXT_DIM), coords=matrix.data.coords)
        coords.attrs = {
            "units": "sqrt(bits/byte)",
            "quantity": "model-map coordinates: double-centred log-likelihood / sqrt(2 N B̄ ln 2)",
        }
        self._coords = coords.rename("points")
        self._text_means = parts.text_means
        self._pairwise: PairwiseKL | None = None

    # ------------------------------------------------------------------ basic properties
    @property
    def matrix(self) -> LogLikelihoodMatrix:
        """The log-likelihood matrix the map was built from."""
        return self._matrix

    @property
    def points(self) -> xr.DataArray:
        """The models' points Q̃, dims ``("model", "text")``: squared distance between rows is KL in bits/byte.

        Each row is a model's double-centred log-likelihood vector scaled by
        ``1 / sqrt(2 N B̄ ln 2)``; the model coordinates (family, step, …) ride along.
        """
        return self._coords

    @property
    def text_means(self) -> xr.DataArray:
        """Per-text means (nats) removed by the column centering; used by :meth:`project`."""
        return xr.DataArray(self._text_means, dims=(TEXT_DIM,), coords={TEXT_DIM: self._matrix.texts},
                            attrs={"units": "nats"})

    @property
    def models(self) -> np.ndarray:
        """Model names, shape (K,)."""
        return self._matrix.models

    @property
    def n_texts(self) -> int:
        """Number of texts N."""
        return self._matrix.n_texts

    @property
    def mean_bytes(self) -> float:
        """Mean UTF-8 length B̄ of the texts, in bytes."""
        return self._matrix.mean_bytes

    def __len__(self) -> int:
        return self._matrix.n_models

    def _summary(self) -> Summary:
        matrix, n = self._matrix, self.n_texts
        allowed = [what for what, yes in zip(("truncated texts", "mixed scoring"), self._allow) if yes]
        se = (f"reliable (N = {n} ≥ {MIN_TEXTS_FOR_SE} texts)" if n >= MIN_TEXTS_FOR_SE else
              f"unreliable: N = {n} < {MIN_TEXTS_FOR_SE} texts (UnreliableEstimateWarning)" if n >= 3 else
              f"none: N = {n} < 3 texts")
        return Summary("ModelMap", ((MODEL_DIM, len(self)), (TEXT_DIM, n)), "KL in bits/byte = squared distance", (
            ("models", first_labels(self.models)),
            ("mean bytes", f"B̄ = {self.mean_bytes:.1f} bytes/text"),
            ("standard errors", se),
            ("text weights", weights_text(matrix.data)),
            ("clip", clip_text(matrix.attrs)),
            ("preprocessing", str(matrix.attrs.get("preprocessing", ""))),
            ("convention", conventions_text(matrix.attrs, row_conventions(matrix.data))),
            ("allowed", ", ".join(allowed)),
            ("backend", self._backend or ""),
        ))

    # ------------------------------------------------------------------ helpers
    def _with_matrix(self, matrix: LogLikelihoodMatrix) -> ModelMap:
        """A map of ``matrix`` built with this map's options (backend, what it allows)."""
        return type(self)(matrix, backend=self._backend, allow_truncated=self._allow[0],
                          allow_mixed_scoring=self._allow[1])

    def _check_scoring(self, matrix: LogLikelihoodMatrix, action: str, allow_truncated: bool,
                       allow_mixed_scoring: bool) -> None:
        """Refuse rows that lost tokens to truncation or were scored under different conventions."""
        self._allow = (allow_truncated, allow_mixed_scoring)
        check_comparable_rows(matrix, action, allow_truncated=allow_truncated, allow_mixed_scoring=allow_mixed_scoring)

    def _check_texts(self, with_se: bool) -> None:
        check_texts(self.n_texts, with_se)

    def _all_pairs(self) -> PairwiseKL:
        if self._pairwise is None:
            self._pairwise = dense_all_pairs(self._coords.values, self._backend, self.models)
        return self._pairwise

    def _pair(self, i: int, j: int) -> tuple[float, float]:
        if i == j:
            return 0.0, 0.0
        rows = np.asarray(self._coords.data[[i, j]])  # two rows, also from a dask-backed map
        kl, se = some_pairs(rows, np.array([0]), np.array([1]), self._backend, self.models[[i, j]])
        return float(kl[0]), float(se[0])  # the listed-pairs kernel: the same number as pairs() and summary()

    def _pairs(self, X: np.ndarray, ia: np.ndarray, ib: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return some_pairs(X, ia, ib, self._backend, self.models)

    def _index(self, model: str) -> int:
        idx = np.flatnonzero(self.models == model)
        if idx.size == 0:
            raise unknown_labels_error([model], self.models, "model", "on the map")
        return int(idx[0])

    def _scale(self, unit: str) -> float:
        check_unit(unit)
        return 1.0 if unit == "bits/byte" else nats_per_bit_per_byte(self.mean_bytes)

    def _pair_array(self, values: np.ndarray, unit: str, name: str) -> xr.DataArray:
        return xr.DataArray(
            values,
            dims=(MODEL_DIM, PAIR_DIM),
            coords={MODEL_DIM: self.models, PAIR_DIM: self.models},
            attrs={"units": unit},
            name=name,
        )

    def _row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """KL and SE (bits/byte) from model ``i`` to every model: two K-vectors, never a K × K array.

        The listed-pairs kernel evaluates each pair directly (two-pass), as :meth:`compare` and
        :meth:`summary` do, so ``kl(a)[b]`` is ``kl(a, b)`` bit for bit and equals the row of
        ``kl()`` to the all-pairs kernels' accuracy. Memory: O(K) beyond the points; a
        dask-backed map is read one block of rows at a time.
        """
        K = len(self)
        points = self._coords.data
        if not is_dask(points):
            return self._pairs(self._coords.values, np.full(K, i), np.arange(K))
        me = np.asarray(points[i : i + 1], dtype=np.float64)
        kl, se = np.empty(K), np.empty(K)
        for start, stop in row_ranges(K, DEFAULT_BLOCK_SIZE):
            block = np.asarray(points[start:stop], dtype=np.float64)
            kl[start:stop], se[start:stop] = some_pairs(
                me, np.zeros(stop - start, dtype=np.int64), np.arange(stop - start), self._backend,
                self.models[[i]], other=block, other_labels=self.models[start:stop])
        return kl, se

    def _pairwise_query(self, a: str | None, b: str | None, unit: str, which: str) -> float | xr.DataArray:
        scale = self._scale(unit)
        self._check_texts(with_se=which != "kl")
        if a is not None and b is not None:
            i, j = self._index(a), self._index(b)
            if i == j:
                return 0.0
            kl, se = self._pair(i, j)
            return scale * (kl if which == "kl" else se)
        name = which if which == "kl" else "kl_se"
        if a is None and b is None:
            return self._pair_array(getattr(self._all_pairs(), which) * scale, unit, name)
        model = a if a is not None else b  # KL is symmetric: the row of a is the column of b
        assert model is not None
        row = self._row(self._index(model))[0 if which == "kl" else 1]
        return xr.DataArray(row * scale, dims=(MODEL_DIM,),
                            coords={MODEL_DIM: self.models}, attrs={"units": unit, "reference_model": model},
                            name=name)

    # ------------------------------------------------------------------ KL and standard errors
    @overload
    def kl(self, a: str, b: str, *, unit: str = ...) -> float: ...
    @overload
    def kl(self, a: str | None = ..., b: None = ..., *, unit: str = ...) -> xr.DataArray: ...
    @overload
    def kl(self, a: None = ..., b: str | None = ..., *, unit: str = ...) -> xr.DataArray: ...

    def kl(self, a: str | None = None, b: str | None = None, *, unit: str = "bits/byte") -> float | xr.DataArray:
        """KL divergence estimates (:ref:`method-map`).

        Parameters
        ----------
        a, b : str, optional
            Model names. Both given: that pair's KL as a float. One given: KL from it to every
            model (DataArray over ``model``), computed pair by pair in O(K) memory (no K × K
            array; ``kl(a)[b]`` equals ``kl(a, b)``). Neither: all pairs (for maps too large for a
            K × K array in memory, :meth:`all_pairs` writes them to a Zarr store).
        unit : {"bits/byte", "nats"}
            ``"nats"`` is nats per text (bits/byte × B̄ ln 2).

        Returns
        -------
        float or xarray.DataArray
            All pairs: dims ``("model", "model_")``, symmetric, exact zeros on the diagonal.

        References
        ----------
        Oyama, M., Yamagiwa, H., Takase, Y., and Shimodaira, H. (2025). *Mapping 1,000+ Language
        Models via the Log-Likelihood Vector.* Proceedings of ACL 2025 (:ref:`method-references`).
        """
        return self._pairwise_query(a, b, unit, "kl")

    @overload
    def kl_se(self, a: str, b: str, *, unit: str = ...) -> float: ...
    @overload
    def kl_se(self, a: str | None = ..., b: None = ..., *, unit: str = ...) -> xr.DataArray: ...
    @overload
    def kl_se(self, a: None = ..., b: str | None = ..., *, unit: str = ...) -> xr.DataArray: ...

    def kl_se(self, a: str | None = None, b: str | None = None, *, unit: str = "bits/byte") -> float | xr.DataArray:
        """Standard errors of :meth:`kl` (:ref:`method-se`); same arguments and shapes.

        Refused with fewer than 3 texts (the SE is then 0 by construction); below
        :data:`MIN_TEXTS_FOR_SE` (32) texts it comes with an
        :class:`~loglik_map.UnreliableEstimateWarning`. The same holds for every method that
        returns an SE (:meth:`compare`, :meth:`summary`, :meth:`nearest`, :meth:`project`).

        Parameters
        ----------
        a, b : str, optional
            Model names, as in :meth:`kl`.
        unit : {"bits/byte", "nats"}
            Unit of the SEs.

        Returns
        -------
        float or xarray.DataArray
            Shaped as :meth:`kl`'s result; the DataArray is named ``kl_se``.

        References
        ----------
        Oyama, M., Yamagiwa, H., Takase, Y., and Shimodaira, H. (2025). *Mapping 1,000+ Language
        Models via the Log-Likelihood Vector.* Proceedings of ACL 2025, App. C
        (:ref:`method-references`).
        """
        return self._pairwise_query(a, b, unit, "se")

    # ------------------------------------------------------------------ one pair, a table of pairs, the nearest
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

        References
        ----------
        Oyama, M., Yamagiwa, H., Takase, Y., and Shimodaira, H. (2025). *Mapping 1,000+ Language
        Models via the Log-Likelihood Vector.* Proceedings of ACL 2025 (:ref:`method-references`).
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
        floor : float or xarray.Dataset, optional
            The numerics floor in bits/byte, or a :func:`~loglik_map.numerics_floor` result:
            adds columns ``floor`` (in ``unit``) and ``below_floor`` (``kl + 2 se < floor``: the
            pair differs less than the model differs from itself under other numerics).

        Returns
        -------
        pandas.DataFrame
            Columns ``a, b, kl, se, ci_low, ci_high, unit`` (and ``setting``; ``floor``,
            ``below_floor``); ``attrs`` hold ``units``, ``confidence_level`` and ``n_texts``.
            Below 32 texts the SEs come with an :class:`~loglik_map.UnreliableEstimateWarning`.

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

    @fill_doc(progress=PROGRESS_DOC)
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
            With ``test=True``: SE of the paired difference (:mod:`loglik_map.core._paired`).
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
        progress : bool, callable or None, optional
            With ``model=None``: progress over block pairs.
            {progress}

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
            return nearest_neighbours_on(self, model, k, level=level, unit=unit, method=method,
                                         correction=correction)
        k = 5 if k is None else k
        if k < 1:
            raise LoglikMapError(f"k must be ≥ 1, got {k}")
        i = self._index(model)
        self._check_texts(with_se=True)
        others = np.delete(np.arange(len(self)), i)
        kl, se = (np.delete(v, i) for v in self._row(i))
        order = np.argsort(kl, kind="stable")[:k]
        scale = self._scale(unit)
        return xr.DataArray(
            kl[order] * scale,
            dims=(MODEL_DIM,),
            coords={MODEL_DIM: self.models[others[order]], "se": (MODEL_DIM, se[order] * scale)},
            attrs={"units": unit, "reference_model": model},
            name="kl",
        )

    # ------------------------------------------------------------------ large maps (:ref:`guide-large-maps`)
    def _direct_backend(self) -> str:
        return "numpy" if resolve_backend(self._backend) == "numpy" else "numba"

    def _raise_non_finite(self, err: NonFiniteKLError) -> None:
        raise _non_finite(err, self.models) from None

    def _neighbour_table(self, k: int, unit: str, block_size: int, client: Any,
                         progress: bool | Progress | None) -> xr.Dataset:
        """The ``k`` closest models to every model, exact, block by block (:meth:`ModelMap.nearest` with no model).

        Every pair is considered (no index, no approximation): the KLs of each pair of row
        blocks come from one BLAS product with the accuracy guard of the dense kernels
        (near-identical pairs are evaluated directly), the k smallest per model are kept, and
        their KL and SE are evaluated directly. Memory: the coordinates (K × N float64) plus
        O(K·k + block_size²) — never K × K. Results equal the dense :meth:`kl` / :meth:`kl_se`
        to the kernels' accuracy; ties are ordered by model position, as a stable sort would.
        """
        K = len(self)
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < K:
            raise LoglikMapError(f"k must be a whole number with 1 ≤ k < {K} (the number of other models on this "
                                 f"map of {K}), got {k!r}; ask for fewer neighbours")
        block_size = check_block_size(block_size)
        scale = self._scale(unit)
        self._check_texts(with_se=True)
        try:
            with progress_reporter(progress, desc="neighbours", unit="block pair") as report:
                table = exact_neighbours(self._coords.data, int(k), block_size=block_size,
                                        backend=self._direct_backend(), client=client, progress=report)
        except NonFiniteKLError as err:
            self._raise_non_finite(err)
        coords = {n: c for n, c in self._coords.coords.items() if c.dims == (MODEL_DIM,)}
        coords["rank"] = np.arange(1, int(k) + 1)
        dims = (MODEL_DIM, "rank")
        return xr.Dataset(
            {
                "neighbour": (dims, self.models[table.index]),
                "kl": (dims, table.kl * scale, {"units": unit}),
                "se": (dims, table.se * scale, {"units": unit}),
            },
            coords=coords,
            attrs={"units": unit, "method": "exact", "n_texts": self.n_texts,
                   "block_size": block_size, "pairs_evaluated_directly": table.n_direct},
        )

    @fill_doc(progress=PROGRESS_DOC)
    def all_pairs(self, store: str | PathLike[str], *, unit: str = "bits/byte", block_size: int | None = None,
                  client: Any = None, overwrite: bool = False,
                  progress: bool | Progress | None = None) -> xr.Dataset:
        """KL and SE of every pair, written block by block into a Zarr store; resumable.

        The K × K results never sit in memory: each pair of row blocks is computed with the
        dense ``blas`` kernel's formulas and accuracy guard (near-identical pairs evaluated
        directly) and written to its own Zarr chunks, here or on a dask cluster's workers
        (which must see ``store`` on a shared file system). A run that was killed is continued
        by calling this again with the same store: only the missing block pairs are computed.
        A store is tied to its map: another map's store is refused.

        Parameters
        ----------
        store : path
            A ``.zarr`` path; created if missing, continued if it holds this map's run.
        unit : {"bits/byte", "nats"}
            Unit of the returned arrays (the store holds bits/byte).
        block_size : int, optional
            Rows per block (and the store's chunk size); default 2048 for a new store, the
            stored one when continuing.
        client : distributed.Client, optional
            Run the block pairs on this dask cluster.
        overwrite : bool, default False
            Start again: the new store is built beside the old one and replaces it when
            finished (only an all-pairs store is ever replaced).
        progress : bool, callable or None, optional
            Progress over the block pairs computed in this run.
            {progress}

        Returns
        -------
        xarray.Dataset
            Dask-backed ``kl`` and ``se``, dims ``("model", "model_")``, read from the store
            (see :func:`loglik_map.open_pairs`).
        """
        if block_size is not None:
            block_size = check_block_size(block_size)
        self._check_texts(with_se=True)
        self._scale(unit)  # a bad unit is refused before any work
        matrix = self._matrix
        labels: list[Any] = [matrix.models, matrix.texts, matrix.n_bytes.astype(str)]
        weights = text_weights(matrix.data)
        if weights is not None:  # a weighted map's pairs differ from the unweighted map's on the same matrix
            labels.append([repr(float(w)) for w in weights])
        fingerprint = matrix_fingerprint(matrix.data.data, labels, [matrix.n_texts, matrix.mean_bytes], client)
        opened = _storage("pair_store")(store, models=self.models, n_texts=self.n_texts,
                                       mean_bytes=self.mean_bytes, fingerprint=fingerprint,
                                       block_size=block_size, default_block_size=DEFAULT_BLOCK_SIZE,
                                       overwrite=overwrite)
        with opened as (sink, done):
            todo = [(i, j) for i, j in block_pairs(len(row_ranges(len(self), sink.block_size)))
                    if not done[i, j]]
            args = (sink, sink.block_size, self._direct_backend())
            try:
                with progress_reporter(progress, desc="all pairs", unit="block pair") as report:
                    for n, _ in enumerate(map_block_pairs(block_to_store, self._coords.data,
                                                          sink.block_size, todo, args, client), start=1):
                        if report is not None:
                            report(n, len(todo))
            except NonFiniteKLError as err:
                self._raise_non_finite(err)
        return _storage("open_pairs")(store, unit=unit)

    # ------------------------------------------------------------------ new models
    def project(self, other: LogLikelihoodMatrix | xr.DataArray, *, unit: str = "bits/byte") -> ModelProjection:
        """Place new models (scored on the same texts) on this map without moving the mapped ones.

        Each new row is centred by its own mean over texts and by the map's :attr:`text_means`,
        then scaled like the map. KL to every mapped model equals the pairwise estimate.

        Parameters
        ----------
        other : LogLikelihoodMatrix or xarray.DataArray
            The new models, scored on the map's texts (same ids, order and byte lengths) and
            alike (convention, truncation) unless the map allows otherwise.
        unit : {"bits/byte", "nats"}
            Unit of the KLs and SEs.

        Returns
        -------
        ModelProjection
            The new models' points and their KL (with SE) to every mapped model.
        """
        return project_onto(self, other, unit)

    # ------------------------------------------------------------------ embeddings
    def embed(
        self,
        method: str = "pca",
        n_components: int = 2,
        *,
        perplexity: float = 30.0,
        seed: int | np.random.Generator | None = 0,
    ) -> xr.DataArray:
        """Low-dimensional embedding of the map's rows (:ref:`method-figures`).

        Parameters
        ----------
        method : {"pca", "tsne"}
            PCA of the (already centred) coordinates by SVD, or t-SNE (scikit-learn, installed
            with the ``plot`` extra) initialised by PCA.
        n_components : int
            Output dimension (2 or 3 for plots).
        perplexity : float
            Perplexity of t-SNE (the paper uses 30); must be smaller than the number of models.
        seed : int or numpy.random.Generator, optional
            Seed for t-SNE.

        Returns
        -------
        xarray.DataArray
            Dims ``("model", "component")`` with the model coordinates. For PCA the attrs hold
            ``explained_variance_ratio``; signs are fixed so each component's largest loading
            is positive, making the result deterministic.
        """
        return embed_points(self._coords, method, n_components, perplexity=perplexity, seed=seed)

    # ------------------------------------------------------------------ trees with support
    @fill_doc(progress=PROGRESS_DOC)
    def tree(self, linkage: str = "average", metric: str = "kl", *, n_boot: int = 1000,
             scales: Sequence[float] = DEFAULT_SCALES,
             seed: int | np.random.Generator | None = None,
             clades: Mapping[str, Sequence[str]] | Sequence[Sequence[str]] | pd.DataFrame | None = None,
             progress: bool | Callable[[int, int], None] | None = None, client: Any = None) -> ModelTree:
        """A clustering tree of the models with AU/BP p-values of its clades from a multiscale bootstrap over texts.

        The texts are the independent units. At each scale r, ``n_boot`` replicates draw
        ``⌊r·N⌋`` texts with replacement and recompute the map on them (each model re-centred
        over the drawn texts, B̄ of the drawn texts); each replicate's tree is counted against
        every clade of the observed tree. The bootstrap probabilities BP(r) are fitted by
        ``Φ⁻¹(1 − BP(r)) = v√r + c/√r`` (weighted least squares), giving the approximately
        unbiased ``AU = 1 − Φ(v − c)`` and ``BP = 1 − Φ(v + c)`` — pvclust's multiscale bootstrap
        with the texts as its rows. A replicate costs two BLAS products of its counts (K × K
        numbers), never a copy of the matrix (:ref:`guide-trees`).

        Parameters
        ----------
        linkage : {"average", "complete", "single", "weighted", "ward"}, default "average"
            Linkage method (scipy's names; ``"average"`` is UPGMA; ``"ward"`` needs ``metric="euclidean"``).
        metric : {"kl", "euclidean"}, default "kl"
            Cluster on KL in bits/byte (the squared map distance) or on the map distance √KL
            (then, with average linkage, the tree and p-values are pvclust's on the texts ×
            models matrix with centred Euclidean distance).
        n_boot : int, default 1000
            Replicates per scale (≥ 10). The p-values' Monte-Carlo standard errors (``au_se``)
            shrink as 1/√n_boot.
        scales : sequence of float, default 0.5, 0.6, …, 1.4
            Replicate sizes as fractions of N (pvclust's default); at least 3 distinct sizes ⌊r·N⌋.
        seed : int or numpy.random.Generator, optional
            Seed of the replicates; the result does not depend on ``client``.
        clades : mapping, list of model lists or DataFrame, optional
            Further groups to test (name → models, or lists of models), or a model-card lineage
            (:func:`loglik_map.io.lineage`) whose claimed clades are tested: see
            :meth:`ModelTree.check_lineage`. Their p-values are in :attr:`ModelTree.tests`.
        progress : bool, callable or None, optional
            Progress over the bootstrap replicates.
            {progress}
        client : distributed.Client, optional
            Run the replicates on this dask cluster (the ``parallel`` extra).

        Returns
        -------
        ModelTree
            The linkage, dendrogram order and a table of the clades with ``au``, ``bp``, ``si``,
            their standard errors, the signed distance ``v`` and curvature ``c``.

        References
        ----------
        .. [1] Shimodaira, H. (2002). An approximately unbiased test of phylogenetic tree
           selection. Systematic Biology 51(3), 492–508.
        .. [2] Shimodaira, H. (2004). Approximately unbiased tests of regions using
           multistep-multiscale bootstrap resampling. Annals of Statistics 32(6), 2616–2641.
        .. [3] Suzuki, R. and Shimodaira, H. (2006). Pvclust: an R package for assessing the
           uncertainty in hierarchical clustering. Bioinformatics 22(12), 1540–1542.

        Examples
        --------
        >>> import loglik_map as lm
        >>> ex = lm.synthetic.make_markov_example(n_families=2, members_per_family=2, n_texts=300, seed=1)
        >>> tree = lm.ModelMap(ex.matrix).tree(n_boot=100, seed=0, progress=False)
        >>> for members in sorted(tree.significant().members):
        ...     print(members)
        ('family0-member0', 'family0-member1')
        ('family1-member0', 'family1-member1')
        """
        from ._tree import build_tree

        return build_tree(self, linkage=linkage, metric=metric, n_boot=n_boot, scales=scales, seed=seed,
                          clades=clades, progress=progress, client=client)
