"""Stacking the models of several matrices scored on the same texts (not public API).

The stacking itself is :func:`xarray.concat` along ``model`` with ``join="exact"``; what is
written here is the validation around it (the same texts, no model twice, rows scored alike,
clipped together) and the filling of coordinates that only some matrices have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import LoglikMapError
from ._scoring_checks import scoring_conflict
from ._validation import MODEL_DIM, RESERVED, TEXT_DIM

if TYPE_CHECKING:
    from ._matrix import LogLikelihoodMatrix

__all__ = ["concat_dataarrays"]


def _check_same_texts(matrices: Sequence[LogLikelihoodMatrix]) -> None:
    first = matrices[0]
    for i, m in enumerate(matrices[1:], start=1):
        if m.n_texts != first.n_texts:
            raise LoglikMapError(f"matrix {i} has {m.n_texts} texts, matrix 0 has {first.n_texts}")
        diff = np.flatnonzero(m.texts != first.texts)
        if diff.size:
            k = diff[0]
            raise LoglikMapError(f"text ids differ: matrix {i} has {m.texts[k]!r} at position {k}, matrix 0 has "
                                 f"{first.texts[k]!r}")
        diff = np.flatnonzero(m.n_bytes != first.n_bytes)
        if diff.size:
            k = diff[0]
            raise LoglikMapError(f"byte lengths differ for text {first.texts[k]!r}: {m.n_bytes[k]} in matrix {i}, "
                                 f"{first.n_bytes[k]} in matrix 0")


def _check_unique_models(matrices: Sequence[LogLikelihoodMatrix]) -> None:
    names = pd.Series(np.concatenate([m.models for m in matrices]))
    origin = np.repeat(np.arange(len(matrices)), [m.n_models for m in matrices])
    repeated = np.flatnonzero(names.duplicated().to_numpy())
    if repeated.size:
        name = names.iloc[repeated[0]]
        first = int(np.flatnonzero(names.to_numpy() == name)[0])
        raise LoglikMapError(f"model {name!r} appears in matrix {origin[first]} and matrix {origin[repeated[0]]}")


def _check_clipped_together(matrices: Sequence[LogLikelihoodMatrix]) -> None:
    """Refuse to stack clipped matrices unless all carry the same clip (pieces of one clipped matrix)."""
    states = [(m.attrs.get("clip_lower_quantile"), m.attrs.get("clip_value_nats")) for m in matrices]
    if all(q is None for q, _ in states) or len(set(states)) == 1:
        return
    i = next(k for k, st in enumerate(states) if st != states[0])
    describe = ["not clipped" if q is None else f"clipped at the {q:g} quantile ({v:.6g} nats)" for q, v in states]
    raise LoglikMapError(f"matrix 0 is {describe[0]} and matrix {i} is {describe[i]}; concatenate the raw "
                         "matrices, then clip the result once")


def _coord_names(matrices: Sequence[LogLikelihoodMatrix], dims: tuple[str, ...]) -> list[str]:
    """Names of the coordinates over ``dims`` in any matrix, in order of first appearance."""
    names = [str(n) for m in matrices for n, c in m.data.coords.items()
             if set(c.dims) == set(dims) and c.ndim == len(dims) and n not in RESERVED]
    return list(pd.unique(pd.Series(names, dtype=object)))


def _text_coords(matrices: Sequence[LogLikelihoodMatrix]) -> dict[str, xr.DataArray]:
    """Every per-text coordinate, checked to agree between the matrices that have it."""
    out: dict[str, Any] = {}
    where: dict[str, int] = {}
    for i, m in enumerate(matrices):
        for name in _coord_names([m], (TEXT_DIM,)):
            coord = m.data[name]
            if name in out and not np.array_equal(out[name].values, coord.values):
                raise LoglikMapError(f"text coordinate {name!r} differs between matrix {where[name]} and matrix {i}")
            out.setdefault(name, coord.variable)
            where.setdefault(name, i)
    return out


def _filled(da: xr.DataArray, model_names: list[str], cell_names: list[str],
            text_coords: Mapping[str, Any], string_coords: set[str]) -> xr.DataArray:
    """``da`` with every coordinate of the union, missing ones filled (NaN, or ``""`` for strings)."""
    new: dict[str, Any] = {}
    for name in model_names:
        if name not in da.coords:
            new[name] = (MODEL_DIM, np.full(da.sizes[MODEL_DIM], "", dtype=object) if name in string_coords
                         else np.full(da.sizes[MODEL_DIM], np.nan))
    for name in cell_names:
        if name not in da.coords:
            new[name] = ((MODEL_DIM, TEXT_DIM), np.full(da.shape, np.nan))
    for name, variable in text_coords.items():
        if name not in da.coords:
            new[name] = variable
    return da.assign_coords(new) if new else da


def _common_attrs(attrs: list[Mapping[str, Any]], context: Any = None) -> dict[str, Any]:
    """The attributes every matrix has with the same value (``combine_attrs`` of :func:`xarray.concat`)."""
    out = dict(attrs[0])
    for other in attrs[1:]:
        for key in [k for k in out if k not in other or not np.array_equal(np.asarray(other[k]), np.asarray(out[k]))]:
            del out[key]
    return out


def concat_dataarrays(matrices: Sequence[LogLikelihoodMatrix], allow_mixed_scoring: bool) -> xr.DataArray:
    """The DataArray of the stacked matrices, validated (see :meth:`LogLikelihoodMatrix.concat`)."""
    if not matrices:
        raise LoglikMapError("concat needs at least one matrix")
    _check_same_texts(matrices)
    _check_unique_models(matrices)
    _check_clipped_together(matrices)
    text_coords = _text_coords(matrices)
    model_names = [n for n in _coord_names(matrices, (MODEL_DIM,)) if n != MODEL_DIM]
    cell_names = _coord_names(matrices, (MODEL_DIM, TEXT_DIM))
    strings = {n for m in matrices for n in model_names if n in m.data.coords and m.data[n].dtype == object}
    pieces = [_filled(m.data, model_names, cell_names, text_coords, strings) for m in matrices]
    out = xr.concat(pieces, dim=MODEL_DIM, join="exact", coords="minimal", compat="equals",
                    combine_attrs=_common_attrs)
    if len({str(m.attrs.get("convention", "")) for m in matrices} - {""}) > 1:
        out.attrs["convention"] = "mixed"  # only kept with allow_mixed_scoring; rows keep their own
    if not allow_mixed_scoring:
        origin = np.repeat(np.arange(len(matrices)), [m.n_models for m in matrices])
        conflict = scoring_conflict(out, origin)
        if conflict is not None:
            raise LoglikMapError(f"cannot concatenate: {conflict}, or pass allow_mixed_scoring=True")
    return out
