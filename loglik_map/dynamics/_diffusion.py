"""Displacement and diffusion exponents of a :class:`~loglik_map.Trajectory` (:ref:`method-trajectories`).

Diffusion windows are the next ``W`` slots of the checkpoint grid (the paper authors' ``fig5.py``),
not the next ``W`` remaining points, unless ``window_on="remaining"``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr

from ..core.matrix import MODEL_DIM
from ..errors import LoglikMapError
from .fits import PowerLawFit, fit_power_law
from .uncertainty import exponent_intervals

if TYPE_CHECKING:
    from ._layout import TrajectoryLayout

__all__ = ["TrajectoryDiffusion"]

_WINDOW_ON = ("grid", "remaining")


def _check_window_on(window_on: str) -> str:
    if window_on not in _WINDOW_ON:
        raise LoglikMapError(f"window_on must be 'grid' (the paper's next grid slots) or 'remaining' "
                             f"(the next saved points), got {window_on!r}")
    return window_on


class TrajectoryDiffusion:
    """The displacement and diffusion-exponent methods of :class:`~loglik_map.Trajectory`."""

    __slots__ = ()

    if TYPE_CHECKING:  # provided by Trajectory
        _layout: TrajectoryLayout
        _names: np.ndarray
        _order: np.ndarray
        _groups: dict[Hashable, np.ndarray]
        _dropped: dict[Hashable, np.ndarray]
        _grids: dict[Hashable, np.ndarray]
        _order_name: str

        @property
        def groups(self) -> list[Hashable]: ...
        def _key(self, group: Hashable | None) -> Hashable: ...
        def _scale(self, unit: str | None) -> tuple[float, str]: ...
        def _kl_se(self, i: int, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...

    def _start(self, t0: float, g: Hashable) -> int:
        pos = np.flatnonzero(self._order[self._groups[g]] == t0)
        if pos.size:
            return int(pos[0])
        name = self._excluded_at(g, t0)
        if name:
            raise LoglikMapError(f"t0 = {t0:g} is the excluded point {name!r}: an excluded checkpoint gives no "
                                 "estimate (the paper leaves it out)")
        raise LoglikMapError(f"t0 = {t0:g} is not a saved point of trajectory {g!r}")

    def _excluded_at(self, g: Hashable, t0: float) -> str:
        hit = self._dropped[g][self._order[self._dropped[g]] == t0]
        return str(self._names[hit[0]]) if hit.size else ""

    def _span(self, g: Hashable) -> tuple[float, float]:
        """First and last position of a trajectory, excluded points included."""
        pos = np.concatenate([self._order[self._groups[g]], self._order[self._dropped[g]]])
        return float(pos.min()), float(pos.max())

    def displacement(self, t0: float, group: Hashable | None = None, *, unit: str | None = None) -> xr.DataArray:
        """Squared distance ‖q_t − q_t0‖² for every kept point t > t0 (bits/byte for a map).

        Parameters
        ----------
        t0 : float
            Start; a kept (not excluded) point of the trajectory.
        group : optional
            Which trajectory (needed when there are several).
        unit : {"bits/byte", "nats"}, optional
            For a map (distance-only trajectories keep their own unit).

        Returns
        -------
        xarray.DataArray
            Over a dimension named after ``order``, with the later points' model names.
        """
        g = self._key(group)
        idx = self._groups[g]
        k = self._start(t0, g)
        later = idx[k + 1:]
        scale, unit = self._scale(unit)
        d = self._kl_se(idx[k], later)[0] * scale
        o = self._order_name
        return xr.DataArray(d, dims=(o,), coords={o: self._order[later], MODEL_DIM: (o, self._names[later])},
                            attrs={"units": unit, "t0": float(t0), "model_t0": str(self._names[idx[k]])},
                            name="displacement")

    def _window(self, g: Hashable, k: int, window: int, window_on: str) -> tuple[np.ndarray, np.ndarray] | str:
        """Lags and distances of the window after the ``k``-th kept point, or why there is none."""
        idx = self._groups[g]
        start = idx[k]
        t0 = self._order[start]
        if window_on == "remaining":
            targets = idx[k + 1:k + 1 + window]
            if targets.size < window:
                return f"only {targets.size} saved points after t0 = {t0:g}; window is {window}"
        else:
            grid = self._grids[g]
            slot = int(np.searchsorted(grid, t0))
            slots = grid[slot + 1:slot + 1 + window]
            if slots.size < window:
                return f"only {slots.size} grid slots after t0 = {t0:g}; window is {window}"
            if slots[-1] > self._span(g)[1]:
                return f"the window of {window} grid slots after t0 = {t0:g} runs past the trajectory's last point"
            targets = idx[np.isin(self._order[idx], slots)]
        return self._order[targets] - t0, self._kl_se(start, targets)[0]

    def diffusion_exponent(self, t0: float, window: int = 10, group: Hashable | None = None, *,
                           window_on: str = "grid") -> PowerLawFit:
        """Fit ``‖q_t − q_t0‖² ∝ |t − t0|^c`` over a window of ``window`` checkpoints after ``t0`` (:ref:`method-trajectories`).

        Parameters
        ----------
        t0 : float
            Start; a kept point of the trajectory (an excluded start has no estimate: error).
        window : int, default 10
            Window length W (the paper: 10 checkpoints, i.e. 10k steps at 1k spacing).
        group : optional
            Which trajectory (needed when there are several).
        window_on : {"grid", "remaining"}
            ``"grid"`` (default, the paper's ``fig5.py``): the next W slots of the grid; excluded
            points and gaps in them are dropped, so the fit may use fewer than W points over
            the same span. ``"remaining"``: the next W kept points, reaching further past an
            excluded point.

        Returns
        -------
        PowerLawFit
            ``n_points`` is the number of points fitted (non-positive distances are dropped).
        """
        _check_window_on(window_on)
        if window < 2:
            raise LoglikMapError("window must be at least 2 points")
        g = self._key(group)
        got = self._window(g, self._start(t0, g), window, window_on)
        if isinstance(got, str):
            raise LoglikMapError(got)
        return fit_power_law(*got, t0=t0, window=window)

    def diffusion_exponents(self, window: int = 10, min_start: float | None = None, group: Hashable | None = None,
                            *, window_on: str = "grid", n_boot: int | None = None, seed: int | None = 0,
                            confidence_level: float = 0.95) -> xr.Dataset:
        """The exponent c(t0) and r²(t0) for every start with a full window (Fig. 5 right, Table 3).

        With ``window_on="grid"`` (default, as the paper's ``fig5.py``) the starts are the grid
        slots ``t0 ≥ min_start`` of each trajectory whose W following slots lie within it; a
        start that is excluded or a gap gets NaN with a ``reason`` (the authors' arrays hold NaN
        there too), as does a window with fewer than two usable points. With
        ``window_on="remaining"`` the starts are the kept points with W kept points after them.

        Parameters
        ----------
        window : int, default 10
            Window length W.
        min_start : float, optional
            Leave out starts before it.
        group : optional
            One trajectory only (default: all).
        window_on : {"grid", "remaining"}
            As for :meth:`diffusion_exponent`.
        n_boot : int, optional
            Also give the regression's interval and a bootstrap-over-texts interval from this
            many resamples (:func:`loglik_map.exponent_intervals`).
        seed : int, optional
            Seed of the bootstrap.
        confidence_level : float, default 0.95
            Coverage of the intervals.

        Returns
        -------
        xarray.Dataset
            Over a ``start`` dimension: ``exponent``, ``r2``, ``se``, ``n_points``, ``reason``
            (``""`` where the fit exists), with coordinates ``group``, ``t0`` and ``model_t0``.
            Combine with ``.where(ds.group == g, drop=True)``; drop the NaN rows with
            ``ds.where(ds.reason == "", drop=True)``. With ``n_boot``, the intervals beside them.

        References
        ----------
        *Establishing a Scale for Kullback–Leibler Divergence in Language Models Across Various
        Settings* (ACL submission; :ref:`method-references`), §4 and Table 3.
        """
        if n_boot is not None:
            return exponent_intervals(self, window, min_start, group, window_on=window_on,  # type: ignore[arg-type]
                                      n_boot=n_boot, seed=seed, confidence_level=confidence_level)
        _check_window_on(window_on)
        if window < 2:
            raise LoglikMapError("window must be at least 2 points")
        rows = []
        for g in (self.groups if group is None else [self._key(group)]):
            rows += self._exponent_rows(g, window, min_start, window_on)
        if not rows:
            raise LoglikMapError(f"no start point has a full window of {window} "
                                 f"{'grid slots' if window_on == 'grid' else 'saved points'}")
        gs, t0, name, c, r2, se, n, why = (list(column) for column in zip(*rows))
        return xr.Dataset(
            {"exponent": ("start", np.array(c, dtype=float)), "r2": ("start", np.array(r2, dtype=float)),
             "se": ("start", np.array(se, dtype=float)), "n_points": ("start", np.array(n, dtype=int)),
             "reason": ("start", np.array(why, dtype=object))},
            coords={"group": ("start", np.array(gs, dtype=object)), "t0": ("start", np.array(t0, dtype=float)),
                    "model_t0": ("start", np.array(name, dtype=object))},
            attrs={"window": window, "order": self._order_name, "window_on": window_on},
        )

    def _exponent_rows(self, g: Hashable, window: int, min_start: float | None, window_on: str) -> list[tuple]:
        idx = self._groups[g]
        kept = {float(self._order[i]): k for k, i in enumerate(idx)}
        if window_on == "remaining":
            starts = [self._order[i] for i in idx[:max(len(idx) - window, 0)]]
        else:
            grid, (first, last) = self._grids[g], self._span(g)
            starts = [grid[s] for s in range(grid.size - window) if first <= grid[s] and grid[s + window] <= last]
        rows = []
        for t0 in starts:
            if min_start is not None and t0 < min_start:
                continue
            k = kept.get(float(t0))
            if k is None:
                gap = self._excluded_at(g, t0)
                why = f"excluded start ({gap})" if gap else "no saved point at this start"
                rows.append((g, t0, gap or "", math.nan, math.nan, math.nan, 0, why))
                continue
            got = self._window(g, k, window, window_on)
            try:
                if isinstance(got, str):
                    raise LoglikMapError(got)
                fit = fit_power_law(*got, t0=t0, window=window)
            except LoglikMapError as err:
                rows.append((g, t0, self._names[idx[k]], math.nan, math.nan, math.nan, 0, str(err)))
                continue
            rows.append((g, t0, self._names[idx[k]], fit.exponent, fit.r2, fit.se, fit.n_points, ""))
        return rows
