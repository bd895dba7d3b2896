"""The numerics floor beside a table of KLs: pairs whose KL + 2 SE lies below it say nothing about the models.

The floor is a KL in bits/byte — how far one model is from itself under other numerics (bf16
against fp32, another attention kernel, another batching), as :func:`loglik_map.numerics_floor`
measures it — or that function's result, whose ``floor`` attribute is the largest map-scale KL
over its variants.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .._units import nats_per_bit_per_byte
from ..errors import LoglikMapError, WrongTypeError

__all__ = ["SE_MULTIPLE", "below_floor", "flag_below_floor", "floor_bits_per_byte"]

#: A pair is "below the floor" when ``kl + SE_MULTIPLE · se < floor``.
SE_MULTIPLE = 2.0


def floor_bits_per_byte(floor: Any) -> float:
    """The floor as a number in bits/byte.

    Parameters
    ----------
    floor : float or xarray.Dataset
        A KL in bits/byte, or a :func:`~loglik_map.numerics_floor` result (its ``floor``
        attribute).

    Returns
    -------
    float
        Bits/byte, finite and ≥ 0.
    """
    if hasattr(floor, "attrs") and hasattr(floor, "data_vars"):
        if "floor" not in floor.attrs:
            raise LoglikMapError("this Dataset has no 'floor' attribute; give a numerics_floor() result or a number "
                                 "in bits/byte")
        if floor.attrs.get("floor_units", "bits/byte") != "bits/byte":
            raise LoglikMapError(f"the floor is in {floor.attrs['floor_units']!r}; give it in bits/byte")
        floor = floor.attrs["floor"]
    if isinstance(floor, bool) or not isinstance(floor, (int, float, np.floating, np.integer)):
        raise WrongTypeError(f"floor must be a KL in bits/byte or a numerics_floor() result, got {type(floor).__name__}")
    value = float(floor)
    if not math.isfinite(value) or value < 0:
        raise LoglikMapError(f"floor must be a finite KL ≥ 0 in bits/byte, got {value}")
    return value


def below_floor(kl: Any, se: Any, floor: float) -> np.ndarray:
    """``kl + 2·se < floor`` elementwise (all in one unit).

    Parameters
    ----------
    kl, se : array_like
        KL estimates and their SEs.
    floor : float
        The floor, in the unit of ``kl``.

    Returns
    -------
    numpy.ndarray of bool
    """
    return np.asarray(kl, dtype=float) + SE_MULTIPLE * np.asarray(se, dtype=float) < floor


def flag_below_floor(table: pd.DataFrame, floor: Any, unit: str, mean_bytes: float) -> pd.DataFrame:
    """Add ``floor`` (in ``unit``) and ``below_floor`` columns to a table with ``kl`` and ``se``.

    Parameters
    ----------
    table : pandas.DataFrame
        Columns ``kl`` and ``se`` in ``unit``.
    floor : float or xarray.Dataset
        As :func:`floor_bits_per_byte` takes it.
    unit : {"bits/byte", "nats"}
        Unit of the table (``"nats"``: the floor is converted with the map's B̄).
    mean_bytes : float
        B̄ of the map, in bytes.

    Returns
    -------
    pandas.DataFrame
        The same table (modified in place) with the two columns; ``attrs["floor"]`` in bits/byte.
    """
    bits = floor_bits_per_byte(floor)
    value = bits if unit == "bits/byte" else bits * nats_per_bit_per_byte(mean_bytes)
    table["floor"] = value
    table["below_floor"] = below_floor(table["kl"].to_numpy(), table["se"].to_numpy(), value)
    table.attrs["floor"] = bits
    return table
