"""The multiscale-bootstrap fit of pvclust (``msfit``): AU, BP and SI p-values from bootstrap probabilities at several scales.

For a hypothesis (a clade) the bootstrap probability ``BP(r)`` is measured at scales
``r = n'/n`` (replicates of ``n'`` texts drawn from ``n``). With ``z(r) = Φ⁻¹(1 − BP(r))``, the
scaling law of Shimodaira (2002, 2004) is ``z(r) = v·√r + c/√r``: ``v`` is the signed distance
of the observation from the hypothesis' boundary, ``c`` the boundary's curvature. They are
fitted by weighted least squares with the binomial variance of each ``BP(r)`` (delta method),
then ``AU = 1 − Φ(v − c)`` (the approximately unbiased p-value, extrapolated to ``r = −1``),
``BP = 1 − Φ(v + c)`` (the ordinary bootstrap probability, interpolated to ``r = 1``) and
``SI = 1 − Φ(c − v)/Φ(−c)`` clipped to [0, 1] (the selective-inference p-value of Terada and
Shimodaira 2017), with delta-method standard errors. This is pvclust 2.2's ``msfit`` line by
line (Suzuki and Shimodaira 2006).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["DEFAULT_SCALES", "MSFIT_COLUMNS", "multiscale_fit"]

#: pvclust's default scales ``r = seq(0.5, 1.4, by = 0.1)``.
DEFAULT_SCALES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4)

#: Bootstrap probabilities within ``EPS`` of 0 or 1 carry no information on ``z`` and are left out.
EPS = 1e-3
#: Fewest scales with a usable BP for a fit (two coefficients plus one degree of freedom).
MIN_SCALES = 3
#: The columns :func:`multiscale_fit` returns.
MSFIT_COLUMNS = ("au", "bp", "si", "au_se", "bp_se", "si_se", "v", "c", "pchi", "n_scales")


def _fit_one(bp: np.ndarray, r: np.ndarray, n_boot: np.ndarray) -> tuple[float, ...]:
    """pvclust's ``msfit`` for one hypothesis; returns the values of :data:`MSFIT_COLUMNS`."""
    use = (bp > EPS) & (bp < 1.0 - EPS)
    n_use = int(use.sum())
    if n_use < MIN_SCALES:  # all p-values 0 or 1 by the mean BP, no standard error, no fit
        p = 0.0 if bp.mean() < 0.5 else 1.0
        return (p, p, p, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, n_use)
    bp, r, n_boot = bp[use], r[use], n_boot[use]
    zz = -stats.norm.ppf(bp)
    vv = (1.0 - bp) * bp / (stats.norm.pdf(zz) ** 2 * n_boot)
    X = np.column_stack([np.sqrt(r), 1.0 / np.sqrt(r)])
    w = 1.0 / vv
    XtWX = X.T @ (X * w[:, None])
    coef = np.linalg.solve(XtWX, X.T @ (w * zz))
    v, c = float(coef[0]), float(coef[1])
    z_au, z_bp = v - c, v + c
    d0 = float(stats.norm.cdf(-c))
    p_iau = float(stats.norm.cdf(z_au))
    si = min(max(1.0 - p_iau / d0, 0.0), 1.0) if d0 > 0 else 0.0
    V = np.linalg.inv(XtWX)
    h_au, h_bp = np.array([1.0, -1.0]), np.array([1.0, 1.0])
    if 0.0 < si < 1.0:
        d1 = stats.norm.pdf(z_au) / d0
        d2 = p_iau * stats.norm.pdf(c) / d0**2
        h_si = np.array([d1, -d1 + d2])
        si_se = float(np.sqrt(h_si @ V @ h_si))
    else:
        si_se = 0.0
    au_se = float(stats.norm.pdf(z_au) * np.sqrt(h_au @ V @ h_au))
    bp_se = float(stats.norm.pdf(z_bp) * np.sqrt(h_bp @ V @ h_bp))
    rss = float(np.sum((zz - X @ coef) ** 2 / vv))
    df = n_use - 2
    pchi = float(stats.chi2.sf(rss, df)) if df > 0 else 1.0
    return (float(stats.norm.cdf(-z_au)), float(stats.norm.cdf(-z_bp)), si, au_se, bp_se, si_se, v, c, pchi, n_use)


def multiscale_fit(counts: np.ndarray, scales: np.ndarray, n_boot: int | np.ndarray) -> pd.DataFrame:
    """AU, BP and SI p-values of hypotheses from their bootstrap counts at several scales (pvclust's ``msfit``).

    Parameters
    ----------
    counts : array_like, shape (H, S)
        How many of the replicates at each of the S scales support each of the H hypotheses.
    scales : array_like, shape (S,)
        The scales ``r = n'/n`` (replicate size over data size), all > 0.
    n_boot : int or array_like of shape (S,)
        Replicates per scale.

    Returns
    -------
    pandas.DataFrame
        One row per hypothesis with the columns of :data:`MSFIT_COLUMNS`: ``au``, ``bp``, ``si``
        (p-values), ``au_se``, ``bp_se``, ``si_se`` (their standard errors: Monte-Carlo error of
        the bootstrap, by the delta method), ``v`` (signed distance), ``c`` (curvature),
        ``pchi`` (p-value of the χ² goodness of fit of ``z(r) = v√r + c/√r``; small values mean
        the scaling law does not hold and AU is unreliable) and ``n_scales`` (scales with
        ``0.001 < BP < 0.999`` used in the fit; with fewer than 3 every p-value is 0 or 1 by the
        mean BP and the standard errors are 0, as pvclust does).

    References
    ----------
    .. [1] Shimodaira, H. (2002). An approximately unbiased test of phylogenetic tree selection.
       Systematic Biology 51(3), 492–508.
    .. [2] Shimodaira, H. (2004). Approximately unbiased tests of regions using multistep-multiscale
       bootstrap resampling. Annals of Statistics 32(6), 2616–2641.
    .. [3] Suzuki, R. and Shimodaira, H. (2006). Pvclust: an R package for assessing the uncertainty
       in hierarchical clustering. Bioinformatics 22(12), 1540–1542.
    .. [4] Terada, Y. and Shimodaira, H. (2017). Selective inference for the problem of regions via
       multiscale bootstrap. arXiv:1711.00949.

    Examples
    --------
    Counts that follow the scaling law with ``v = −1``, ``c = 0.5`` give back ``AU = 1 − Φ(−1.5)``
    and ``BP = 1 − Φ(−0.5)``:

    >>> import numpy as np
    >>> from scipy import stats
    >>> r = np.linspace(0.5, 1.4, 10)
    >>> counts = 1000 * stats.norm.sf(-np.sqrt(r) + 0.5 / np.sqrt(r))
    >>> fit = multiscale_fit(counts[None, :], r, 1000)
    >>> print(fit[["au", "bp", "v", "c"]].round(4).to_string(index=False))
        au     bp    v   c
    0.9332 0.6915 -1.0 0.5
    """
    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    r = np.asarray(scales, dtype=np.float64)
    n = np.broadcast_to(np.asarray(n_boot, dtype=np.float64), r.shape)
    rows = [_fit_one(row / n, r, n) for row in counts]
    out = pd.DataFrame(rows, columns=list(MSFIT_COLUMNS))
    return out.astype({"n_scales": np.int64})
