"""Small frozen result objects with readable ``__str__``, in the style of ``scipy.stats``."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._repr import ReprMixin, Summary
from ..errors import LoglikMapError

__all__ = ["MIN_TEXTS_FOR_SE", "ConfidenceInterval", "KLEstimate", "TidyResult", "normal_interval"]

#: Fewest texts for a standard error to be read as usual. The SE is the plug-in standard error
#: of a mean of N per-text terms (SE = sd(t)/√N with t_k = N d_k²; docs: The method, "The standard error"), so kl ± z·SE is a
#: normal-approximation interval. The per-text terms are squares, right-skewed like a χ²₁
#: (skewness √8 ≈ 2.8), and the skewness of their mean is √8/√N, which falls below 0.5 only
#: from N = 32; with fewer texts the interval misses the truth far more often than it says (and
#: the SE is itself a noisy estimate). Below this a warning is given; with N ≤ 2 the SE is 0 by
#: construction and is refused, as is any KL with N = 1 (every centred row is then 0).
MIN_TEXTS_FOR_SE = 32


def normal_interval(kl: Any, se: Any, confidence_level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Normal-approximation intervals ``kl ± z·se`` with the lower ends clipped at 0 (KL ≥ 0).

    Parameters
    ----------
    kl, se : array_like
        Estimates and their standard errors, in one unit (bits/byte or nats); broadcast together.
    confidence_level : float
        In (0, 1), e.g. 0.95.

    Returns
    -------
    low, high : numpy.ndarray
        The interval ends, in the unit of ``kl``.
    """
    if not 0.0 < confidence_level < 1.0:
        raise LoglikMapError(f"confidence_level must be in (0, 1), e.g. 0.95, got {confidence_level}")
    z = float(stats.norm.ppf(0.5 + confidence_level / 2.0))
    kl, se = np.asarray(kl, dtype=float), np.asarray(se, dtype=float)
    return np.maximum(kl - z * se, 0.0), kl + z * se


class TidyResult:
    """Mixin of the frozen result dataclasses: ``to_dict()`` and a one-row ``to_dataframe()``."""

    __slots__ = ()

    def _extra_fields(self) -> dict[str, Any]:
        """Derived quantities added to the row (intervals, …); none by default."""
        return {}

    def to_dict(self) -> dict[str, Any]:
        """The fields (and derived quantities such as the 95 % interval) as a plain dict.

        Returns
        -------
        dict
            Field name → value, then the derived quantities.
        """
        return {**asdict(self), **self._extra_fields()}  # type: ignore[call-overload]

    def to_dataframe(self) -> pd.DataFrame:
        """One row: the fields of :meth:`to_dict` as columns (stack several with :func:`pandas.concat`).

        Returns
        -------
        pandas.DataFrame
            A single row whose columns are the keys of :meth:`to_dict`.
        """
        return pd.DataFrame([self.to_dict()])


@dataclass(frozen=True)
class ConfidenceInterval:
    """A confidence interval ``[low, high]``.

    Attributes
    ----------
    low, high : float
        The interval's ends, in the unit of the estimate.
    """

    low: float
    high: float

    def __str__(self) -> str:
        return f"[{self.low:.4g}, {self.high:.4g}]"


@dataclass(frozen=True, repr=False)
class KLEstimate(TidyResult, ReprMixin):
    """A KL divergence estimate between two models with its standard error.

    Attributes
    ----------
    model_a, model_b : str
        The two models.
    kl : float
        Estimated KL divergence (symmetric estimator, :ref:`method-map`), in ``unit``.
    se : float
        Standard error of ``kl`` over the sampling of texts (:ref:`method-se`), in ``unit``.
    unit : {"bits/byte", "nats"}
        ``"nats"`` means nats per text.
    n_texts : int
        Number of texts N the estimate averages over.

    Notes
    -----
    ``se`` and :meth:`confidence_interval` are about the *estimator's target* — the value the
    estimate would take on the whole population of texts the N were drawn from — not the exact
    KL divergence: the estimate's approximation error (:doc:`/exact_kl`) is not in them.
    """

    model_a: str
    model_b: str
    kl: float
    se: float
    unit: str
    n_texts: int

    def confidence_interval(self, confidence_level: float = 0.95) -> ConfidenceInterval:
        """Normal-approximation interval ``kl ± z·se``, its lower end clipped at 0 (KL ≥ 0).

        It covers the estimator's target on the population of texts (text-sampling uncertainty
        only), not the exact KL divergence.

        Parameters
        ----------
        confidence_level : float, default 0.95
            Coverage, in (0, 1).

        Returns
        -------
        ConfidenceInterval
            ``kl ± z·se``, the lower end clipped at 0.
        """
        low, high = normal_interval(self.kl, self.se, confidence_level)
        return ConfidenceInterval(float(low), float(high))

    def _extra_fields(self) -> dict[str, Any]:
        ci = self.confidence_interval(0.95)
        return {"ci_low": ci.low, "ci_high": ci.high, "confidence_level": 0.95}

    def _summary(self) -> Summary:
        ci = self.confidence_interval(0.95)
        few = self.n_texts < MIN_TEXTS_FOR_SE
        return Summary("KLEstimate", (), self.unit, (
            ("KL", f"KL({self.model_a}, {self.model_b}) = {self.kl:.4g} ± {self.se:.2g} (SE)"),
            ("95 % interval", f"{ci} (normal approximation, lower end clipped at 0)"),
            ("texts", f"N = {self.n_texts}" + (f" (< {MIN_TEXTS_FOR_SE}: the interval is unreliable)" if few else "")),
        ))

    def __str__(self) -> str:
        return (
            f"KL({self.model_a}, {self.model_b}) = {self.kl:.4g} ± {self.se:.2g} {self.unit} "
            f"(SE over N = {self.n_texts} texts)"
        )
