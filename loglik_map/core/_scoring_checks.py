"""Whether the rows of a log-likelihood matrix can be compared: truncation and scoring conventions.

A row's numbers depend on how it was scored (:ref:`method-loglik`): which tokens count (``convention``) and
whether texts longer than the context lost tokens (``long_texts="truncate"``). The scorers record
both — the ``convention`` and ``long_texts`` model coordinates and the ``n_tokens_dropped`` cell
coordinate — and these checks read them. Rows without a record (matrices built by hand, the
published data) are taken as compatible with any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import xarray as xr

MODEL_DIM = "model"
TEXT_DIM = "text"

__all__ = ["DroppedTokens", "check_comparable_rows", "dropped_tokens", "row_conventions", "scoring_conflict",
           "truncation_message"]


class DroppedTokens(NamedTuple):
    """Totals of the ``n_tokens_dropped`` cell coordinate (0 where nothing is recorded)."""

    per_model: np.ndarray  #: (K,) tokens dropped per model
    per_text: np.ndarray  #: (N,) tokens dropped per text
    recorded: np.ndarray  #: (K,) bool: the row has a finite record for every text


def dropped_tokens(da: xr.DataArray) -> DroppedTokens:
    """Tokens truncation dropped, summed per model and per text.

    Reductions only, in one pass: a dask-backed coordinate (a lazily opened store) is read chunk
    by chunk, never as a whole K × N array.
    """
    coord = da.coords.get("n_tokens_dropped")
    k, n = da.sizes[MODEL_DIM], da.sizes[TEXT_DIM]
    if coord is None or coord.ndim != 2:
        return DroppedTokens(np.zeros(k), np.zeros(n), np.zeros(k, dtype=bool))
    cells = coord.reset_coords(drop=True).transpose(MODEL_DIM, TEXT_DIM).astype(float)
    totals = xr.Dataset({"per_model": cells.fillna(0.0).sum(TEXT_DIM), "per_text": cells.fillna(0.0).sum(MODEL_DIM),
                         "recorded": cells.notnull().all(TEXT_DIM)}).compute()
    return DroppedTokens(totals["per_model"].values, totals["per_text"].values, totals["recorded"].values)


def _rows_truncated_without_cells(da: xr.DataArray) -> np.ndarray:
    """Rows recorded as truncated (``n_texts_truncated`` > 0) in matrices without the per-text record."""
    coord = da.coords.get("n_texts_truncated")
    if "n_tokens_dropped" in da.coords or coord is None or coord.dims != (MODEL_DIM,):
        return np.zeros(da.sizes[MODEL_DIM], dtype=bool)
    return np.nan_to_num(coord.values.astype(float), nan=0.0) > 0


def _names(models: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(repr(str(m)) for m in models[:limit])
    return shown + (f" and {len(models) - limit} more" if len(models) > limit else "")


def truncation_message(da: xr.DataArray, action: str) -> str | None:
    """Why ``action`` must not use this matrix as it is (texts that lost tokens), or None."""
    dropped = dropped_tokens(da)
    models = da[MODEL_DIM].values
    fix = ("rescore with long_texts='rolling' (the default; every token is scored), leave those texts out with "
           "matrix.drop_texts(matrix.truncated_texts()), or pass allow_truncated=True to use them anyway")
    hit_texts = dropped.per_text > 0
    if hit_texts.any():
        hit_models = models[dropped.per_model > 0]
        return (f"{action}: {int(hit_texts.sum())} of {hit_texts.size} texts lost tokens to truncation "
                f"({int(dropped.per_text.sum())} tokens in all, under {len(hit_models)} model(s): {_names(hit_models)}). Their "
                "log-likelihoods cover only a prefix of each text while bits/byte divides by all of its bytes; "
                f"{fix}")
    rows = _rows_truncated_without_cells(da)
    if rows.any():
        return (f"{action}: model(s) {_names(models[rows])} were scored with long_texts='truncate' and cut "
                f"texts (n_texts_truncated > 0); {fix}")
    return None


def row_conventions(da: xr.DataArray) -> np.ndarray:
    """Each row's ``convention`` coordinate (``""`` where not recorded)."""
    coord = da.coords.get("convention")
    if coord is None or coord.dims != (MODEL_DIM,):
        return np.full(da.sizes[MODEL_DIM], "", dtype=object)
    return np.array([str(c) for c in coord.values], dtype=object)


def _row_completeness(da: xr.DataArray) -> np.ndarray:
    """Per row: "truncated" (lost tokens), "whole texts" (known to score every token) or "" (unknown)."""
    dropped = dropped_tokens(da)
    out = np.full(da.sizes[MODEL_DIM], "", dtype=object)
    if "n_tokens_dropped" in da.coords:
        out[dropped.recorded] = "whole texts"
    modes = da.coords.get("long_texts")
    if modes is not None and modes.dims == (MODEL_DIM,):
        known = np.array([str(v) in ("rolling", "error", "truncate") for v in modes.values])
        out[known] = "whole texts"
    out[(dropped.per_model > 0) | _rows_truncated_without_cells(da)] = "truncated"
    return out


def scoring_conflict(da: xr.DataArray, origin: Sequence[int] | np.ndarray | None = None) -> str | None:
    """The first pair of rows scored so differently that they cannot be compared, described; or None.

    Rows differ when their ``convention`` coordinates are two different non-empty values, or when
    one row lost tokens to truncation and another is known to have scored every token (a row
    scored with ``long_texts="truncate"`` that cut nothing gives what any mode gives).

    Parameters
    ----------
    da : xarray.DataArray
        The matrix, dims ``("model", "text")``.
    origin : sequence of int, optional
        For each row, the index of the matrix it came from (named in the message).
    """
    models = da[MODEL_DIM].values

    def who(i: int) -> str:
        return f"model {str(models[i])!r}" + (f" (matrix {origin[i]})" if origin is not None else "")

    conv = row_conventions(da)
    known = [i for i, c in enumerate(conv) if c]
    other = [i for i in known if conv[i] != conv[known[0]]] if known else []
    if other:
        i, j = known[0], other[0]
        return (f"{who(i)} was scored with convention={conv[i]!r} and {who(j)} with convention={conv[j]!r}; the two "
                "score different tokens of each text, so their log-likelihoods are not comparable. Rescore one of "
                "them with the other's convention")
    complete = _row_completeness(da)
    cut = np.flatnonzero(complete == "truncated")
    whole = np.flatnonzero(complete == "whole texts")
    if cut.size and whole.size:
        i, j = int(cut[0]), int(whole[0])
        return (f"{who(i)} lost tokens to truncation (long_texts='truncate') while {who(j)} scored every token; "
                f"their log-likelihoods cover different parts of the texts. Rescore {str(models[i])!r} with "
                "long_texts='rolling'")
    return None


def check_comparable_rows(matrix: Any, action: str, *, allow_truncated: bool, allow_mixed_scoring: bool) -> None:
    """Refuse rows that lost tokens to truncation or were scored under different conventions.

    Parameters
    ----------
    matrix : LogLikelihoodMatrix
        The matrix about to be analysed.
    action : str
        What the caller is doing, for the message (e.g. ``"ModelMap"``).
    allow_truncated, allow_mixed_scoring : bool
        Skip the corresponding check.

    Raises
    ------
    LoglikMapError
        Naming the rows and the option that allows them.
    """
    from ..errors import LoglikMapError

    if not allow_truncated:
        matrix.check_not_truncated(action)
    if not allow_mixed_scoring:
        conflict = scoring_conflict(matrix.data)
        if conflict is not None:
            raise LoglikMapError(f"{action}: {conflict}, or pass allow_mixed_scoring=True")
