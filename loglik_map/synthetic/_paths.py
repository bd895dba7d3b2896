"""Synthetic paths with known exponents: fractional Brownian motion and Takagi–Landsberg maps (:ref:`method-trajectories`).

They are ground truth for the diffusion-exponent and Hölder estimators: an fBm with Hurst H
has ``E‖B_t − B_s‖² ∝ |t − s|^{2H}`` exactly, and pushing a path through an α-Hölder
Takagi–Landsberg map multiplies its exponent by α.
"""

from __future__ import annotations

import numpy as np

from ..errors import LoglikMapError

__all__ = ["TakagiLandsberg", "fbm", "fractional_gaussian_noise", "takagi_landsberg"]


def _fgn_autocovariance(n: int, hurst: float) -> np.ndarray:
    k = np.arange(n + 1, dtype=float)
    h2 = 2.0 * hurst
    return 0.5 * (np.abs(k + 1) ** h2 - 2 * np.abs(k) ** h2 + np.abs(k - 1) ** h2)


def fractional_gaussian_noise(n: int, hurst: float, dim: int = 1, *,
                              seed: int | np.random.Generator | None = None) -> np.ndarray:
    """Exact fractional Gaussian noise (unit variance).

    Davies–Harte circulant embedding, exact for 0 < H < 1, where the embedding is non-negative
    definite (Craigmile 2003).

    Parameters
    ----------
    n : int
        Number of increments.
    hurst : float
        Hurst exponent in (0, 1); 0.5 is white noise.
    dim : int, default 1
        Number of independent noises (columns).
    seed : int or numpy.random.Generator, optional
        Seed or generator (:func:`numpy.random.default_rng`).

    Returns
    -------
    numpy.ndarray
        Shape ``(n, dim)``.
    """
    if not 0.0 < hurst < 1.0:
        raise LoglikMapError(f"hurst must be in (0, 1), got {hurst}")
    if n < 1 or dim < 1:
        raise LoglikMapError("n and dim must be positive")
    rng = np.random.default_rng(seed)
    gamma = _fgn_autocovariance(n, hurst)
    c = np.concatenate([gamma[: n + 1], gamma[n - 1 : 0 : -1]])  # length 2n
    lam = np.clip(np.fft.fft(c).real, 0.0, None)  # ≥ 0 for 0 < H < 1 up to rounding
    m = c.size
    out = np.empty((n, dim))
    for d in range(0, dim, 2):  # real and imaginary parts are two independent samples
        z = rng.standard_normal(m) + 1j * rng.standard_normal(m)
        x = np.fft.fft(np.sqrt(lam / m) * z)
        out[:, d] = x.real[:n]
        if d + 1 < dim:
            out[:, d + 1] = x.imag[:n]
    return out


def fbm(n: int, hurst: float, dim: int = 1, *, seed: int | np.random.Generator | None = None) -> np.ndarray:
    """Exact fractional Brownian motion at times 0, 1, …, n, shape (n + 1, dim); ``B(0) = 0``.

    Each of the ``dim`` coordinates is an independent fBm with ``E[(B_t − B_s)²] = |t − s|^{2H}``,
    so ``E‖B_t − B_s‖² = dim · |t − s|^{2H}``: diffusion exponent ``c = 2H``.

    Parameters
    ----------
    n : int
        Number of steps.
    hurst : float
        Hurst exponent in (0, 1); 0.5 is Brownian motion.
    dim : int
        Dimension of the path.
    seed : int or numpy.random.Generator, optional
        Seed or generator (:func:`numpy.random.default_rng`).

    Returns
    -------
    numpy.ndarray
        Shape ``(n + 1, dim)``, first row 0.
    """
    noise = fractional_gaussian_noise(n, hurst, dim, seed=seed)
    return np.vstack([np.zeros((1, dim)), np.cumsum(noise, axis=0)])


class TakagiLandsberg:
    """A generalized Takagi–Landsberg map ``R^d → R^m`` (App. B).

    ``f_j(W) = Σ_{k=1}^{K} a_{jk} λ^{−kα} S(λ^k b_{jk}ᵀ W)``, ``S(x) = dist(x, ℤ)``,

    α-Hölder for 0 < α < 1 and λ > 1, with ``a_{jk}`` uniform in [0.5, 1.5] and unit vectors
    ``b_{jk}`` drawn at random.

    Parameters
    ----------
    dim_in, dim_out : int
        Dimensions of the points mapped and of their images.
    alpha : float
        Hölder exponent in (0, 1).
    lam : float
        Scale factor λ > 1 between terms.
    n_terms : int
        Number of terms K; the map is α-Hölder down to scales ~λ^{-K}.
    seed : int or numpy.random.Generator, optional
        Seed or generator for ``a`` and ``b``.
    """

    def __init__(self, dim_in: int, dim_out: int, alpha: float, *, lam: float = 2.0, n_terms: int = 24,
                 seed: int | np.random.Generator | None = None) -> None:
        if not 0.0 < alpha < 1.0:
            raise LoglikMapError(f"alpha must be in (0, 1), got {alpha}")
        if lam <= 1.0:
            raise LoglikMapError(f"lam must exceed 1, got {lam}")
        rng = np.random.default_rng(seed)
        b = rng.standard_normal((n_terms, dim_out, dim_in))
        self.b = b / np.linalg.norm(b, axis=2, keepdims=True)
        self.a = rng.uniform(0.5, 1.5, size=(n_terms, dim_out))
        self.alpha, self.lam, self.n_terms = float(alpha), float(lam), int(n_terms)
        self.dim_in, self.dim_out = int(dim_in), int(dim_out)

    def __call__(self, W: np.ndarray) -> np.ndarray:
        """Apply to points ``W`` of shape (n, dim_in); returns (n, dim_out)."""
        W = np.atleast_2d(np.asarray(W, dtype=float))
        if W.shape[1] != self.dim_in:
            raise LoglikMapError(f"points must have {self.dim_in} coordinates, got {W.shape[1]}")
        out = np.zeros((W.shape[0], self.dim_out))
        for k in range(1, self.n_terms + 1):
            x = self.lam**k * np.einsum("mi,ni->nm", self.b[k - 1], W)
            s = np.abs(x - np.round(x))
            out += self.a[k - 1] * self.lam ** (-k * self.alpha) * s
        return out


def takagi_landsberg(W: np.ndarray, alpha: float, dim_out: int = 64, *, lam: float = 2.0, n_terms: int = 24,
                     seed: int | np.random.Generator | None = None) -> np.ndarray:
    """Push points through a random α-Hölder :class:`TakagiLandsberg` map.

    Parameters
    ----------
    W : array_like
        Points, shape ``(n, d)`` (e.g. a path from :func:`fbm`).
    alpha : float
        Hölder exponent in (0, 1).
    dim_out : int, default 64
        Dimension of the images (e.g. one column per text).
    lam : float, default 2.0
        Scale factor λ > 1 between terms.
    n_terms : int, default 24
        Number of terms K.
    seed : int or numpy.random.Generator, optional
        Seed or generator of the random map.

    Returns
    -------
    numpy.ndarray
        Shape ``(n, dim_out)``.
    """
    W = np.atleast_2d(np.asarray(W, dtype=float))
    return TakagiLandsberg(W.shape[1], dim_out, alpha, lam=lam, n_terms=n_terms, seed=seed)(W)
