"""Units: log-likelihoods are in nats per text; KL divergences in nats per text or bits/byte.

A KL divergence between distributions over whole texts, in nats, becomes bits per byte
after division by ``B̄ ln 2``, where ``B̄`` is the mean UTF-8 length of the texts in bytes
(:ref:`method-map`).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import LoglikMapError

__all__ = ["LN2", "UNITS", "check_unit", "nats_per_bit_per_byte"]

LN2 = math.log(2.0)

UNITS: tuple[str, ...] = ("bits/byte", "nats")


def check_unit(unit: str) -> str:
    """Return ``unit`` if it is a supported KL unit, otherwise raise :class:`LoglikMapError`."""
    if unit not in UNITS:
        raise LoglikMapError(f"unknown unit {unit!r}; use one of {', '.join(map(repr, UNITS))}")
    return unit


def nats_per_bit_per_byte(mean_bytes: float) -> float:
    """Number of nats (per text) in one bit/byte, ``B̄ ln 2``.

    Parameters
    ----------
    mean_bytes : float
        Mean UTF-8 length ``B̄`` of the texts, in bytes.
    """
    mean_bytes = float(mean_bytes)
    if not np.isfinite(mean_bytes) or mean_bytes <= 0:
        raise LoglikMapError(f"mean byte length must be positive and finite, got {mean_bytes}")
    return mean_bytes * LN2
