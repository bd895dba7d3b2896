"""``ModelMap``: the double-centred coordinate system in which squared distance is KL in bits/byte."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._deprecation import renamed_attribute
from .._labels import unknown_labels_error
from ._scoring_checks import row_conventions, scoring_conflict
from .centering import double_center_array
from ..errors import LoglikMapError, UnreliableEstimateWarning, require_extra
from .kernels import NonFiniteKLError, PairwiseKL, pair_kl_se, pairs_kl_se, pairwise_kl_se
from .largemap import BlockedPairsMixin
from .matrix import MODEL_DIM, TEXT_DIM, LogLikelihoodMatrix
from ..options import KERNEL_BACKENDS
from .results import KLEstimate
from ..units import check_unit, nats_per_bit_per_byte

__all__ = ["ModelMap", "ModelProjection", "PAIR_DIM", "MIN_TEXTS_FOR_SE"]

#: Name of the second model dimension of all-pairs results.
PAIR_DIM = "model_"

#: Fewest texts for a standard error to be read as usual. The SE is the plug-in standard error
#: of a mean of N per-text terms (SE = sd(t)/√N with t_k = N d_k²; docs: The method, "The standard error"), so kl ± z·SE is a
#: normal-approximation interval. The per-text terms are squares, right-skewed like a χ²₁
#: (skewness √8 ≈ 2.8), and the skewness of their mean is √8/√N, which falls below 0.5 only
#: from N = 32; with fewer texts the interval misses the truth far more often than it says (and
#: the SE is itself a noisy estimate). Below this a warning is given; with N ≤ 2 the SE is 0 by
#: construction and is refused, as is any KL with N = 1 (every centred row is then 0).
MIN_TEXTS_FOR_SE = 32


@dataclass(frozen=True)
class ModelProjection:
    """New models placed on an existing map (see :meth:`ModelMap.project`).

    Attributes
    ----------
    coordinates : xarray.DataArray
        Dims ``("model", "text")``: the new models' coordinates, centred with the map's own
        text means and scaled like the map (squared distance = KL in bits/byte).
    kl : xarray.DataArray
        Dims ``("model", "model_")``: KL from each new model (``model``) to each mapped model
        (``model_``), in ``unit``.
    kl_se : xarray.DataArray
        Standard errors of ``kl``, same dims and unit.
    unit : str
    """

    coordinates: xr.DataArray
    kl: xr.DataArray
    kl_se: xr.DataArray
    unit: str


def _model_coords(da: xr.DataArray) -> dict[str, Any]:
    return {n: c for n, c in da.coords.items() if c.dims == (MODEL_DIM,)}


class ModelMap(BlockedPairsMixin):
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

    __slots__ = ("_matrix", "_coords", "_text_means", "_backend", "_pairwise", "_allow")

    def __init__(self, matrix: LogLikelihoodMatrix | xr.DataArray, *, backend: str | None = None,
                 allow_truncated: bool = False, allow_mixed_scoring: bool = False) -> None:
        if backend is not None and backend not in KERNEL_BACKENDS:
            raise LoglikMapError(f"unknown backend {backend!r}; use one of {KERNEL_BACKENDS} (or None for the "
                                 "kernel_backend option); the kernels run on the CPU")
        if isinstance(matrix, xr.DataArray):
            matrix = LogLikelihoodMatrix.from_dataarray(matrix)
        if not isinstance(matrix, LogLikelihoodMatrix):
            raise LoglikMapError(f"ModelMap needs a LogLikelihoodMatrix or DataArray, got {type(matrix).__name__}")
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
        self._coords = coords.rename("coordinates")
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

    coordinates = renamed_attribute("points", "coordinates")

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

    def __repr__(self) -> str:
        return (
            f"<ModelMap: {len(self)} models × {self.n_texts} texts, B̄ = {self.mean_bytes:.1f} bytes; "
            f"KL in bits/byte = squared distance>"
        )

    # ------------------------------------------------------------------ helpers
    def _with_matrix(self, matrix: LogLikelihoodMatrix) -> "ModelMap":
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

    def _index(self, model: str) -> int:
        idx = np.flatnonzero(self.models == model)
        if idx.size == 0:
            raise unknown_labels_error([model], self.models, "model", "on the map")
        return int(idx[0])

    def _check_texts(self, with_se: bool) -> None:
        """Refuse KL from fewer than 2 texts and SE from fewer than 3; warn below :data:`MIN_TEXTS_FOR_SE`."""
        n = self.n_texts
        if n < 2:
            raise LoglikMapError(f"a KL estimate needs at least 2 texts and this map has {n}: with one text every "
                                 "model's centred log-likelihood is 0, so every KL would read 0. Score more texts")
        if not with_se:
            return
        if n < 3:
            raise LoglikMapError(f"a standard error needs at least 3 texts and this map has {n}: with 2 texts it is 0 "
                                 f"by construction. Score more texts (at least {MIN_TEXTS_FOR_SE} for an SE to be "
                                 "read as usual), or ask for kl() alone")
        if n < MIN_TEXTS_FOR_SE:
            warnings.warn(f"standard errors from only {n} texts: below {MIN_TEXTS_FOR_SE} texts the KL estimate's "
                          "sampling distribution is too skewed (and the SE itself too noisy) for KL ± z·SE to hold "
                          "its stated coverage; score more texts", UnreliableEstimateWarning, stacklevel=3)

    def _non_finite(self, err: NonFiniteKLError, a: Any, b: Any) -> LoglikMapError:
        return LoglikMapError(f"KL between models {str(a)!r} and {str(b)!r}: {err.reason}")

    def _scale(self, unit: str) -> float:
        check_unit(unit)
        return 1.0 if unit == "bits/byte" else nats_per_bit_per_byte(self.mean_bytes)

    def _all_pairs(self) -> PairwiseKL:
        if self._pairwise is None:
            try:
                self._pairwise = pairwise_kl_se(self._coords.values, backend=self._backend)
            except NonFiniteKLError as err:
                i, j = err.rows
                raise self._non_finite(err, self.models[i], self.models[j]) from None
        return self._pairwise

    def _pair(self, i: int, j: int) -> tuple[float, float]:
        if i == j:
            return 0.0, 0.0
        try:
            X = self._coords.data  # one row at a time from a dask-backed map
            return pair_kl_se(np.asarray(X[i]), np.asarray(X[j]))
        except NonFiniteKLError as err:
            raise self._non_finite(err, self.models[i], self.models[j]) from None

    def _pairs(self, X: np.ndarray, ia: np.ndarray, ib: np.ndarray, names: np.ndarray | None = None):
        try:
            return pairs_kl_se(X, ia, ib, backend=self._backend)
        except NonFiniteKLError as err:
            i, j = err.rows  # rows of X
            labels = self.models if names is None else np.concatenate([np.asarray(names, dtype=object), self.models])
            raise self._non_finite(err, labels[i], labels[j]) from None

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
            out = out.isel({MODEL_DIM: self._index(name)}, drop=True).rename({PAIR_DIM: MODEL_DIM})
            out.attrs["reference_model"] = name
        return out

    # ------------------------------------------------------------------ KL and standard errors
    def kl(self, a: str | None = None, b: str | None = None, *, unit: str = "bits/byte",
           store: str | PathLike[str] | None = None) -> float | xr.DataArray:
        """KL divergence estimates (:ref:`method-map`).

        Parameters
        ----------
        a, b : str, optional
            Model names. Both given: that pair's KL as a float. One given: KL from it to every
            model (DataArray over ``model``). Neither: all pairs.
        unit : {"bits/byte", "nats"}
            ``"nats"`` is nats per text (bits/byte × B̄ ln 2).
        store : path, optional
            All pairs only: compute them block by block into this Zarr store (resumable) and
            return the dask-backed array read from it; see :meth:`all_pairs`.

        Returns
        -------
        float or xarray.DataArray
            All pairs: dims ``("model", "model_")``, symmetric, exact zeros on the diagonal.
        """
        if store is not None:
            return self._stored_pairs(a, b, unit, store)["kl"]
        return self._pairwise_query(a, b, unit, "kl")

    def kl_se(self, a: str | None = None, b: str | None = None, *, unit: str = "bits/byte",
              store: str | PathLike[str] | None = None) -> float | xr.DataArray:
        """Standard errors of :meth:`kl` (:ref:`method-se`); same arguments and shapes.

        Refused with fewer than 3 texts (the SE is then 0 by construction); below
        :data:`MIN_TEXTS_FOR_SE` (32) texts it comes with an
        :class:`~loglik_map.UnreliableEstimateWarning`. The same holds for every method that
        returns an SE (:meth:`compare`, :meth:`pairs`, :meth:`nearest`, :meth:`project`).
        """
        if store is not None:
            return self._stored_pairs(a, b, unit, store)["kl_se"]
        return self._pairwise_query(a, b, unit, "se")

    def _stored_pairs(self, a: str | None, b: str | None, unit: str, store: str | PathLike[str]) -> xr.Dataset:
        if a is not None or b is not None:
            raise LoglikMapError("store= writes all pairs; leave out the model names (a, b), or leave out store= "
                                 "for one model's or one pair's KL")
        return self.all_pairs(store, unit=unit)

    def compare(self, a: str, b: str, *, unit: str = "bits/byte") -> KLEstimate:
        """KL between two models with its SE, as a :class:`~loglik_map.KLEstimate`."""
        scale = self._scale(unit)
        self._check_texts(with_se=True)
        i, j = self._index(a), self._index(b)
        kl, se = self._pair(i, j)
        return KLEstimate(model_a=a, model_b=b, kl=scale * kl, se=scale * se, unit=unit, n_texts=self.n_texts)

    def pairs(self, pairs: Iterable[Sequence[str]], *, unit: str = "bits/byte") -> pd.DataFrame:
        """KL and SE for a list of ``(a, b)`` model pairs.

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

        Returns
        -------
        xarray.DataArray
            KL over a ``model`` dimension of length ``min(k, K - 1)``, with the SE as a
            ``kl_se`` coordinate.
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
            coords={MODEL_DIM: self.models[others[order]], "kl_se": (MODEL_DIM, se[order] * scale)},
            attrs={"units": unit, "reference_model": model},
            name="kl",
        )

    # ------------------------------------------------------------------ new models
    def project(self, other: LogLikelihoodMatrix | xr.DataArray, *, unit: str = "bits/byte") -> ModelProjection:
        """Place new models (scored on the same texts) on this map without moving the mapped ones.

        Each new row is centred by its own mean over texts and by the map's :attr:`text_means`,
        then scaled like the map. KL to every mapped model equals the pairwise estimate.
        """
        if isinstance(other, xr.DataArray):
            other = LogLikelihoodMatrix.from_dataarray(other)
        if not isinstance(other, LogLikelihoodMatrix):
            raise LoglikMapError(f"project needs a LogLikelihoodMatrix, got {type(other).__name__}")
        mine = self._matrix
        if other.n_texts != mine.n_texts or np.any(other.texts != mine.texts):
            k = int(np.argmax(other.texts != mine.texts)) if other.n_texts == mine.n_texts else None
            where = f" (first difference at position {k})" if k is not None else ""
            raise LoglikMapError(f"the new models were scored on different texts than the map{where}")
        if np.any(other.n_bytes != mine.n_bytes):
            raise LoglikMapError("the new models' texts have different byte lengths than the map's")
        allow_truncated, allow_mixed = self._allow
        if not allow_truncated:
            other.check_not_truncated("project")
        if not allow_mixed:
            theirs, ours = set(row_conventions(other.data)) - {""}, set(row_conventions(mine.data)) - {""}
            if len(theirs | ours) > 1:
                raise LoglikMapError(f"project: the map's models were scored with convention {sorted(ours)} and the "
                                     f"new ones with {sorted(theirs)}; rescore them alike, or build the map with "
                                     "allow_mixed_scoring=True")
        self._check_texts(with_se=True)
        L = other.values
        Q = L - L.mean(axis=1, keepdims=True) - self._text_means[None, :]
        Q *= 1.0 / math.sqrt(2.0 * mine.n_texts * nats_per_bit_per_byte(mine.mean_bytes))
        coords = xr.DataArray(Q, dims=(MODEL_DIM, TEXT_DIM), coords=other.data.coords,
                              attrs=dict(self._coords.attrs), name="coordinates")
        Kn, K = other.n_models, len(self)
        both = np.vstack([Q, self._coords.values])
        rows_a = np.repeat(np.arange(Kn), K)
        rows_b = Kn + np.tile(np.arange(K), Kn)
        kl, se = self._pairs(both, rows_a, rows_b, names=other.models)
        scale = self._scale(unit)
        kw = dict(dims=(MODEL_DIM, PAIR_DIM), coords={MODEL_DIM: other.models, PAIR_DIM: self.models},
                  attrs={"units": unit})
        return ModelProjection(
            coordinates=coords,
            kl=xr.DataArray(kl.reshape(Kn, K) * scale, name="kl", **kw),
            kl_se=xr.DataArray(se.reshape(Kn, K) * scale, name="kl_se", **kw),
            unit=unit,
        )

    # ------------------------------------------------------------------ embeddings
    def embed(
        self,
        method: str = "pca",
        n_components: int = 2,
        *,
        perplexity: float = 30.0,
        random_state: int | np.random.Generator | None = 0,
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
        random_state : int or Generator, optional
            Seed for t-SNE.

        Returns
        -------
        xarray.DataArray
            Dims ``("model", "component")`` with the model coordinates. For PCA the attrs hold
            ``explained_variance_ratio``; signs are fixed so each component's largest loading
            is positive, making the result deterministic.
        """
        K = len(self)
        if not 1 <= n_components <= min(K, self.n_texts):
            raise LoglikMapError(f"n_components must be between 1 and {min(K, self.n_texts)}, got {n_components}")
        X = self._coords.values
        with np.errstate(over="ignore", invalid="ignore"):
            finite = bool(np.isfinite(np.einsum("ij,ij->", X, X)))
        if not finite:
            raise LoglikMapError("cannot embed: the map's squared coordinates overflow float64 (the log-likelihoods "
                                 "are far larger in magnitude than any real text's); check the matrix's values and units")
        attrs: dict[str, Any] = {"method": method}
        if method == "pca":
            U, S, Vt = np.linalg.svd(X, full_matrices=False)
            signs = np.sign(Vt[np.arange(Vt.shape[0]), np.argmax(np.abs(Vt), axis=1)])
            signs[signs == 0] = 1.0
            emb = (U * S * signs)[:, :n_components]
            total = float(np.sum(S**2))
            attrs["explained_variance_ratio"] = list(map(float, (S[:n_components] ** 2) / total)) if total > 0 else [0.0] * n_components
        elif method == "tsne":
            TSNE = require_extra("sklearn.manifold", "plot", "t-SNE").TSNE
            if not 0 < perplexity < K:
                raise LoglikMapError(f"perplexity must be in (0, {K}) for {K} models, got {perplexity}")
            seed = random_state if not isinstance(random_state, np.random.Generator) else int(random_state.integers(2**31))
            emb = TSNE(n_components=n_components, perplexity=perplexity, init="pca",
                       random_state=seed).fit_transform(X)
            attrs["perplexity"] = perplexity
        else:
            raise LoglikMapError(f"unknown embedding method {method!r}; use 'pca' or 'tsne'")
        coords = {**_model_coords(self._coords), "component": np.arange(1, n_components + 1)}
        return xr.DataArray(emb, dims=(MODEL_DIM, "component"), coords=coords, attrs=attrs, name="embedding")
