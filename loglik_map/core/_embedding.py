"""Low-dimensional embeddings of a model map's points: PCA by SVD, or t-SNE (scikit-learn)."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from ..errors import LoglikMapError, require_extra
from ._validation import MODEL_DIM

__all__ = ["embed_points"]


def embed_points(points: xr.DataArray, method: str = "pca", n_components: int = 2, *, perplexity: float = 30.0,
                 seed: int | np.random.Generator | None = 0) -> xr.DataArray:
    """Embed the rows of ``points`` (the work of :meth:`ModelMap.embed <loglik_map.ModelMap.embed>`).

    Parameters
    ----------
    points : xarray.DataArray
        Dims ``("model", "text")``, already centred (:attr:`ModelMap.points <loglik_map.ModelMap.points>`).
    method : {"pca", "tsne"}
        PCA by SVD, or t-SNE initialised by PCA.
    n_components : int
        Output dimension.
    perplexity : float
        t-SNE perplexity, below the number of models.
    seed : int or numpy.random.Generator, optional
        Seed for t-SNE.

    Returns
    -------
    xarray.DataArray
        Dims ``("model", "component")`` with the model coordinates.
    """
    K, N = points.shape
    if not 1 <= n_components <= min(K, N):
        raise LoglikMapError(f"n_components must be between 1 and {min(K, N)}, got {n_components}")
    X = points.values
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
        ratio = (S[:n_components] ** 2) / total if total > 0 else np.zeros(n_components)
        attrs["explained_variance_ratio"] = list(map(float, ratio))
    elif method == "tsne":
        TSNE = require_extra("sklearn.manifold", "plot", "t-SNE").TSNE
        if not 0 < perplexity < K:
            raise LoglikMapError(f"perplexity must be in (0, {K}) for {K} models, got {perplexity}")
        sk_seed = seed if not isinstance(seed, np.random.Generator) else int(seed.integers(2**31))
        emb = TSNE(n_components=n_components, perplexity=perplexity, init="pca",
                   random_state=sk_seed).fit_transform(X)
        attrs["perplexity"] = perplexity
    else:
        raise LoglikMapError(f"unknown embedding method {method!r}; use 'pca' or 'tsne'")
    coords = {str(n): c for n, c in points.coords.items() if c.dims == (MODEL_DIM,)}
    coords["component"] = np.arange(1, n_components + 1)
    return xr.DataArray(emb, dims=(MODEL_DIM, "component"), coords=coords, attrs=attrs, name="embedding")
