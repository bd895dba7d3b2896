"""Selecting, dropping and relabelling the models and texts of a :class:`~loglik_map.LogLikelihoodMatrix`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from .._labels import unknown_labels_error
from ..errors import LoglikMapError, WrongTypeError
from ._matrix_base import MatrixBase
from ._validation import MODEL_DIM, TEXT_DIM, as_str_array, coord_array, first_duplicate

if TYPE_CHECKING:
    from ._matrix import LogLikelihoodMatrix

__all__ = ["MatrixSelection"]


class MatrixSelection(MatrixBase):
    """The selection methods of :class:`~loglik_map.LogLikelihoodMatrix` (labels checked, never empty)."""

    __slots__ = ()

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
