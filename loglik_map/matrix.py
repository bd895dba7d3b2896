"""``LogLikelihoodMatrix``: the labelled K × N matrix of log-likelihoods (nats), model × text."""

from __future__ import annotations

import datetime as _dt
import warnings
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from os import PathLike
from typing import Any

import numpy as np
import xarray as xr

from ._labels import check_text, unknown_labels_error
from ._scoring_checks import dropped_tokens, scoring_conflict, truncation_message
from .errors import LoglikMapError, LoglikMapWarning
from .units import LN2

__all__ = ["LogLikelihoodMatrix", "MODEL_DIM", "TEXT_DIM"]

MODEL_DIM = "model"
TEXT_DIM = "text"
_RESERVED = {MODEL_DIM, TEXT_DIM, "n_bytes"}
_ATTR_SCALARS = (str, int, float, np.integer, np.floating)


def _library_version() -> str:
    from . import __version__

    return __version__


def _as_str_array(values: Iterable[Any], what: str, *, labels: bool = False) -> np.ndarray:
    """A 1-D object array of ``str``; every entry valid text (UTF-8, no NUL, no lone surrogate).

    ``labels=True`` (model names, text ids) also refuses empty strings.
    """
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=object)
    if arr.ndim != 1:
        raise LoglikMapError(f"{what} must be one-dimensional, got shape {arr.shape}")
    out = np.empty(arr.shape, dtype=object)
    for i, v in enumerate(arr):
        if not isinstance(v, (str, np.str_, bytes)):
            raise LoglikMapError(f"{what} must be strings; entry {i} is {v!r} ({type(v).__name__})")
        out[i] = check_text(v, f"{what}: entry {i}")
        if labels and not out[i]:
            raise LoglikMapError(f"{what}: entry {i} is empty; every label needs at least one character")
    return out


def _first_duplicate(labels: np.ndarray) -> tuple[str, int, int] | None:
    seen: dict[str, int] = {}
    for i, v in enumerate(labels):
        if v in seen:
            return v, seen[v], i
        seen[v] = i
    return None


def _coord_array(name: str, values: Any, length: int, dim: str) -> np.ndarray:
    """Normalise a per-model or per-text coordinate to a 1-D numeric or object-of-str array."""
    if name in _RESERVED:
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
        return _as_str_array(arr, f"{dim} coordinate {name!r}")
    raise LoglikMapError(f"{dim} coordinate {name!r} has unsupported dtype {arr.dtype}")


def _cell_coord_array(name: str, values: Any, shape: tuple[int, int]) -> np.ndarray:
    """Normalise a per-entry (model × text) coordinate to a numeric 2-D array."""
    if name in _RESERVED:
        raise LoglikMapError(f"coordinate name {name!r} is reserved by LogLikelihoodMatrix")
    arr = np.asarray(values)
    if arr.shape != shape:
        raise LoglikMapError(f"cell coordinate {name!r} must have one entry per model and text, shape {shape}, "
                             f"got shape {arr.shape}")
    if arr.dtype.kind not in "biuf":
        raise LoglikMapError(f"cell coordinate {name!r} must be numeric (NaN for missing), got dtype {arr.dtype}")
    return arr


def _check_attrs(attrs: Mapping[str, Any]) -> dict[str, Any]:
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


def _validate_values(values: np.ndarray, n_bytes: np.ndarray, models: np.ndarray, texts: np.ndarray) -> None:
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


class LogLikelihoodMatrix:
    """Log-likelihoods log p_i(x_s) of K models on N texts, in nats, labelled with xarray.

    Parameters
    ----------
    values : array_like, shape (K, N)
        ``values[i, s]`` is the log-likelihood in nats of text ``s`` under model ``i``
        (a sum over the text's scored tokens; SPEC §1).
    models : sequence of str, length K
        Unique model names (hub ids, folder names, ``"name@step1000"``, …).
    texts : sequence of str, length N
        Unique text ids, e.g. from :func:`loglik_map.text_id`.
    n_bytes : array_like of int, length N
        UTF-8 length of every text in bytes (all positive).
    model_coords : mapping of str to array_like, optional
        Per-model coordinates (family, size, step, seed, layer, quantization, …), each of
        length K: numbers (NaN for missing) or strings (``""`` for missing).
    text_coords : mapping of str to array_like, optional
        Per-text coordinates (e.g. ``domain``), each of length N.
    cell_coords : mapping of str to array_like, optional
        Per-entry coordinates, each numeric of shape (K, N), e.g. the scorers' ``n_tokens``
        (tokens scored) and ``n_tokens_dropped`` (tokens cut by truncation) of every text under
        every model's tokenizer. NaN marks a missing entry.
    attrs : mapping, optional
        Metadata (strings, numbers or lists of them). ``units``, ``loglik_map_version`` and
        ``created`` are filled in unless given.

    Attributes
    ----------
    data : xarray.DataArray
        The matrix with dims ``("model", "text")``.

    Examples
    --------
    >>> import loglik_map as lm
    >>> m = lm.LogLikelihoodMatrix(
    ...     [[-10.0, -20.0, -30.0], [-11.0, -19.0, -33.0]],
    ...     models=["a", "b"], texts=["t1", "t2", "t3"], n_bytes=[10, 20, 30],
    ...     model_coords={"step": [0, 1000]},
    ... )
    >>> m.shape
    (2, 3)
    >>> float(m.mean_bytes)
    20.0
    """

    __slots__ = ("_data",)

    def __init__(
        self,
        values: Any,
        *,
        models: Sequence[str],
        texts: Sequence[str],
        n_bytes: Any,
        model_coords: Mapping[str, Any] | None = None,
        text_coords: Mapping[str, Any] | None = None,
        cell_coords: Mapping[str, Any] | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        models_arr = _as_str_array(models, "models", labels=True)
        texts_arr = _as_str_array(texts, "texts", labels=True)
        try:
            vals = np.array(values, dtype=np.float64, copy=True)
        except (TypeError, ValueError) as err:
            raise LoglikMapError(f"values must be a numeric K × N array: {err}") from None
        if vals.ndim != 2:
            raise LoglikMapError(f"values must be two-dimensional (model × text), got shape {vals.shape}")
        if vals.shape[0] == 0 or vals.shape[1] == 0:
            raise LoglikMapError(f"the matrix is empty (shape {vals.shape}); it needs ≥ 1 model and ≥ 1 text")
        if vals.shape != (len(models_arr), len(texts_arr)):
            raise LoglikMapError(
                f"values have shape {vals.shape} but there are {len(models_arr)} models and "
                f"{len(texts_arr)} texts"
            )
        for labels, what in ((models_arr, "model"), (texts_arr, "text")):
            dup = _first_duplicate(labels)
            if dup is not None:
                raise LoglikMapError(f"{what} {dup[0]!r} appears twice (positions {dup[1]} and {dup[2]})")
        nb = np.asarray(n_bytes)
        if nb.shape != (len(texts_arr),):
            raise LoglikMapError(f"n_bytes must have one entry per text ({len(texts_arr)}), got shape {nb.shape}")
        if nb.dtype.kind == "f":
            if not np.all(np.isfinite(nb)) or not np.all(nb == np.round(nb)):
                raise LoglikMapError("n_bytes must be whole numbers of bytes")
        elif nb.dtype.kind not in "iu":
            raise LoglikMapError(f"n_bytes must be integers, got dtype {nb.dtype}")
        nb = nb.astype(np.int64)
        if np.any(nb <= 0):
            k = int(np.argmax(nb <= 0))
            raise LoglikMapError(f"n_bytes must be positive; text {texts_arr[k]!r} has {nb[k]}")
        _validate_values(vals, nb, models_arr, texts_arr)

        coords: dict[Hashable, Any] = {
            MODEL_DIM: (MODEL_DIM, models_arr),
            TEXT_DIM: (TEXT_DIM, texts_arr),
            "n_bytes": (TEXT_DIM, nb),
        }
        for name, v in (model_coords or {}).items():
            coords[name] = (MODEL_DIM, _coord_array(name, v, len(models_arr), MODEL_DIM))
        for name, v in (text_coords or {}).items():
            if name in coords:
                raise LoglikMapError(f"coordinate {name!r} given both per model and per text")
            coords[name] = (TEXT_DIM, _coord_array(name, v, len(texts_arr), TEXT_DIM))
        for name, v in (cell_coords or {}).items():
            if name in coords:
                raise LoglikMapError(f"coordinate {name!r} given twice (per cell and per model or text)")
            coords[name] = ((MODEL_DIM, TEXT_DIM), _cell_coord_array(name, v, vals.shape))
        full_attrs: dict[str, Any] = {
            "units": "nats",
            "quantity": "log-likelihood of each text",
            "loglik_map_version": _library_version(),
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }
        full_attrs.update(_check_attrs(attrs or {}))
        self._data = xr.DataArray(vals, dims=(MODEL_DIM, TEXT_DIM), coords=coords, attrs=full_attrs,
                                  name="log_likelihood")

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dataarray(cls, da: xr.DataArray) -> "LogLikelihoodMatrix":
        """Build a matrix from a DataArray with dims ``("model", "text")`` and an ``n_bytes`` coordinate.

        Any other coordinate along ``model``, ``text`` or both (a cell coordinate) is kept, and so
        are the attrs.
        The input is validated exactly as the constructor validates its arguments.
        """
        if not isinstance(da, xr.DataArray):
            raise LoglikMapError(f"from_dataarray expects an xarray.DataArray, got {type(da).__name__}")
        if set(da.dims) != {MODEL_DIM, TEXT_DIM} or da.ndim != 2:
            raise LoglikMapError(f"the DataArray must have dims ('model', 'text'), got {da.dims}")
        da = da.transpose(MODEL_DIM, TEXT_DIM)
        if "n_bytes" not in da.coords:
            raise LoglikMapError("the DataArray has no 'n_bytes' coordinate (UTF-8 length of each text)")
        model_coords, text_coords, cell_coords = {}, {}, {}
        for name, coord in da.coords.items():
            if name in _RESERVED:
                continue
            if coord.dims == (MODEL_DIM,):
                model_coords[name] = coord.values
            elif coord.dims == (TEXT_DIM,):
                text_coords[name] = coord.values
            elif set(coord.dims) == {MODEL_DIM, TEXT_DIM}:
                cell_coords[name] = coord.transpose(MODEL_DIM, TEXT_DIM).values
            else:
                raise LoglikMapError(f"coordinate {name!r} has dims {coord.dims}; only model, text and "
                                     "(model, text) coordinates are supported")
        if MODEL_DIM not in da.coords or TEXT_DIM not in da.coords:
            raise LoglikMapError("the DataArray needs 'model' and 'text' label coordinates")
        new = cls(
            da.values,
            models=da[MODEL_DIM].values,
            texts=da[TEXT_DIM].values,
            n_bytes=da["n_bytes"].values,
            model_coords=model_coords,
            text_coords=text_coords,
            cell_coords=cell_coords,
            attrs={},
        )
        # the DataArray's own attrs win; defaults (units, version, creation time) fill the gaps
        new._data.attrs = {**new._data.attrs, **_check_attrs(dict(da.attrs))}
        return new

    @classmethod
    def _wrap(cls, da: xr.DataArray) -> "LogLikelihoodMatrix":
        """Wrap an already validated DataArray (internal; no copy, no checks)."""
        new = cls.__new__(cls)
        new._data = da
        return new

    @classmethod
    def from_modelmap(cls, loglik_path: str | PathLike[str], texts_path: str | PathLike[str], *,
                      trust_pickle: bool = False) -> "LogLikelihoodMatrix":
        """Import the published data of shimo-lab/modelmap (Oyama et al. 2025).

        Parameters
        ----------
        loglik_path : path
            The log-likelihoods (nats), one vector of N values per model, as

            * ``.npz`` (safe): arrays ``models`` (K names) and ``log_likelihood`` (K × N), or one
              array per model named by the model; read without unpickling;
            * ``.csv`` (safe): a header row, then one row per model: its name, then N values;
            * the authors' pickle ``log-likelihood_1018.pkl`` (a dict ``{model_name: vector}``):
              **unpickling runs any code the file contains**, so it is refused unless
              ``trust_pickle=True``. Convert it once with
              :func:`loglik_map.io.convert_modelmap_pickle` and use the ``.npz`` afterwards.
        texts_path : path
            ``texts-10k-pile.jsonl``: one JSON object per text, in the order of the vectors,
            with fields ``text`` and ``pile_set_name`` (and optionally ``pile_idx``, ``chunk_idx``).
        trust_pickle : bool, default False
            Allow unpickling ``loglik_path``: only for a file you trust.

        Returns
        -------
        LogLikelihoodMatrix
            Text ids from :func:`loglik_map.text_id`, so the matrix aligns with texts you score
            yourself; ``domain`` (the Pile subset) and the index fields become text coordinates.

        Examples
        --------
        Convert the published pickle once, then read the safe copy (or save the matrix itself)::

            from loglik_map.io import convert_modelmap_pickle
            convert_modelmap_pickle("log-likelihood_1018.pkl", "modelmap-1018.npz", trust_pickle=True)
            m = lm.LogLikelihoodMatrix.from_modelmap("modelmap-1018.npz", "texts-10k-pile.jsonl")
            m.save("modelmap-1018.nc")      # checksummed; later: lm.open_matrix("modelmap-1018.nc")
        """
        from .io import read_modelmap

        return read_modelmap(loglik_path, texts_path, trust_pickle=trust_pickle)

    # ------------------------------------------------------------------ accessors
    @property
    def data(self) -> xr.DataArray:
        """The underlying :class:`xarray.DataArray`, dims ``("model", "text")``, nats."""
        return self._data

    @property
    def values(self) -> np.ndarray:
        """The log-likelihoods as a float64 array of shape (K, N), nats."""
        return self._data.values

    @property
    def models(self) -> np.ndarray:
        """Model names, shape (K,)."""
        return self._data[MODEL_DIM].values

    @property
    def texts(self) -> np.ndarray:
        """Text ids, shape (N,)."""
        return self._data[TEXT_DIM].values

    @property
    def n_bytes(self) -> np.ndarray:
        """UTF-8 length of each text in bytes, shape (N,)."""
        return self._data["n_bytes"].values

    @property
    def mean_bytes(self) -> float:
        """Mean UTF-8 length B̄ of the texts, in bytes."""
        return float(np.mean(self.n_bytes))

    @property
    def shape(self) -> tuple[int, int]:
        """(K, N): number of models and of texts."""
        return self._data.shape  # type: ignore[return-value]

    @property
    def n_models(self) -> int:
        """Number of models K."""
        return self.shape[0]

    @property
    def n_texts(self) -> int:
        """Number of texts N."""
        return self.shape[1]

    @property
    def attrs(self) -> dict[str, Any]:
        """Metadata (units, provenance, scoring convention, …)."""
        return self._data.attrs

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        arr = self._data.values
        if dtype is not None:
            arr = arr.astype(dtype, copy=False)
        return arr.copy() if copy else arr

    def __len__(self) -> int:
        return self.n_models

    def __repr__(self) -> str:
        k, n = self.shape
        mcoords = [c for c, v in self._data.coords.items() if v.dims == (MODEL_DIM,) and c != MODEL_DIM]
        tcoords = [c for c, v in self._data.coords.items() if v.dims == (TEXT_DIM,) and c != TEXT_DIM]
        ccoords = [c for c, v in self._data.coords.items() if v.ndim == 2]
        names = list(self.models[:3]) + (["…"] if k > 3 else [])
        lines = [
            f"<LogLikelihoodMatrix: {k} models × {n} texts, nats, mean {self.mean_bytes:.1f} bytes/text>",
            f"  models: {', '.join(map(str, names))}",
            f"  model coords: {', '.join(map(str, mcoords)) or '—'}",
            f"  text coords: {', '.join(map(str, tcoords))}",
            *([f"  cell coords: {', '.join(map(str, ccoords))}"] if ccoords else []),
            f"  range: [{self.values.min():.4g}, {self.values.max():.4g}] nats",
        ]
        conv = self.attrs.get("convention")
        if conv is not None:
            lines.append(f"  convention: {conv}")
        return "\n".join(lines)

    def identical(self, other: "LogLikelihoodMatrix") -> bool:
        """True if ``other`` has the same values, labels, coordinates and attrs."""
        return isinstance(other, LogLikelihoodMatrix) and self._data.identical(other._data)

    # ------------------------------------------------------------------ selection
    @staticmethod
    def _keep_dims(indexers: Mapping[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in indexers.items():
            if key not in (MODEL_DIM, TEXT_DIM):
                raise LoglikMapError(f"can only select along 'model' or 'text', not {key!r}")
            if not isinstance(value, slice) and np.ndim(value) == 0:
                value = [value]
            out[key] = value
        return out

    def _check_labels(self, dim: str, wanted: Any) -> None:
        """Raise, naming the missing labels and the closest existing ones, unless all of ``wanted`` exist."""
        if isinstance(wanted, slice):
            return
        labels = [wanted] if np.ndim(wanted) == 0 else list(np.asarray(wanted, dtype=object).ravel())
        known = self._data[dim].to_index()
        missing = [lab for lab in labels if lab not in known]
        if missing:
            raise unknown_labels_error(list(dict.fromkeys(missing)), list(known), dim)

    def sel(self, indexers: Mapping[str, Any] | None = None, **kwargs: Any) -> "LogLikelihoodMatrix":
        """Select models/texts by label (scalars keep the dimension); see :meth:`xarray.DataArray.sel`.

        Unknown labels raise an error naming them and the closest existing labels.
        """
        idx = self._keep_dims({**(indexers or {}), **kwargs})
        for dim, wanted in idx.items():
            self._check_labels(dim, wanted)
        try:
            da = self._data.sel(idx)
        except KeyError as err:
            raise LoglikMapError(f"label not found: {err}") from None
        return self._checked_subset(da)

    def isel(self, indexers: Mapping[str, Any] | None = None, **kwargs: Any) -> "LogLikelihoodMatrix":
        """Select models/texts by position (scalars keep the dimension); see :meth:`xarray.DataArray.isel`."""
        idx = self._keep_dims({**(indexers or {}), **kwargs})
        return self._checked_subset(self._data.isel(idx))

    def _model_coord_names(self) -> list[str]:
        return [str(n) for n, c in self._data.coords.items() if c.dims == (MODEL_DIM,) and n != MODEL_DIM]

    def where_models(self, **criteria: Any) -> "LogLikelihoodMatrix":
        """Keep the models whose coordinates equal the given values, e.g. ``where_models(family="pythia")``.

        A list value keeps models matching any of its entries.
        """
        keep = np.ones(self.n_models, dtype=bool)
        for name, value in criteria.items():
            if name not in self._data.coords or self._data[name].dims != (MODEL_DIM,):
                raise unknown_labels_error([name], self._model_coord_names(), "model coordinate")
            coord = self._data[name].values
            allowed = value if isinstance(value, (list, tuple, set, np.ndarray)) else [value]
            keep &= np.isin(coord, list(allowed))
        return self.isel(model=np.flatnonzero(keep))

    def _checked_subset(self, da: xr.DataArray) -> "LogLikelihoodMatrix":
        if da.sizes[MODEL_DIM] == 0 or da.sizes[TEXT_DIM] == 0:
            raise LoglikMapError(f"the selection is empty (shape {da.shape})")
        return self._wrap(da)

    def drop_texts(self, ids: Iterable[str]) -> "LogLikelihoodMatrix":
        """Return the matrix without the texts ``ids`` (every id must be present)."""
        ids = list(ids)
        self._check_labels(TEXT_DIM, ids)
        keep = ~np.isin(self.texts, ids)
        return self.isel(text=np.flatnonzero(keep))

    def drop_models(self, names: Iterable[str]) -> "LogLikelihoodMatrix":
        """Return the matrix without the models ``names`` (every name must be present)."""
        names = list(names)
        self._check_labels(MODEL_DIM, names)
        return self.isel(model=np.flatnonzero(~np.isin(self.models, names)))

    # ------------------------------------------------------------------ names and model coordinates
    def rename_models(self, names: Mapping[str, str] | Callable[[str], str]) -> "LogLikelihoodMatrix":
        """Return the matrix with new model names.

        Parameters
        ----------
        names : mapping or callable
            ``{old: new}`` for the models to rename (every ``old`` must exist; others keep their
            name), or a function applied to every name.

        Examples
        --------
        >>> import loglik_map as lm
        >>> m = lm.LogLikelihoodMatrix([[-10.0, -20.0], [-11.0, -19.0]], models=["runs/a/step24", "b"],
        ...                            texts=["t1", "t2"], n_bytes=[10, 20])
        >>> list(m.rename_models({"runs/a/step24": "a@24"}).models)
        ['a@24', 'b']
        """
        old = [str(m) for m in self.models]
        if callable(names):
            new = [names(m) for m in old]
        elif isinstance(names, Mapping):
            self._check_labels(MODEL_DIM, list(names))
            new = [names.get(m, m) for m in old]
        else:
            raise LoglikMapError(f"rename_models needs a mapping {{old: new}} or a function, got {type(names).__name__}")
        new_arr = _as_str_array(new, "new model names", labels=True)
        dup = _first_duplicate(new_arr)
        if dup is not None:
            raise LoglikMapError(f"renaming gives two models the name {dup[0]!r} ({old[dup[1]]!r} and {old[dup[2]]!r})")
        return self._wrap(self._data.assign_coords({MODEL_DIM: new_arr}))

    def assign_model_coords(self, coords: Mapping[str, Any] | None = None, **kwargs: Any) -> "LogLikelihoodMatrix":
        """Return the matrix with per-model coordinates added or replaced.

        Parameters
        ----------
        coords, **kwargs : mapping of str to array_like or scalar
            One entry per model (numbers, NaN for missing; or strings, ``""`` for missing),
            or a single value for every model; e.g. ``assign_model_coords(step=[0, 1000], family="pythia")``.

        Examples
        --------
        >>> import loglik_map as lm
        >>> m = lm.LogLikelihoodMatrix([[-10.0, -20.0], [-11.0, -19.0]], models=["a", "b"],
        ...                            texts=["t1", "t2"], n_bytes=[10, 20])
        >>> m.assign_model_coords(step=[0, 1000], family="pythia").data["step"].values.tolist()
        [0, 1000]
        """
        new: dict[str, Any] = {}
        for name, value in {**(coords or {}), **kwargs}.items():
            if not isinstance(name, str) or not name:
                raise LoglikMapError(f"coordinate names must be non-empty strings, got {name!r}")
            existing = self._data.coords.get(name)
            if existing is not None and existing.dims != (MODEL_DIM,):
                raise LoglikMapError(f"{name!r} is already a {'text' if existing.dims == (TEXT_DIM,) else 'cell'} "
                                     "coordinate; choose another name")
            if np.ndim(value) == 0:
                value = [value] * self.n_models
            new[name] = (MODEL_DIM, _coord_array(name, value, self.n_models, MODEL_DIM))
        return self._wrap(self._data.assign_coords(new))

    # ------------------------------------------------------------------ combination
    @classmethod
    def concat(cls, matrices: Sequence["LogLikelihoodMatrix"], *,
               allow_mixed_scoring: bool = False) -> "LogLikelihoodMatrix":
        """Stack the models of several matrices scored on the same texts.

        Texts must match exactly (ids, order and byte lengths) and model names must not repeat;
        otherwise the error names the first difference. Per-model coordinates missing from
        some matrices are filled with NaN (numeric) or ``""`` (strings), cell coordinates with
        NaN; attrs that differ between matrices are dropped.

        Rows must have been scored alike: the same ``convention``, and either all or none of
        them cut by truncation (a row without these records, e.g. built by hand, matches any).
        Clipped matrices are refused unless all were clipped together (concatenate first, then
        clip once).

        Parameters
        ----------
        matrices : sequence of LogLikelihoodMatrix
        allow_mixed_scoring : bool, default False
            Stack rows scored under different conventions or long-text handling anyway (each
            row keeps its own ``convention`` coordinate; the ``convention`` attr becomes
            ``"mixed"``).
        """
        matrices = list(matrices)
        if not matrices:
            raise LoglikMapError("concat needs at least one matrix")
        for i, m in enumerate(matrices):
            if not isinstance(m, LogLikelihoodMatrix):
                raise LoglikMapError(f"item {i} is a {type(m).__name__}, not a LogLikelihoodMatrix")
        first = matrices[0]
        seen: dict[str, int] = {}
        for i, m in enumerate(matrices):
            if m.n_texts != first.n_texts:
                raise LoglikMapError(f"matrix {i} has {m.n_texts} texts, matrix 0 has {first.n_texts}")
            diff = np.flatnonzero(m.texts != first.texts)
            if diff.size:
                k = diff[0]
                raise LoglikMapError(
                    f"text ids differ: matrix {i} has {m.texts[k]!r} at position {k}, matrix 0 has {first.texts[k]!r}"
                )
            diff = np.flatnonzero(m.n_bytes != first.n_bytes)
            if diff.size:
                k = diff[0]
                raise LoglikMapError(
                    f"byte lengths differ for text {first.texts[k]!r}: {m.n_bytes[k]} in matrix {i}, "
                    f"{first.n_bytes[k]} in matrix 0"
                )
            for name in m.models:
                if name in seen:
                    raise LoglikMapError(f"model {name!r} appears in matrix {seen[name]} and matrix {i}")
                seen[name] = i
        # per-text coordinates must agree where shared
        text_coords = {n: c.values for n, c in first.data.coords.items() if c.dims == (TEXT_DIM,) and n not in _RESERVED}
        for i, m in enumerate(matrices[1:], start=1):
            for n, c in m.data.coords.items():
                if c.dims != (TEXT_DIM,) or n in _RESERVED:
                    continue
                if n in text_coords and not np.array_equal(text_coords[n], c.values):
                    raise LoglikMapError(f"text coordinate {n!r} differs between matrix 0 and matrix {i}")
                text_coords.setdefault(n, c.values)
        # per-model coordinates: union, filled where missing
        names: list[str] = []
        for m in matrices:
            for n, c in m.data.coords.items():
                if c.dims == (MODEL_DIM,) and n != MODEL_DIM and n not in names:
                    names.append(n)
        model_coords = {}
        for n in names:
            pieces = [m.data[n].values if n in m.data.coords else None for m in matrices]
            is_str = any(p is not None and p.dtype == object for p in pieces)
            model_coords[n] = np.concatenate(
                [
                    p if p is not None else np.full(m.n_models, "" if is_str else np.nan, dtype=object if is_str else float)
                    for p, m in zip(pieces, matrices)
                ]
            )
        cell_names: list[str] = []
        for m in matrices:
            cell_names += [n for n, c in m.data.coords.items() if c.ndim == 2 and n not in cell_names]
        cell_coords = {
            n: np.concatenate([m.data[n].values if n in m.data.coords else np.full(m.shape, np.nan) for m in matrices])
            for n in cell_names
        }
        _check_clipped_together(matrices)
        attrs = dict(first.attrs)
        for m in matrices[1:]:
            for key in list(attrs):
                if key not in m.attrs or not np.array_equal(np.asarray(m.attrs[key]), np.asarray(attrs[key])):
                    del attrs[key]
        if len({str(m.attrs.get("convention", "")) for m in matrices} - {""}) > 1:
            attrs["convention"] = "mixed"  # only reached with allow_mixed_scoring; rows keep their own
        out = cls(
            np.concatenate([m.values for m in matrices], axis=0),
            models=np.concatenate([m.models for m in matrices]),
            texts=first.texts,
            n_bytes=first.n_bytes,
            model_coords=model_coords,
            text_coords=text_coords,
            cell_coords=cell_coords,
            attrs=attrs,
        )
        if not allow_mixed_scoring:
            origin = np.repeat(np.arange(len(matrices)), [m.n_models for m in matrices])
            conflict = scoring_conflict(out.data, origin)
            if conflict is not None:
                raise LoglikMapError(f"cannot concatenate: {conflict}, or pass allow_mixed_scoring=True")
        return out

    # ------------------------------------------------------------------ preprocessing & summaries
    def clip(self, lower_quantile: float = 0.02) -> "LogLikelihoodMatrix":
        """Raise every entry below the ``lower_quantile`` quantile of all entries to that quantile.

        This is the paper's preprocessing (SPEC §3, App. E.1: bottom 2 %), which bounds the
        influence of a few texts a model finds extremely unlikely. It is done once: clipping a
        clipped matrix again at the same quantile returns it unchanged with a warning, at
        another quantile is refused.

        Parameters
        ----------
        lower_quantile : float, default 0.02
            Quantile in [0, 1) of all K·N entries (linear interpolation, as ``numpy.quantile``).

        Returns
        -------
        LogLikelihoodMatrix
            A new matrix; attrs record ``clip_lower_quantile`` and ``clip_value_nats``.
        """
        q = float(lower_quantile)
        if not 0.0 <= q < 1.0:
            raise LoglikMapError(f"lower_quantile must be in [0, 1), got {lower_quantile}")
        done = self.attrs.get("clip_lower_quantile")
        if done is not None:
            if float(done) == q:
                warnings.warn(f"this matrix is already clipped at the {q:g} quantile "
                              f"({float(self.attrs.get('clip_value_nats', np.nan)):.6g} nats); clipping again "
                              "would raise the next tail, so it is returned unchanged", LoglikMapWarning, stacklevel=2)
                return self
            raise LoglikMapError(f"this matrix is already clipped at the {float(done):g} quantile; clipping it again "
                                 f"at {q:g} would compound the two. Clip the raw matrix once, at the quantile you want")
        threshold = float(np.quantile(self.values, q))
        da = self._data.copy(data=np.maximum(self.values, threshold))
        da.attrs = {**da.attrs, "clip_lower_quantile": q, "clip_value_nats": threshold}
        return self._wrap(da)

    def truncated_texts(self) -> np.ndarray:
        """Ids of the texts that lost tokens to truncation under any model (``long_texts="truncate"``).

        Read from the scorers' ``n_tokens_dropped`` cell coordinate; empty when it is absent.
        """
        return self.texts[dropped_tokens(self._data).sum(axis=0) > 0]

    def check_not_truncated(self, action: str = "this matrix") -> None:
        """Raise a :class:`~loglik_map.LoglikMapError` if any text lost tokens to truncation.

        Used by :class:`~loglik_map.ModelMap`, :meth:`entropy` and :meth:`cross_entropy`; the
        message says how many texts and which models are affected, and what to do.
        """
        message = truncation_message(self._data, action)
        if message is not None:
            raise LoglikMapError(message)

    def cross_entropy(self, *, allow_truncated: bool = False) -> xr.DataArray:
        """Per-model cross-entropy estimate −mean_s ℓ_i(x_s) / (B̄ ln 2), in bits/byte.

        Parameters
        ----------
        allow_truncated : bool, default False
            Compute it even if some texts lost tokens to truncation (then it is too low: the
            log-likelihood of a prefix is divided by the bytes of the whole text).

        Returns
        -------
        xarray.DataArray
            Dims ``("model",)``, with the model coordinates.
        """
        if not allow_truncated:
            self.check_not_truncated("cross_entropy()")
        with np.errstate(over="ignore", invalid="ignore"):
            ce = -self._data.mean(TEXT_DIM) / (self.mean_bytes * LN2)
        if not np.isfinite(ce.values).all():
            bad = self.models[int(np.argmax(~np.isfinite(ce.values)))]
            raise LoglikMapError(f"the cross-entropy of model {bad!r} overflows float64: its log-likelihoods are far "
                                 "larger in magnitude than any real text's; check the matrix's values and units")
        ce.attrs = {"units": "bits/byte", "quantity": "cross-entropy estimate"}
        return ce.rename("cross_entropy")

    def entropy(self, *, allow_truncated: bool = False) -> float:
        """Text-entropy estimate: the smallest per-model cross-entropy, in bits/byte (SPEC §2, App. C).

        Since −mean ℓ_i ≈ H(p_0) + KL(p_0, p_i), the best model gives an upper bound close to
        the entropy of the text source (≈ 0.71 bits/byte for the paper's Pile texts). Refused
        if texts lost tokens to truncation, unless ``allow_truncated=True``.
        """
        if not allow_truncated:
            self.check_not_truncated("entropy()")
        return float(self.cross_entropy(allow_truncated=True).min())

    # ------------------------------------------------------------------ storage
    def save(self, path: str | PathLike[str], *, overwrite: bool = False) -> None:
        """Save to netCDF (path ending in ``.nc``) or Zarr (``.zarr``); see :func:`loglik_map.open_matrix`.

        The save is complete or absent: it is written beside ``path``, flushed and checked against
        a checksum stored with it, then renamed in; a killed save leaves the previous data. Of
        several processes saving to one path at once, one wins and the others get a
        :class:`~loglik_map.LoglikMapError` (see :func:`loglik_map.io.save_matrix`).

        Parameters
        ----------
        path : path
            Destination; the format follows the suffix.
        overwrite : bool, default False
            Refuse to replace an existing file or store unless True.
        """
        from .io import save_matrix

        save_matrix(self, path, overwrite=overwrite)


def _check_clipped_together(matrices: Sequence["LogLikelihoodMatrix"]) -> None:
    """Refuse to stack clipped matrices unless all carry the same clip (pieces of one clipped matrix)."""
    states = [(m.attrs.get("clip_lower_quantile"), m.attrs.get("clip_value_nats")) for m in matrices]
    if all(q is None for q, _ in states) or len(set(states)) == 1:
        return
    i = next(k for k, st in enumerate(states) if st != states[0])
    describe = ["not clipped" if q is None else f"clipped at the {q:g} quantile ({v:.6g} nats)" for q, v in states]
    raise LoglikMapError(f"matrix 0 is {describe[0]} and matrix {i} is {describe[i]}; concatenate the raw "
                         "matrices, then clip the result once")
