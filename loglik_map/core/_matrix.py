"""``LogLikelihoodMatrix``: the labelled K × N matrix of log-likelihoods (nats), model × text."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from os import PathLike
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._labels import unknown_labels_error
from .._repr import ReprMixin, Summary, clip_text, conventions_text, distinct_text, first_labels
from .._units import LN2
from ..errors import LoglikMapError, LoglikMapWarning, WrongTypeError
from ._combine import concat_dataarrays
from ._lazy import exact_quantile, is_dask
from ._scoring_checks import dropped_tokens, row_conventions, truncation_message
from ._validation import (
    MODEL_DIM,
    TEXT_DIM,
    as_str_array,
    build_dataarray,
    coord_array,
    dataarray_parts,
    first_duplicate,
)
from ._weights import text_weights, weighted_mean, weights_text

__all__ = ["MODEL_DIM", "STORAGE", "TEXT_DIM", "LogLikelihoodMatrix"]

#: How matrices are saved and the published data read: :mod:`loglik_map.io` registers its
#: functions here when it is imported (``import loglik_map`` does), so the core never imports
#: the storage code (the import graph points one way: io → core).
STORAGE: dict[str, Callable[..., Any]] = {}


def _storage(name: str) -> Callable[..., Any]:
    try:
        return STORAGE[name]
    except KeyError:
        raise LoglikMapError(f"storage is not set up: import loglik_map (or loglik_map.io) before calling {name}") from None


class LogLikelihoodMatrix(ReprMixin):
    """Log-likelihoods log p_i(x_s) of K models on N texts, in nats, labelled with xarray.

    Parameters
    ----------
    values : array_like, shape (K, N)
        ``values[i, s]`` is the log-likelihood in nats of text ``s`` under model ``i``
        (a sum over the text's scored tokens; :ref:`method-loglik`).
    models : sequence of str, length K
        Unique model names (hub ids, folder names, ``"name@step1000"``, …).
    texts : sequence of str, length N
        Unique text ids, e.g. from :func:`loglik_map.texts.text_id`.
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
        ``created`` are filled in unless given. ``units="bits"`` converts the values to nats
        (× ln 2; recorded in ``units_converted_from``); units other than nats or bits are refused.

    Attributes
    ----------
    data : xarray.DataArray
        The matrix with dims ``("model", "text")``.

    References
    ----------
    Oyama, M., Yamagiwa, H., Takase, Y., and Shimodaira, H. (2025). *Mapping 1,000+ Language
    Models via the Log-Likelihood Vector.* Proceedings of ACL 2025 (:ref:`method-references`).

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
        models: Sequence[str] | np.ndarray,
        texts: Sequence[str] | np.ndarray,
        n_bytes: Any,
        model_coords: Mapping[str, Any] | None = None,
        text_coords: Mapping[str, Any] | None = None,
        cell_coords: Mapping[str, Any] | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> None:
        self._data = build_dataarray(values, models, texts, n_bytes, model_coords, text_coords, cell_coords, attrs)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dataarray(cls, da: xr.DataArray) -> LogLikelihoodMatrix:
        """Build a matrix from a DataArray with dims ``("model", "text")`` and an ``n_bytes`` coordinate.

        Any other coordinate along ``model``, ``text`` or both (a cell coordinate) is kept, and so
        are the attrs.
        The input is validated exactly as the constructor validates its arguments.

        Parameters
        ----------
        da : xarray.DataArray
            Log-likelihoods, dims ``("model", "text")``: in nats, or in bits if its ``units``
            attribute says so (then converted to nats).

        Returns
        -------
        LogLikelihoodMatrix
        """
        # the DataArray's own attrs win; defaults (units, version, creation time) fill the gaps;
        # log-likelihoods in bits are converted to nats
        return cls(**dataarray_parts(da), attrs=dict(da.attrs))

    @classmethod
    def _wrap(cls, da: xr.DataArray) -> LogLikelihoodMatrix:
        """Wrap an already validated DataArray (internal; no copy, no checks)."""
        new = cls.__new__(cls)
        new._data = da
        return new

    @classmethod
    def from_modelmap(cls, loglik_path: str | PathLike[str], texts_path: str | PathLike[str], *,
                      trust_pickle: bool = False) -> LogLikelihoodMatrix:
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
            Text ids from :func:`loglik_map.texts.text_id`, so the matrix aligns with texts you score
            yourself; ``domain`` (the Pile subset) and the index fields become text coordinates.

        Examples
        --------
        Convert the published pickle once, then read the safe copy (or save the matrix itself)::

            from loglik_map.io import convert_modelmap_pickle
            convert_modelmap_pickle("log-likelihood_1018.pkl", "modelmap-1018.npz", trust_pickle=True)
            m = lm.LogLikelihoodMatrix.from_modelmap("modelmap-1018.npz", "texts-10k-pile.jsonl")
            m.save("modelmap-1018.nc")      # checksummed; later: lm.open_matrix("modelmap-1018.nc")
        """
        return _storage("read_modelmap")(loglik_path, texts_path, trust_pickle=trust_pickle)

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
        """Mean UTF-8 length B̄ of the texts, in bytes (weighted by a ``text_weight`` coordinate, if any)."""
        return float(weighted_mean(self.n_bytes, text_weights(self._data)))

    @property
    def shape(self) -> tuple[int, int]:
        """(K, N): number of models and of texts."""
        k, n = self._data.shape
        return k, n

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

    def _summary(self) -> Summary:
        k, n = self.shape
        dims = {name: [str(c) for c, v in self._data.coords.items() if v.dims == (name,) and c != name]
                for name in (MODEL_DIM, TEXT_DIM)}
        cells = [str(c) for c, v in self._data.coords.items() if v.ndim == 2]
        truncated = dropped_tokens(self._data).per_text > 0
        return Summary("LogLikelihoodMatrix", ((MODEL_DIM, k), (TEXT_DIM, n)), f"nats, {self._data.dtype}", (
            ("size", f"{k} models × {n} texts, mean {self.mean_bytes:.1f} bytes/text"),
            ("models", first_labels(self.models)),
            ("texts", first_labels(self.texts)),
            ("model coords", ", ".join(dims[MODEL_DIM]) or "—"),
            ("text coords", ", ".join(dims[TEXT_DIM])),
            ("cell coords", ", ".join(cells)),
            ("range", f"not computed (dask-backed, chunks {self._data.data.chunksize})" if is_dask(self._data.data)
             else f"[{self.values.min():.4g}, {self.values.max():.4g}] nats"),
            ("clip", clip_text(self.attrs)),
            ("text weights", weights_text(self._data)),
            ("preprocessing", str(self.attrs.get("preprocessing", ""))),
            ("convention", conventions_text(self.attrs, row_conventions(self._data))),
            ("scorer", str(self.attrs.get("scorer", ""))),
            ("dtype", distinct_text(self._model_coord("dtype"))),
            ("quantization", distinct_text(self._model_coord("quantization"))),
            ("truncated", f"{int(truncated.sum())} texts lost tokens (see truncated_texts())" if truncated.any() else ""),
        ))

    def to_pandas(self) -> pd.DataFrame:
        """The matrix as a wide :class:`pandas.DataFrame`: one row per model, one column per text, nats.

        Coordinates are left out (see :meth:`to_dataframe` for a tidy table that keeps them).

        Returns
        -------
        pandas.DataFrame
            Index ``model``, columns ``text``, values in nats.

        Examples
        --------
        >>> import loglik_map as lm
        >>> m = lm.LogLikelihoodMatrix([[-10.0, -20.0], [-11.0, -19.0]], models=["a", "b"],
        ...                            texts=["t1", "t2"], n_bytes=[10, 20])
        >>> m.to_pandas()  # doctest: +NORMALIZE_WHITESPACE
        text     t1    t2
        model
        a     -10.0 -20.0
        b     -11.0 -19.0
        """
        return self._data.reset_coords(drop=True).to_pandas()

    def to_dataframe(self, name: str = "loglik") -> pd.DataFrame:
        """The matrix as a tidy :class:`pandas.DataFrame`: one row per (model, text), nats.

        Parameters
        ----------
        name : str, default "loglik"
            Name of the log-likelihood column.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``(model, text)``; columns ``name`` and every coordinate (``n_bytes``,
            the model, text and cell coordinates). ``df.attrs["units"]`` is ``"nats"``.
        """
        df = self._data.to_dataframe(name=name)
        df.attrs = {"units": "nats"}
        return df

    def identical(self, other: LogLikelihoodMatrix) -> bool:
        """Whether ``other`` has the same values, labels, coordinates and attrs.

        Parameters
        ----------
        other : LogLikelihoodMatrix
            The matrix to compare with.

        Returns
        -------
        bool
            Whether values, coordinates and attrs are all equal.
        """
        return isinstance(other, LogLikelihoodMatrix) and self._data.identical(other._data)

    # ------------------------------------------------------------------ selection (labels checked, never empty)

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
            raise unknown_labels_error(list(pd.unique(pd.Series(missing, dtype=object))), list(known), dim)

    def sel(self, indexers: Mapping[str, Any] | None = None, **kwargs: Any) -> LogLikelihoodMatrix:
        """Select models/texts by label (scalars keep the dimension); see :meth:`xarray.DataArray.sel`.

        Parameters
        ----------
        indexers : mapping, optional
            ``{"model": labels, "text": ids}``; a scalar keeps the dimension (length 1).
        **kwargs
            The same, as keywords: ``sel(model=["a", "b"])``.

        Returns
        -------
        LogLikelihoodMatrix
            Unknown labels raise :class:`~loglik_map.errors.UnknownLabelError` naming them and the
            closest existing labels; an empty selection is refused.
        """
        idx = self._keep_dims({**(indexers or {}), **kwargs})
        for dim, wanted in idx.items():
            self._check_labels(dim, wanted)
        return self._checked_subset(self._data.sel(idx))

    def isel(self, indexers: Mapping[str, Any] | None = None, **kwargs: Any) -> LogLikelihoodMatrix:
        """Select models/texts by position (scalars keep the dimension); see :meth:`xarray.DataArray.isel`.

        Parameters
        ----------
        indexers : mapping, optional
            ``{"model": positions, "text": positions}``.
        **kwargs
            The same, as keywords: ``isel(text=slice(0, 100))``.

        Returns
        -------
        LogLikelihoodMatrix
            A new matrix of the selected rows and columns.
        """
        idx = self._keep_dims({**(indexers or {}), **kwargs})
        return self._checked_subset(self._data.isel(idx))

    def _model_coord(self, name: str) -> np.ndarray | None:
        """A per-model coordinate's values, or None when there is none."""
        coord = self._data.coords.get(name)
        return coord.values if coord is not None and coord.dims == (MODEL_DIM,) else None

    def _model_coord_names(self) -> list[str]:
        return [str(n) for n, c in self._data.coords.items() if c.dims == (MODEL_DIM,) and n != MODEL_DIM]

    def where_models(self, **criteria: Any) -> LogLikelihoodMatrix:
        """Keep the models whose coordinates equal the given values, e.g. ``where_models(family="pythia")``.

        Parameters
        ----------
        **criteria
            ``coordinate=value``; a list value keeps models matching any of its entries. An
            unknown coordinate raises :class:`~loglik_map.errors.UnknownLabelError`.

        Returns
        -------
        LogLikelihoodMatrix
            A new matrix of the models whose coordinates match.
        """
        keep = np.ones(self.n_models, dtype=bool)
        for name, value in criteria.items():
            if name not in self._data.coords or self._data[name].dims != (MODEL_DIM,):
                raise unknown_labels_error([name], self._model_coord_names(), "model coordinate")
            coord = self._data[name].values
            allowed = value if isinstance(value, (list, tuple, set, np.ndarray)) else [value]
            keep &= np.isin(coord, list(allowed))
        return self.isel(model=np.flatnonzero(keep))

    def _checked_subset(self, da: xr.DataArray) -> LogLikelihoodMatrix:
        if da.sizes[MODEL_DIM] == 0 or da.sizes[TEXT_DIM] == 0:
            raise LoglikMapError(f"the selection is empty (shape {da.shape})")
        return self._wrap(da)

    def _drop(self, dim: str, labels: Iterable[str]) -> LogLikelihoodMatrix:
        labels = list(labels)
        self._check_labels(dim, labels)
        return self._checked_subset(self._data.drop_sel({dim: labels}))

    def drop_texts(self, ids: Iterable[str]) -> LogLikelihoodMatrix:
        """Return the matrix without the texts ``ids``.

        Parameters
        ----------
        ids : iterable of str
            Text ids, every one in the matrix (an unknown id raises
            :class:`~loglik_map.errors.UnknownLabelError` naming the closest ones).

        Returns
        -------
        LogLikelihoodMatrix
            A new matrix without those texts (B̄ and N recomputed).
        """
        return self._drop(TEXT_DIM, ids)

    def drop_models(self, names: Iterable[str]) -> LogLikelihoodMatrix:
        """Return the matrix without the models ``names``.

        Parameters
        ----------
        names : iterable of str
            Model names, every one in the matrix.

        Returns
        -------
        LogLikelihoodMatrix
            A new matrix without those models.
        """
        return self._drop(MODEL_DIM, names)

    def rename_models(self, names: Mapping[str, str] | Callable[[str], str]) -> LogLikelihoodMatrix:
        """Return the matrix with new model names.

        Parameters
        ----------
        names : mapping or callable
            ``{old: new}`` for the models to rename (every ``old`` must exist; others keep their
            name), or a function applied to every name.

        Returns
        -------
        LogLikelihoodMatrix
            Two models given one name are refused.

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
            raise WrongTypeError(f"rename_models needs a mapping {{old: new}} or a function, got {type(names).__name__}")
        new_arr = as_str_array(new, "new model names", labels=True)
        dup = first_duplicate(new_arr)
        if dup is not None:
            raise LoglikMapError(f"renaming gives two models the name {dup[0]!r} ({old[dup[1]]!r} and {old[dup[2]]!r})")
        return self._wrap(self._data.assign_coords({MODEL_DIM: new_arr}))

    def assign_model_coords(self, coords: Mapping[str, Any] | None = None, **kwargs: Any) -> LogLikelihoodMatrix:
        """Return the matrix with per-model coordinates added or replaced.

        Parameters
        ----------
        coords, **kwargs : mapping of str to array_like or scalar
            One entry per model (numbers, NaN for missing; or strings, ``""`` for missing),
            or a single value for every model; e.g. ``assign_model_coords(step=[0, 1000], family="pythia")``.

        Returns
        -------
        LogLikelihoodMatrix
            A new matrix with the coordinates added or replaced.

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
            new[name] = (MODEL_DIM, coord_array(name, value, self.n_models, MODEL_DIM))
        return self._wrap(self._data.assign_coords(new))

    # ------------------------------------------------------------------ clipping, truncation, entropies (bits/byte)

    def clip(self, lower_quantile: float = 0.02) -> LogLikelihoodMatrix:
        """Raise every entry below the ``lower_quantile`` quantile of all entries to that quantile.

        This is the paper's preprocessing (:ref:`method-preprocessing`: bottom 2 %), which bounds the
        influence of a few texts a model finds extremely unlikely. It is done once: clipping a
        clipped matrix again at the same quantile returns it unchanged with a warning, at
        another quantile is refused.

        Parameters
        ----------
        lower_quantile : float, default 0.02
            Quantile in [0, 1) of all K·N entries (linear interpolation, as ``numpy.quantile``).
            Exact for a dask-backed matrix too (a radix selection in 2–4 passes over the
            chunks, equal to ``numpy.quantile`` bit for bit); the clipped matrix stays lazy.

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
        values = self._data.data
        threshold = exact_quantile(values, q) if is_dask(values) else float(np.quantile(values, q))
        da = self._data.copy(data=np.maximum(values, threshold))
        da.attrs = {**da.attrs, "clip_lower_quantile": q, "clip_value_nats": threshold}
        return self._wrap(da)

    def truncated_texts(self) -> np.ndarray:
        """Ids of the texts that lost tokens to truncation under any model (``long_texts="truncate"``).

        Returns
        -------
        numpy.ndarray
            Text ids, read from the scorers' ``n_tokens_dropped`` cell coordinate; empty when it is
            absent.
        """
        return self.texts[dropped_tokens(self._data).per_text > 0]

    def check_not_truncated(self, action: str = "this matrix") -> None:
        """Raise a :class:`~loglik_map.LoglikMapError` if any text lost tokens to truncation.

        Used by :class:`~loglik_map.ModelMap`, :meth:`entropy` and :meth:`cross_entropy`; the
        message says how many texts and which models are affected, and what to do.

        Parameters
        ----------
        action : str, default "this matrix"
            What is refused, named in the message (e.g. ``"entropy()"``).
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
            weights = text_weights(self._data)
            mean = self._data.mean(TEXT_DIM) if weights is None else self._data.weighted(
                xr.DataArray(weights, dims=TEXT_DIM)).mean(TEXT_DIM)
            ce = (-mean / (self.mean_bytes * LN2)).compute()
        if not np.isfinite(ce.values).all():
            bad = self.models[int(np.argmax(~np.isfinite(ce.values)))]
            raise LoglikMapError(f"the cross-entropy of model {bad!r} overflows float64: its log-likelihoods are far "
                                 "larger in magnitude than any real text's; check the matrix's values and units")
        ce.attrs = {"units": "bits/byte", "quantity": "cross-entropy estimate"}
        return ce.rename("cross_entropy")

    def entropy(self, *, allow_truncated: bool = False) -> float:
        """Text-entropy estimate: the smallest per-model cross-entropy, in bits/byte (:ref:`text entropy <method-entropy>`).

        Since −mean ℓ_i ≈ H(p_0) + KL(p_0, p_i), the best model gives an upper bound close to
        the entropy of the text source (≈ 0.71 bits/byte for the paper's Pile texts). Refused
        if texts lost tokens to truncation, unless ``allow_truncated=True``.

        Parameters
        ----------
        allow_truncated : bool, default False
            Compute it even if some texts lost tokens to truncation (then it is too low).

        Returns
        -------
        float
            Bits/byte.
        """
        if not allow_truncated:
            self.check_not_truncated("entropy()")
        return float(self.cross_entropy(allow_truncated=True).min())

    # ------------------------------------------------------------------ combination
    @classmethod
    def concat(cls, matrices: Sequence[LogLikelihoodMatrix], *,
               allow_mixed_scoring: bool = False) -> LogLikelihoodMatrix:
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
            The matrices, scored on the same texts (same ids, order and byte lengths).
        allow_mixed_scoring : bool, default False
            Stack rows scored under different conventions or long-text handling anyway (each
            row keeps its own ``convention`` coordinate; the ``convention`` attr becomes
            ``"mixed"``).
        """
        matrices = list(matrices)
        for i, m in enumerate(matrices):
            if not isinstance(m, LogLikelihoodMatrix):
                raise WrongTypeError(f"item {i} is a {type(m).__name__}, not a LogLikelihoodMatrix")
        return cls.from_dataarray(concat_dataarrays(matrices, allow_mixed_scoring))

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
        _storage("save_matrix")(self, path, overwrite=overwrite)


