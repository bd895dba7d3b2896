"""Units: log-likelihoods are in nats per text; KL divergences in nats per text or bits/byte.

A KL divergence between distributions over whole texts, in nats, becomes bits per byte
after division by ``B̄ ln 2``, where ``B̄`` is the mean UTF-8 length of the texts in bytes
(:ref:`method-map`).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import LoglikMapError

__all__ = ["LN2", "UNITS", "check_unit", "loglik_units_factor", "nats_per_bit_per_byte"]

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


_LOGLIK_NATS = {"nats", "nat", "nats per text"}
_LOGLIK_BITS = {"bits", "bit", "bits per text"}


def loglik_units_factor(units: object) -> float:
    """The factor that turns log-likelihoods in ``units`` into nats: 1 for nats, ln 2 for bits.

    Parameters
    ----------
    units : str
        ``"nats"`` or ``"bits"`` (per text; case and the words "per text" are ignored).

    Returns
    -------
    float

    Raises
    ------
    LoglikMapError
        For any other units (the message says what to do).
    """
    key = units.strip().lower() if isinstance(units, str) else None
    if key in _LOGLIK_NATS:
        return 1.0
    if key in _LOGLIK_BITS:
        return LN2
    raise LoglikMapError(f"log-likelihoods in units {units!r} cannot be used; loglik_map reads 'nats' or 'bits' "
                         "(per text). Convert the values to nats per text and set units='nats'")
