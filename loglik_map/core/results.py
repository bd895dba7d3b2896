"""Small frozen result objects with readable ``__str__``, in the style of ``scipy.stats``."""

from __future__ import annotations

from dataclasses import dataclass

from scipy import stats

from ..errors import LoglikMapError

__all__ = ["ConfidenceInterval", "KLEstimate"]


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


@dataclass(frozen=True)
class KLEstimate:
    """A KL divergence estimate between two models with its standard error.

    Attributes
    ----------
    model_a, model_b : str
        The two models.
    kl : float
        Estimated KL divergence (symmetric estimator, :ref:`method-map`), in ``unit``.
    se : float
        Standard error of ``kl`` (:ref:`method-se`), in ``unit``.
    unit : {"bits/byte", "nats"}
        ``"nats"`` means nats per text.
    n_texts : int
        Number of texts N the estimate averages over.
    """

    model_a: str
    model_b: str
    kl: float
    se: float
    unit: str
    n_texts: int

    def confidence_interval(self, confidence_level: float = 0.95) -> ConfidenceInterval:
        """Normal-approximation interval ``kl ± z·se``, its lower end clipped at 0 (KL ≥ 0).

        Parameters
        ----------
        confidence_level : float, default 0.95
            Coverage, in (0, 1).

        Returns
        -------
        ConfidenceInterval
        """
        if not 0.0 < confidence_level < 1.0:
            raise LoglikMapError(f"confidence_level must be in (0, 1), got {confidence_level}")
        z = float(stats.norm.ppf(0.5 + confidence_level / 2.0))
        return ConfidenceInterval(max(self.kl - z * self.se, 0.0), self.kl + z * self.se)

    def __str__(self) -> str:
        return (
            f"KL({self.model_a}, {self.model_b}) = {self.kl:.4g} ± {self.se:.2g} {self.unit} "
            f"(SE over N = {self.n_texts} texts)"
        )
