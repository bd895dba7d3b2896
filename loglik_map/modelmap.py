"""``ModelMap``: the double-centred coordinate system in which squared distance is KL in bits/byte."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .centering import double_center_array
from .errors import LoglikMapError
from .kernels import PairwiseKL, pair_kl_se, pairs_kl_se, pairwise_kl_se
from .matrix import MODEL_DIM, TEXT_DIM, LogLikelihoodMatrix
from .results import KLEstimate
from .units import check_unit, nats_per_bit_per_byte

__all__ = ["ModelMap", "ModelProjection", "PAIR_DIM"]

#: Name of the second model dimension of all-pairs results.
PAIR_DIM = "model_"


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


class ModelMap:
    """The model map of a log-likelihood matrix (SPEC §2).

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

    __slots__ = ("_matrix", "_coords", "_text_means", "_backend", "_pairwise")

    def __init__(self, matrix: LogLikelihoodMatrix | xr.DataArray, *, backend: str | None = None) -> None:
        if isinstance(matrix, xr.DataArray):
            matrix = LogLikelihoodMatrix.from_dataarray(matrix)
        if not isinstance(matrix, LogLikelihoodMatrix):
            raise LoglikMapError(f"ModelMap needs a LogLikelihoodMatrix or DataArray, got {type(matrix).__name__}")
        self._matrix = matrix
        self._backend = backend
        parts = double_center_array(matrix.values)
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
    def coordinates(self) -> xr.DataArray:
        """Q̃, dims ``("model", "text")``: squared Euclidean distance between rows is KL in bits/byte."""
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

    def __repr__(self) -> str:
        return (
            f"<ModelMap: {len(self)} models × {self.n_texts} texts, B̄ = {self.mean_bytes:.1f} bytes; "
            f"KL in bits/byte = squared distance>"
        )

    # ------------------------------------------------------------------ helpers
    def _index(self, model: str) -> int:
        idx = np.flatnonzero(self.models == model)
        if idx.size == 0:
            raise LoglikMapError(f"model {model!r} is not on the map")
        return int(idx[0])

    def _scale(self, unit: str) -> float:
        check_unit(unit)
        return 1.0 if unit == "bits/byte" else nats_per_bit_per_byte(self.mean_bytes)

    def _all_pairs(self) -> PairwiseKL:
        if self._pairwise is None:
            self._pairwise = pairwise_kl_se(self._coords.values, backend=self._backend)
        return self._pairwise

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
        if a is not None and b is not None:
            i, j = self._index(a), self._index(b)
            if i == j:
                return 0.0
            kl, se = pair_kl_se(self._coords.values[i], self._coords.values[j])
            return scale * (kl if which == "kl" else se)
        full = getattr(self._all_pairs(), which) * scale
        out = self._pair_array(full, unit, which if which == "kl" else "kl_se")
        if a is not None or b is not None:
            name = a if a is not None else b
            out = out.isel({MODEL_DIM: self._index(name)}, drop=True).rename({PAIR_DIM: MODEL_DIM})
            out.attrs["reference_model"] = name
        return out

    # ------------------------------------------------------------------ KL and standard errors
    def kl(self, a: str | None = None, b: str | None = None, *, unit: str = "bits/byte") -> float | xr.DataArray:
        """KL divergence estimates (SPEC §2).

        Parameters
        ----------
        a, b : str, optional
            Model names. Both given: that pair's KL as a float. One given: KL from it to every
            model (DataArray over ``model``). Neither: all pairs.
        unit : {"bits/byte", "nats"}
            ``"nats"`` is nats per text (bits/byte × B̄ ln 2).

        Returns
        -------
        float or xarray.DataArray
            All pairs: dims ``("model", "model_")``, symmetric, exact zeros on the diagonal.
        """
        return self._pairwise_query(a, b, unit, "kl")

    def kl_se(self, a: str | None = None, b: str | None = None, *, unit: str = "bits/byte") -> float | xr.DataArray:
        """Standard errors of :meth:`kl` (SPEC §2, App. C); same arguments and shapes."""
        return self._pairwise_query(a, b, unit, "se")

    def compare(self, a: str, b: str, *, unit: str = "bits/byte") -> KLEstimate:
        """KL between two models with its SE, as a :class:`~loglik_map.KLEstimate`."""
        scale = self._scale(unit)
        i, j = self._index(a), self._index(b)
        kl, se = (0.0, 0.0) if i == j else pair_kl_se(self._coords.values[i], self._coords.values[j])
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
            kl, se = pairs_kl_se(self._coords.values, ia, ib, backend=self._backend)
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
        X = self._coords.values
        others = np.delete(np.arange(len(self)), i)
        kl, se = pairs_kl_se(X, np.full(others.size, i), others, backend=self._backend)
        order = np.argsort(kl, kind="stable")[:k]
        scale = self._scale(unit)
        return xr.DataArray(
            kl[order] * scale,
            dims=(MODEL_DIM,),
            coords={MODEL_DIM: self.models[others[order]], "kl_se": (MODEL_DIM, se[order] * scale)},
            attrs={"units": unit, "reference_model": model},
            name="kl",
        )

    def paired(self, a: str, b: str, c: str, *, unit: str = "bits/byte", method: str = "delta"):
        """Is ``a`` closer to ``b`` than to ``c``? ``KL(a, b) − KL(a, c)`` with an SE from the paired
        texts (:func:`loglik_map.paired.closer`; a :class:`~loglik_map.paired.KLDifference`)."""
        from .paired import closer

        return closer(self, a, b, c, unit=unit, method=method)

    def distinguishable_neighbours(self, model: str, k: int | None = None, **kwargs: Any) -> xr.Dataset:
        """Neighbours of ``model`` tested against the nearest one
        (:func:`loglik_map.paired.nearest_neighbours`, same keywords)."""
        from .paired import nearest_neighbours

        return nearest_neighbours(self, model, k, **kwargs)

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
        L = other.values
        Q = L - L.mean(axis=1, keepdims=True) - self._text_means[None, :]
        Q *= 1.0 / math.sqrt(2.0 * mine.n_texts * nats_per_bit_per_byte(mine.mean_bytes))
        coords = xr.DataArray(Q, dims=(MODEL_DIM, TEXT_DIM), coords=other.data.coords,
                              attrs=dict(self._coords.attrs), name="coordinates")
        Kn, K = other.n_models, len(self)
        both = np.vstack([Q, self._coords.values])
        rows_a = np.repeat(np.arange(Kn), K)
        rows_b = Kn + np.tile(np.arange(K), Kn)
        kl, se = pairs_kl_se(both, rows_a, rows_b, backend=self._backend)
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
        """Low-dimensional embedding of the map's rows (SPEC §7).

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
        attrs: dict[str, Any] = {"method": method}
        if method == "pca":
            U, S, Vt = np.linalg.svd(X, full_matrices=False)
            signs = np.sign(Vt[np.arange(Vt.shape[0]), np.argmax(np.abs(Vt), axis=1)])
            signs[signs == 0] = 1.0
            emb = (U * S * signs)[:, :n_components]
            total = float(np.sum(S**2))
            attrs["explained_variance_ratio"] = list(map(float, (S[:n_components] ** 2) / total)) if total > 0 else [0.0] * n_components
        elif method == "tsne":
            try:
                from sklearn.manifold import TSNE
            except ImportError:
                raise LoglikMapError("t-SNE needs scikit-learn: pip install 'loglik_map[plot]'") from None
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
