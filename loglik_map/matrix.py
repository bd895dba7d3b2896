"""``LogLikelihoodMatrix``: the labelled K × N matrix of log-likelihoods (nats), model × text."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Hashable, Iterable, Mapping, Sequence
from os import PathLike
from typing import Any

import numpy as np
import xarray as xr

from .errors import LoglikMapError
from .units import LN2

__all__ = ["LogLikelihoodMatrix", "MODEL_DIM", "TEXT_DIM"]

MODEL_DIM = "model"
TEXT_DIM = "text"
_RESERVED = {MODEL_DIM, TEXT_DIM, "n_bytes"}
_ATTR_SCALARS = (str, int, float, np.integer, np.floating)


def _library_version() -> str:
    from . import __version__

    return __version__


def _as_str_array(values: Iterable[Any], what: str) -> np.ndarray:
    arr = np.asarray(list(values) if not isinstance(values, np.ndarray) else values, dtype=object)
    if arr.ndim != 1:
        raise LoglikMapError(f"{what} must be one-dimensional, got shape {arr.shape}")
    out = np.empty(arr.shape, dtype=object)
    for i, v in enumerate(arr):
        if isinstance(v, bytes):
            v = v.decode("utf-8")
        if not isinstance(v, (str, np.str_)):
            raise LoglikMapError(f"{what} must be strings; entry {i} is {v!r} ({type(v).__name__})")
        out[i] = str(v)
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
        try:
            return _as_str_array(arr, f"{dim} coordinate {name!r}")
        except LoglikMapError:
            raise LoglikMapError(
                f"{dim} coordinate {name!r} mixes types; use numbers (NaN for missing) or strings "
                f"('' for missing) so it can be saved to netCDF/Zarr"
            ) from None
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


def _validate_values(values: np.ndarray, models: np.ndarray, texts: np.ndarray) -> None:
    finite = np.isfinite(values)
    if not finite.all():
        bad = np.argwhere(~finite)
        i, k = bad[0]
        raise LoglikMapError(
            f"log-likelihoods must be finite: {len(bad)} entries are not, the first for model "
            f"{models[i]!r} and text {texts[k]!r} (value {values[i, k]})"
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
        models_arr = _as_str_array(models, "models")
        texts_arr = _as_str_array(texts, "texts")
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
        _validate_values(vals, models_arr, texts_arr)

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

    def sel(self, indexers: Mapping[str, Any] | None = None, **kwargs: Any) -> "LogLikelihoodMatrix":
        """Select models/texts by label (scalars keep the dimension); see :meth:`xarray.DataArray.sel`."""
        idx = self._keep_dims({**(indexers or {}), **kwargs})
        try:
            da = self._data.sel(idx)
        except KeyError as err:
            raise LoglikMapError(f"label not found: {err}") from None
        return self._checked_subset(da)

    def isel(self, indexers: Mapping[str, Any] | None = None, **kwargs: Any) -> "LogLikelihoodMatrix":
        """Select models/texts by position (scalars keep the dimension); see :meth:`xarray.DataArray.isel`."""
        idx = self._keep_dims({**(indexers or {}), **kwargs})
        return self._checked_subset(self._data.isel(idx))

    def where_models(self, **criteria: Any) -> "LogLikelihoodMatrix":
        """Keep the models whose coordinates equal the given values, e.g. ``where_models(family="pythia")``.

        A list value keeps models matching any of its entries.
        """
        keep = np.ones(self.n_models, dtype=bool)
        for name, value in criteria.items():
            if name not in self._data.coords or self._data[name].dims != (MODEL_DIM,):
                raise LoglikMapError(f"no model coordinate {name!r}")
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
        missing = [t for t in ids if t not in set(self.texts)]
        if missing:
            raise LoglikMapError(f"{len(missing)} text ids are not in the matrix, e.g. {missing[0]!r}")
        keep = ~np.isin(self.texts, ids)
        return self.isel(text=np.flatnonzero(keep))

    def drop_models(self, names: Iterable[str]) -> "LogLikelihoodMatrix":
        """Return the matrix without the models ``names`` (every name must be present)."""
        names = list(names)
        missing = [m for m in names if m not in set(self.models)]
        if missing:
            raise LoglikMapError(f"{len(missing)} models are not in the matrix, e.g. {missing[0]!r}")
        return self.isel(model=np.flatnonzero(~np.isin(self.models, names)))

    # ------------------------------------------------------------------ combination
    @classmethod
    def concat(cls, matrices: Sequence["LogLikelihoodMatrix"]) -> "LogLikelihoodMatrix":
        """Stack the models of several matrices scored on the same texts.

        Texts must match exactly (ids, order and byte lengths) and model names must not repeat;
        otherwise the error names the first difference. Per-model coordinates missing from
        some matrices are filled with NaN (numeric) or ``""`` (strings), cell coordinates with
        NaN; attrs that differ between matrices are dropped.
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
        attrs = dict(first.attrs)
        for m in matrices[1:]:
            for key in list(attrs):
                if key not in m.attrs or not np.array_equal(np.asarray(m.attrs[key]), np.asarray(attrs[key])):
                    del attrs[key]
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
        return out

    # ------------------------------------------------------------------ preprocessing & summaries
    def clip(self, lower_quantile: float = 0.02) -> "LogLikelihoodMatrix":
        """Raise every entry below the ``lower_quantile`` quantile of all entries to that quantile.

        This is the paper's preprocessing (SPEC §3, App. E.1: bottom 2 %), which bounds the
        influence of a few texts a model finds extremely unlikely.

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
        threshold = float(np.quantile(self.values, q))
        da = self._data.copy(data=np.maximum(self.values, threshold))
        da.attrs = {**da.attrs, "clip_lower_quantile": q, "clip_value_nats": threshold}
        return self._wrap(da)

    def cross_entropy(self) -> xr.DataArray:
        """Per-model cross-entropy estimate −mean_s ℓ_i(x_s) / (B̄ ln 2), in bits/byte.

        Returns
        -------
        xarray.DataArray
            Dims ``("model",)``, with the model coordinates.
        """
        with np.errstate(over="ignore", invalid="ignore"):
            ce = -self._data.mean(TEXT_DIM) / (self.mean_bytes * LN2)
        if not np.isfinite(ce.values).all():
            bad = self.models[int(np.argmax(~np.isfinite(ce.values)))]
            raise LoglikMapError(f"the cross-entropy of model {bad!r} overflows float64: its log-likelihoods are far "
                                 "larger in magnitude than any real text's; check the matrix's values and units")
        ce.attrs = {"units": "bits/byte", "quantity": "cross-entropy estimate"}
        return ce.rename("cross_entropy")

    def entropy(self) -> float:
        """Text-entropy estimate: the smallest per-model cross-entropy, in bits/byte (SPEC §2, App. C).

        Since −mean ℓ_i ≈ H(p_0) + KL(p_0, p_i), the best model gives an upper bound close to
        the entropy of the text source (≈ 0.71 bits/byte for the paper's Pile texts).
        """
        return float(self.cross_entropy().min())

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
