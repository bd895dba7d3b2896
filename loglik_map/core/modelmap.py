"""``ModelMap``: the double-centred coordinate system in which squared distance is KL in bits/byte."""

from __future__ import annotations

import math
from typing import overload

import numpy as np
import xarray as xr

from .._labels import unknown_labels_error
from .._repr import ReprMixin, Summary, clip_text, conventions_text, first_labels
from ..errors import LoglikMapError, WrongTypeError
from ..options import KERNEL_BACKENDS
from ..units import check_unit, nats_per_bit_per_byte
from ._map_queries import MapQueries
from ._pair_queries import MIN_TEXTS_FOR_SE, all_pairs, check_texts, some_pairs
from ._scoring_checks import row_conventions, scoring_conflict
from ._validation import PAIR_DIM
from .centering import double_center_array
from .embedding import embed_points
from .kernels import PairwiseKL
from .largemap import BlockedPairsMixin
from .matrix import MODEL_DIM, TEXT_DIM, LogLikelihoodMatrix
from .projection import ModelProjection, project_onto

__all__ = ["MIN_TEXTS_FOR_SE", "PAIR_DIM", "ModelMap", "ModelProjection"]

class ModelMap(MapQueries, BlockedPairsMixin, ReprMixin):
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
        parts = double_center_array(matrix.data.data)  # a dask-backed matrix stays lazy (:ref:`guide-large-maps`)
        Q = parts.centered
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
        if not allow_truncated:
            matrix.check_not_truncated(action)
        if not allow_mixed_scoring:
            conflict = scoring_conflict(matrix.data)
            if conflict is not None:
                raise LoglikMapError(f"{action}: {conflict}, or pass allow_mixed_scoring=True")

    def _check_texts(self, with_se: bool) -> None:
        check_texts(self.n_texts, with_se)

    def _all_pairs(self) -> PairwiseKL:
        if self._pairwise is None:
            self._pairwise = all_pairs(self._coords.values, self._backend, self.models)
        return self._pairwise

    def _pair(self, i: int, j: int) -> tuple[float, float]:
        if i == j:
            return 0.0, 0.0
        rows = np.asarray(self._coords.data[[i, j]])  # two rows, also from a dask-backed map
        kl, se = some_pairs(rows, np.array([0]), np.array([1]), self._backend, self.models[[i, j]])
        return float(kl[0]), float(se[0])  # the listed-pairs kernel: the same number as pairs() and summary()

    def _pairs(self, X: np.ndarray, ia: np.ndarray, ib: np.ndarray,
               names: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        labels = self.models if names is None else np.concatenate([np.asarray(names, dtype=object), self.models])
        return some_pairs(X, ia, ib, self._backend, labels)

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

    def _pairwise_query(self, a: str | None, b: str | None, unit: str, which: str) -> float | xr.DataArray:
        scale = self._scale(unit)
        self._check_texts(with_se=which != "kl")
        if a is not None and b is not None:
            i, j = self._index(a), self._index(b)
            if i == j:
                return 0.0
            kl, se = self._pair(i, j)
            return scale * (kl if which == "kl" else se)
        full = getattr(self._all_pairs(), which) * scale
        out = self._pair_array(full, unit, which if which == "kl" else "kl_se")
        if a is not None or b is not None:
            name = a if a is not None else b
            assert name is not None
            out = out.isel({MODEL_DIM: self._index(name)}, drop=True).rename({PAIR_DIM: MODEL_DIM})
            out.attrs["reference_model"] = name
        return out

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
            model (DataArray over ``model``). Neither: all pairs (for maps too large for a K × K
            array in memory, :meth:`all_pairs` writes them to a Zarr store).
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
            t-SNE perplexity (the paper uses 30); must be smaller than the number of models.
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
