"""Validation of a log-likelihood matrix's values, labels, coordinates and attributes (not public API).

Everything a :class:`~loglik_map.LogLikelihoodMatrix` holds passes through here, whichever way it
was made (constructor, :meth:`~loglik_map.LogLikelihoodMatrix.from_dataarray`, concatenation, a
file): what cannot be a log-likelihood of a text is refused, what looks like per-token means is
warned about.
"""

from __future__ import annotations

import datetime as _dt
import warnings
from collections.abc import Hashable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._labels import check_text
from .._units import loglik_units_factor
from .._version import __version__
from ..errors import LoglikMapError, LoglikMapWarning, WrongTypeError

__all__ = [
    "MODEL_DIM",
    "RESERVED",
    "TEXT_DIM",
    "as_str_array",
    "build_dataarray",
    "check_attrs",
    "coord_array",
    "dataarray_parts",
    "first_duplicate",
]

MODEL_DIM = "model"
TEXT_DIM = "text"
#: Name of the second model dimension of all-pairs results.
PAIR_DIM = "model_"
RESERVED = {MODEL_DIM, TEXT_DIM, "n_bytes"}
_ATTR_SCALARS = (str, int, float, np.integer, np.floating)


def as_str_array(values: Iterable[Any], what: str, *, labels: bool = False) -> np.ndarray:
    """A 1-D object array of ``str``; every entry valid text (UTF-8, no NUL, no lone surrogate).

    ``labels=True`` (model names, text ids) also refuses empty strings.
    """
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=object)
    if arr.ndim != 1:
        raise LoglikMapError(f"{what} must be one-dimensional, got shape {arr.shape}")
    out = np.empty(arr.shape, dtype=object)
    for i, v in enumerate(arr):
        if not isinstance(v, (str, np.str_, bytes)):
            raise WrongTypeError(f"{what} must be strings; entry {i} is {v!r} ({type(v).__name__})")
        out[i] = check_text(v, f"{what}: entry {i}")
        if labels and not out[i]:
            raise LoglikMapError(f"{what}: entry {i} is empty; every label needs at least one character")
    return out


def first_duplicate(labels: np.ndarray) -> tuple[str, int, int] | None:
    """The first label that repeats, with the positions of its first two occurrences; or None."""
    index = pd.Index(labels)
    repeated = np.flatnonzero(index.duplicated())
    if repeated.size == 0:
        return None
    second = int(repeated[0])
    first = int(np.flatnonzero(index == index[second])[0])
    return str(labels[second]), first, second


def coord_array(name: str, values: Any, length: int, dim: str) -> np.ndarray:
    """Normalise a per-model or per-text coordinate to a 1-D numeric or object-of-str array."""
    if name in RESERVED:
        raise LoglikMapError(f"coordinate name {name!r} is reserved by LogLikelihoodMatrix")
    arr = np.asarray(values)
    if arr.ndim != 1 or arr.shape[0] != length:
        raise LoglikMapError(
            f"{dim} coordinate {name!r} must have one entry per {dim} ({length}), got shape {arr.shape}"
        )
    if arr.dtype.kind in "biuf":
        return arr
    if arr.dtype.kind in "USO" or arr.dtype.kind == "T":
        if not all(isinstance(v, (str, np.str_, bytes)) for v in arr.tolist()):
            raise LoglikMapError(
                f"{dim} coordinate {name!r} mixes types; use numbers (NaN for missing) or strings "
                f"('' for missing) so it can be saved to netCDF/Zarr"
            )
        return as_str_array(arr, f"{dim} coordinate {name!r}")
    raise LoglikMapError(f"{dim} coordinate {name!r} has unsupported dtype {arr.dtype}")


def cell_coord_array(name: str, values: Any, shape: tuple[int, int]) -> np.ndarray:
    """Normalise a per-entry (model × text) coordinate to a numeric 2-D array."""
    if name in RESERVED:
        raise LoglikMapError(f"coordinate name {name!r} is reserved by LogLikelihoodMatrix")
    arr = np.asarray(values)
    if arr.shape != shape:
        raise LoglikMapError(f"cell coordinate {name!r} must have one entry per model and text, shape {shape}, "
                             f"got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise LoglikMapError(f"cell coordinate {name!r} must be numeric (NaN for missing), got dtype {arr.dtype}")
    return arr


def check_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in attrs.items():
        if not isinstance(key, str):
            raise LoglikMapError(f"attribute names must be strings, got {key!r}")
        ok = isinstance(value, _ATTR_SCALARS) and not isinstance(value, (bool, np.bool_))
        if not ok and isinstance(value, (list, tuple, np.ndarray)):
            ok = all(
                isinstance(v, _ATTR_SCALARS) and not isinstance(v, (bool, np.bool_)) for v in value
            )
            value = list(value) if ok and not isinstance(value, np.ndarray) else value
        if not ok:
            raise LoglikMapError(
                f"attribute {key!r} = {value!r}: attributes must be strings, numbers or lists of them "
                "(booleans and dicts cannot be stored in netCDF; encode them as strings)"
            )
        out[key] = value
    return out


#: Positive entries up to this many nats per byte of the text are accepted as rounding (float32
#: log-softmax sums can land a hair above 0 for a text a model has memorised).
POSITIVE_TOLERANCE_NATS_PER_BYTE = 1e-6
#: No real model's log-likelihood is this far below 0 per byte of text (e^-10,000 per byte); a
#: larger magnitude is a unit or bookkeeping error (or a broken model), never a result.
MAX_NATS_PER_BYTE = 1e4
#: If every entry is smaller than this in magnitude (nats per byte), the values look like
#: per-token means: real models are at ~0.2 to 5 nats per byte of natural text.
PER_TOKEN_MEAN_HINT_NATS_PER_BYTE = 0.01


def _entry(values: np.ndarray, models: np.ndarray, texts: np.ndarray, where: np.ndarray) -> str:
    i, k = np.argwhere(where)[0]
    return f"model {models[i]!r} and text {texts[k]!r} (value {values[i, k]:.6g})"


def validate_values(values: np.ndarray, n_bytes: np.ndarray, models: np.ndarray, texts: np.ndarray) -> None:
    """Refuse what cannot be a log-likelihood of a text; warn about what looks like per-token means."""
    finite = np.isfinite(values)
    if not finite.all():
        raise LoglikMapError(
            f"log-likelihoods must be finite: {int((~finite).sum())} entries are not, the first for "
            f"{_entry(values, models, texts, ~finite)}"
        )
    per_byte = values / n_bytes[None, :]
    positive = per_byte > POSITIVE_TOLERANCE_NATS_PER_BYTE
    if positive.any():
        share = "all" if positive.all() else f"{int(positive.sum())} of {values.size}"
        raise LoglikMapError(
            f"log-likelihoods are log-probabilities of texts and must be ≤ 0, but {share} entries are positive, "
            f"the first for {_entry(values, models, texts, positive)}. Did you pass losses (negative "
            "log-likelihoods)? Negate them: LogLikelihoodMatrix(-losses, ...)"
        )
    huge = per_byte < -MAX_NATS_PER_BYTE
    if huge.any():
        raise LoglikMapError(
            f"{int(huge.sum())} entries are below -{MAX_NATS_PER_BYTE:g} nats per byte of their text, which no "
            f"language model's log-likelihood reaches; the first for {_entry(values, models, texts, huge)}. "
            "Check the units (nats per text) and n_bytes (UTF-8 bytes per text), or drop the broken model"
        )
    largest = float(np.max(np.abs(per_byte)))
    if largest < PER_TOKEN_MEAN_HINT_NATS_PER_BYTE:
        warnings.warn(
            f"every log-likelihood is within {largest:.2g} nats per byte of 0, far less than any real model "
            f"gives (0.2 to 5 nats per byte): these look like per-token means. LogLikelihoodMatrix needs each "
            "text's total log-likelihood in nats (the sum over its scored tokens); multiply the means by each "
            "text's number of scored tokens. KLs computed from means are too small by about the square of the "
            "tokens per text.",
            LoglikMapWarning, stacklevel=3,
        )

def _n_bytes(n_bytes: Any, texts: np.ndarray) -> np.ndarray:
    nb = np.asarray(n_bytes)
    if nb.shape != (len(texts),):
        raise LoglikMapError(f"n_bytes must have one entry per text ({len(texts)}), got shape {nb.shape}")
    if nb.dtype.kind == "f":
        if not np.all(np.isfinite(nb)) or not np.all(nb == np.round(nb)):
            raise LoglikMapError("n_bytes must be whole numbers of bytes")
    elif nb.dtype.kind not in "iu":
        raise LoglikMapError(f"n_bytes must be integers, got dtype {nb.dtype}")
    nb = nb.astype(np.int64)
    if np.any(nb <= 0):
        k = int(np.argmax(nb <= 0))
        raise LoglikMapError(f"n_bytes must be positive; text {texts[k]!r} has {nb[k]}")
    return nb


def _values(values: Any, models: np.ndarray, texts: np.ndarray) -> np.ndarray:
    if np.iscomplexobj(values):
        raise LoglikMapError("values are complex numbers; log-likelihoods are real (nats per text). Pass the real "
                             "values (e.g. values.real, after checking that the imaginary parts are 0)")
    try:
        vals = np.array(values, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as err:
        raise LoglikMapError(f"values must be a numeric K × N array: {err}") from None
    if vals.ndim != 2:
        raise LoglikMapError(f"values must be two-dimensional (model × text), got shape {vals.shape}")
    if vals.shape[0] == 0 or vals.shape[1] == 0:
        raise LoglikMapError(f"the matrix is empty (shape {vals.shape}); it needs ≥ 1 model and ≥ 1 text")
    if vals.shape != (len(models), len(texts)):
        raise LoglikMapError(f"values have shape {vals.shape} but there are {len(models)} models and "
                             f"{len(texts)} texts")
    return vals


def build_dataarray(values: Any, models: Any, texts: Any, n_bytes: Any, model_coords: Mapping[str, Any] | None,
                    text_coords: Mapping[str, Any] | None, cell_coords: Mapping[str, Any] | None,
                    attrs: Mapping[str, Any] | None) -> xr.DataArray:
    """The validated DataArray of a :class:`~loglik_map.LogLikelihoodMatrix` (see its constructor)."""
    models_arr = as_str_array(models, "models", labels=True)
    texts_arr = as_str_array(texts, "texts", labels=True)
    vals = _values(values, models_arr, texts_arr)
    for labels, what in ((models_arr, "model"), (texts_arr, "text")):
        dup = first_duplicate(labels)
        if dup is not None:
            raise LoglikMapError(f"{what} {dup[0]!r} appears twice (positions {dup[1]} and {dup[2]})")
    nb = _n_bytes(n_bytes, texts_arr)
    given_attrs = check_attrs(attrs or {})
    if "units" in given_attrs:  # converted now, as files are when read: the matrix always holds nats
        factor = loglik_units_factor(given_attrs["units"])
        if factor != 1.0:
            vals *= factor
            given_attrs = {**given_attrs, "units": "nats", "units_converted_from": str(given_attrs["units"])}
    validate_values(vals, nb, models_arr, texts_arr)
    coords: dict[Hashable, Any] = {MODEL_DIM: (MODEL_DIM, models_arr), TEXT_DIM: (TEXT_DIM, texts_arr),
                                   "n_bytes": (TEXT_DIM, nb)}
    for name, v in (model_coords or {}).items():
        coords[name] = (MODEL_DIM, coord_array(name, v, len(models_arr), MODEL_DIM))
    for name, v in (text_coords or {}).items():
        if name in coords:
            raise LoglikMapError(f"coordinate {name!r} given both per model and per text")
        coords[name] = (TEXT_DIM, coord_array(name, v, len(texts_arr), TEXT_DIM))
    for name, v in (cell_coords or {}).items():
        if name in coords:
            raise LoglikMapError(f"coordinate {name!r} given twice (per cell and per model or text)")
        coords[name] = ((MODEL_DIM, TEXT_DIM), cell_coord_array(name, v, vals.shape))
    full_attrs: dict[str, Any] = {
        "units": "nats",
        "quantity": "log-likelihood of each text",
        "loglik_map_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    full_attrs.update(given_attrs)
    return xr.DataArray(vals, dims=(MODEL_DIM, TEXT_DIM), coords=coords, attrs=full_attrs, name="log_likelihood")


def dataarray_parts(da: Any) -> dict[str, Any]:
    """The constructor arguments of a DataArray with dims ``("model", "text")`` and ``n_bytes``."""
    if not isinstance(da, xr.DataArray):
        raise WrongTypeError(f"from_dataarray expects an xarray.DataArray, got {type(da).__name__}")
    if set(da.dims) != {MODEL_DIM, TEXT_DIM} or da.ndim != 2:
        raise LoglikMapError(f"the DataArray must have dims ('model', 'text'), got {da.dims}")
    da = da.transpose(MODEL_DIM, TEXT_DIM)
    if "n_bytes" not in da.coords:
        raise LoglikMapError("the DataArray has no 'n_bytes' coordinate (UTF-8 length of each text)")
    if MODEL_DIM not in da.coords or TEXT_DIM not in da.coords:
        raise LoglikMapError("the DataArray needs 'model' and 'text' label coordinates")
    parts: dict[str, dict[str, Any]] = {"model_coords": {}, "text_coords": {}, "cell_coords": {}}
    for name, coord in da.coords.items():
        if name in RESERVED:
            continue
        if coord.dims == (MODEL_DIM,):
            parts["model_coords"][str(name)] = coord.values
        elif coord.dims == (TEXT_DIM,):
            parts["text_coords"][str(name)] = coord.values
        elif set(coord.dims) == {MODEL_DIM, TEXT_DIM}:
            parts["cell_coords"][str(name)] = coord.transpose(MODEL_DIM, TEXT_DIM).values
        else:
            raise LoglikMapError(f"coordinate {name!r} has dims {coord.dims}; only model, text and "
                                 "(model, text) coordinates are supported")
    return {"values": da.values, "models": da[MODEL_DIM].values, "texts": da[TEXT_DIM].values,
            "n_bytes": da["n_bytes"].values, **parts}
