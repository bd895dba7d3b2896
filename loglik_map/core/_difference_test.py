"""The normal-approximation test of a paired difference: ``z``, its p-value and interval (shared by the result classes)."""

from __future__ import annotations

import math

from scipy import stats

from ..errors import LoglikMapError
from ._results import ConfidenceInterval

__all__ = ["DifferenceTest"]


class DifferenceTest:
    """Mixin of frozen results with a ``difference`` and its ``se`` (one unit): z, two-sided p, interval."""

    __slots__ = ()
    difference: float
    se: float

    @property
    def z(self) -> float:
        """``difference / se`` (±inf for a nonzero difference with zero SE, NaN for 0 / 0)."""
        if self.se > 0:
            return self.difference / self.se
        return math.nan if self.difference == 0 else math.copysign(math.inf, self.difference)

    @property
    def p_value(self) -> float:
        """Two-sided p-value of "the difference is 0" (normal approximation)."""
        z = self.z
        return math.nan if math.isnan(z) else float(2 * stats.norm.sf(abs(z)))

    def confidence_interval(self, confidence_level: float = 0.95) -> ConfidenceInterval:
        """Normal-approximation interval ``difference ± z·se`` (not clipped: a difference may be negative).

        Parameters
        ----------
        confidence_level : float, default 0.95
            Coverage, in (0, 1).

        Returns
        -------
        ConfidenceInterval
            In the unit of the difference.
        """
        if not 0.0 < confidence_level < 1.0:
            raise LoglikMapError(f"confidence_level must be in (0, 1), got {confidence_level}")
        q = float(stats.norm.ppf(0.5 + confidence_level / 2))
        return ConfidenceInterval(self.difference - q * self.se, self.difference + q * self.se)
