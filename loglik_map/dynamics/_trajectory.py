"""``Trajectory``: models ordered by training step (or layer) on a map, and their diffusion (:ref:`method-trajectories`).

Excluded points and the checkpoint grid follow the paper authors' scripts (shimo-lab/modelmap,
``kl-scale/``): an excluded checkpoint is skipped as a start and as a target and is never bridged
(no pair or window jumps over it as if it were not there); diffusion windows are the next ``W``
slots of the checkpoint grid (``fig5.py``), not the next ``W`` remaining points, unless
``window_on="remaining"``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .._repr import SHOWN, ReprMixin, Summary, first_labels
from ..core._matrix import MODEL_DIM, LogLikelihoodMatrix
from ..core._modelmap import ModelMap
from ..errors import LoglikMapError, UnknownLabelError, WrongTypeError
from ._distances import DistanceProvider, MapDistances, PrecomputedDistances
from ._fits import PowerLawFit, fit_power_law
from ._layout import build_layout
from ._uncertainty import exponent_intervals

__all__ = ["Trajectory"]

_WINDOW_ON = ("grid", "remaining")


def _check_window_on(window_on: str) -> str:
    if window_on not in _WINDOW_ON:
        raise LoglikMapError(f"window_on must be 'grid' (the paper's next grid slots) or 'remaining' "
                             f"(the next saved points), got {window_on!r}")
    return window_on



class Trajectory(ReprMixin):
    """Points of a model map ordered by a numeric model coordinate.

    Checkpoints are ordered by ``step``, logit-lens rows by ``layer``; optionally there is one
    trajectory per value of ``by`` (size, seed…).

    Squared distances between points are KL divergences in bits/byte (for a map) or whatever a
    precomputed distance matrix holds (:meth:`from_distances`, e.g. weight-space ‖W_t − W_s‖²).
    Results name their position axis after ``order`` (``step``, ``layer``, …).

    Parameters
    ----------
    source : ModelMap or LogLikelihoodMatrix
        A matrix is mapped first (:class:`ModelMap`).
    order : str
        Numeric model coordinate giving the position along the trajectory. Models whose value
        is NaN are left out. Non-uniform spacing (Pythia's 0, 1, 2, 4, …, 512, 1000, 2000, …) is fine.
    by : str, optional
        Model coordinate splitting the models into separate trajectories.
    exclude : iterable of str, optional
        Models (labels) to leave out as the paper leaves out Pythia-1B step 116k: never a start,
        never a target, and never bridged — the points on either side of an excluded point are
        not consecutive (:meth:`step_kl`), and a diffusion window that covers it has one point
        fewer instead of reaching one slot further.
    grid : array_like or mapping, optional
        The checkpoint grid the windows and consecutive pairs are defined on. Default: each
        trajectory's own positions, excluded points included. Give the saving schedule (e.g.
        Pythia's 154 steps) — one array for all trajectories or a mapping ``{group: array}`` —
        when checkpoints are missing from the matrix (removed beforehand, never saved): a grid
        slot without a point is then a gap, exactly like an excluded point. Every point must lie
        on its grid.

    Examples
    --------
    >>> import numpy as np, loglik_map as lm
    >>> rng = np.random.default_rng(0)
    >>> walk = np.cumsum(rng.normal(size=(30, 400)), axis=0) - 800
    >>> m = lm.LogLikelihoodMatrix(walk, models=[f"ckpt{i}" for i in range(30)],
    ...     texts=[f"t{k}" for k in range(400)], n_bytes=np.full(400, 1000),
    ...     model_coords={"step": np.arange(30) * 1000})
    >>> fit = lm.Trajectory(m).diffusion_exponent(t0=5000, window=10)
    >>> 0.7 < fit.exponent < 1.3     # a random walk is Brownian: c ≈ 1
    True
    >>> lm.Trajectory(m, exclude=["ckpt8"]).diffusion_exponent(t0=5000, window=10).n_points
    9
    """

    __slots__ = ("_distances", "_layout")

    def __init__(self, source: ModelMap | LogLikelihoodMatrix, order: str = "step", by: str | None = None, *,
                 exclude: Iterable[str] | None = None, grid: Any = None) -> None:
        if isinstance(source, LogLikelihoodMatrix):
            source = ModelMap(source)
        if not isinstance(source, ModelMap):
            raise WrongTypeError(f"Trajectory needs a ModelMap or LogLikelihoodMatrix, got {type(source).__name__} "
                                 "(for a matrix of squared distances use Trajectory.from_distances)")
        self._init(MapDistances(source), order, by, exclude, grid)

    def _init(self, distances: DistanceProvider, order: str, by: str | None, exclude: Iterable[str] | None,
              grid: Any) -> None:
        self._distances = distances
        self._layout = build_layout(distances.coords, distances.names, order, by, exclude, grid)

    @classmethod
    def from_distances(cls, distances: Any, steps: Sequence[float] | np.ndarray, *, models: Sequence[str] | None = None,
                       groups: Sequence[Hashable] | None = None, exclude: Iterable[str] | None = None,
                       grid: Any = None, unit: str = "", order: str = "step") -> Trajectory:
        """A trajectory over a precomputed squared-distance matrix (e.g. from :func:`weight_distances`).

        Parameters
        ----------
        distances : array_like or xarray.DataArray, shape (K, K)
            ``distances[i, j]`` is the squared distance between points i and j (NaN where unknown).
        steps : sequence of float, length K
            Position of each point (training step, or whatever ``order`` names).
        models : sequence of str, optional
            Point names (default: the DataArray's labels, else ``"p0"``, ``"p1"``, …).
        groups : sequence, optional
            Trajectory label of each point.
        exclude : iterable of str, optional
            Points to leave out, as for :class:`Trajectory`.
        grid : array_like or mapping, optional
            The checkpoint grid, as for :class:`Trajectory`.
        unit : str
            Unit of the distances, recorded in results.
        order : str, default "step"
            Name of the position axis in results.

        Returns
        -------
        Trajectory
            Without standard errors (``se`` is NaN in :meth:`step_kl`).
        """
        D = np.asarray(distances, dtype=float)
        if D.ndim != 2 or D.shape[0] != D.shape[1]:
            raise LoglikMapError(f"distances must be a square matrix, got shape {D.shape}")
        K = D.shape[0]
        if models is None:
            models = (list(map(str, distances[distances.dims[0]].values)) if isinstance(distances, xr.DataArray)
                      else [f"p{i}" for i in range(K)])
        if len(steps) != K or len(models) != K:
            raise LoglikMapError(f"need one step and one name per point ({K})")
        coords = {order: (MODEL_DIM, np.asarray(steps, dtype=float))}
        if groups is not None:
            coords["group"] = (MODEL_DIM, np.asarray(list(groups), dtype=object))
        da = xr.DataArray(np.zeros(K), dims=(MODEL_DIM,), coords={MODEL_DIM: np.asarray(models, dtype=object), **coords})
        traj = cls.__new__(cls)
        traj._init(PrecomputedDistances(D, da.coords, unit), order, "group" if groups is not None else None, exclude,
                   grid)
        return traj

    # ------------------------------------------------------------------ access
    _names = property(lambda self: self._layout.names)
    _order = property(lambda self: self._layout.positions)
    _excluded = property(lambda self: self._layout.excluded)
    _groups = property(lambda self: self._layout.groups)
    _dropped = property(lambda self: self._layout.dropped)
    _grids = property(lambda self: self._layout.grids)
    _order_name = property(lambda self: self._layout.order)

    @property
    def groups(self) -> list[Hashable]:
        """Trajectory labels (values of ``by``; ``["all"]`` without ``by``)."""
        return list(self._groups)

    @property
    def order(self) -> str:
        """Name of the model coordinate giving positions (``step``, ``layer``, …)."""
        return self._order_name

    @property
    def excluded(self) -> np.ndarray:
        """Names of the excluded models."""
        return self._names[self._excluded]

    def _key(self, group: Hashable | None) -> Hashable:
        if group is None:
            if len(self._groups) != 1:
                raise LoglikMapError(f"several trajectories ({self.groups[:4]}…); pass group=")
            return next(iter(self._groups))
        if group not in self._groups:
            raise UnknownLabelError(f"no trajectory {group!r}; there are {self.groups}")
        return group

    def _group(self, group: Hashable | None) -> np.ndarray:
        return self._groups[self._key(group)]

    def models(self, group: Hashable | None = None) -> np.ndarray:
        """Model names along a trajectory, in order (excluded models left out).

        Parameters
        ----------
        group : optional
            Which trajectory (a value of ``by``; needed when there are several).

        Returns
        -------
        numpy.ndarray
            Model names along the trajectory, in order.
        """
        return self._names[self._group(group)]

    def positions(self, group: Hashable | None = None) -> np.ndarray:
        """Positions (``order`` values: steps, layers, …) along a trajectory (excluded points left out).

        Parameters
        ----------
        group : optional
            Which trajectory (a value of ``by``; needed when there are several).

        Returns
        -------
        numpy.ndarray
            The ``order`` values of the kept points, in order.
        """
        return self._order[self._group(group)]

    def grid(self, group: Hashable | None = None) -> np.ndarray:
        """The checkpoint grid of a trajectory (see ``grid=``); slots without a kept point are gaps.

        Parameters
        ----------
        group : optional
            Which trajectory (a value of ``by``; needed when there are several).

        Returns
        -------
        numpy.ndarray
            The grid positions, gaps included.
        """
        return self._grids[self._key(group)]

    def _summary(self) -> Summary:
        o = self._order_name
        sizes = ", ".join(f"{g}: {len(i)}" for g, i in list(self._groups.items())[:SHOWN])
        more = f", … ({len(self._groups)} in all)" if len(self._groups) > SHOWN else ""
        kept = np.concatenate(list(self._groups.values()))
        span = f"{self._order[kept].min():g} to {self._order[kept].max():g}"
        slots = sum(int(grid.size) for grid in self._grids.values())
        gaps = slots - int(kept.size)
        by = self._layout.by
        source = self._distances.describe()
        return Summary("Trajectory", ((o, int(kept.size)),), self._distances.scale(None)[1] or "unitless", (
            ("trajectories", f"{sizes}{more} points" + (f" (by {by})" if by else "")),
            (o, span),
            ("excluded", first_labels(self.excluded)),
            ("grid gaps", f"{gaps} of {slots} grid slots without a kept point" if gaps else ""),
            ("from", source),
        ))

    def _kl_se(self, i: int, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """KL (squared distance) and SE from point ``i`` to points ``j``; SE NaN for distances."""
        return self._distances.kl_se(i, np.asarray(j, dtype=np.int64))

    def _scale(self, unit: str | None) -> tuple[float, str]:
        return self._distances.scale(unit)

    def _transitions(self, g: Hashable, bridge: bool) -> list[tuple[int, int]]:
        idx = self._groups[g]
        pairs = list(itertools.pairwise(idx))
        if bridge:
            return pairs
        slot = {float(v): k for k, v in enumerate(self._grids[g])}
        return [(a, b) for a, b in pairs if slot[self._order[b]] == slot[self._order[a]] + 1]

    # ------------------------------------------------------------------ consecutive KL
    def step_kl(self, *, unit: str | None = None, bridge: bool = False) -> xr.Dataset:
        """KL (squared distance) between consecutive points, with its SE (:ref:`method-trajectories`, Fig. 4).

        Parameters
        ----------
        unit : {"bits/byte", "nats"}, optional
            For a map (distance-only trajectories keep their own unit).
        bridge : bool, default False
            By default a pair must be adjacent on the grid: no pair jumps over an excluded point
            or a gap (the authors' ``calc_kl.py`` and ``preprocess.py``). ``True`` pairs
            consecutive remaining points instead (their ``fig4.py`` plots the two-step KL across
            Pythia-1B step 116k this way).

        Returns
        -------
        xarray.Dataset
            Over a ``transition`` dimension: ``kl`` and ``se`` (NaN for distance-only
            trajectories), with coordinates ``group``, ``model``, ``model_next``, ``<order>`` and
            ``<order>_next`` (e.g. ``step``/``step_next``, ``layer``/``layer_next``). The value at
            position t is the KL between t and the next point.
        """
        scale, unit = self._scale(unit)
        rows = []
        for g in self._groups:
            for a, b in self._transitions(g, bridge):
                kl, se = (float(v[0]) for v in self._kl_se(a, np.array([b])))
                rows.append((g, self._names[a], self._names[b], self._order[a], self._order[b], kl * scale, se * scale))
        if not rows:
            raise LoglikMapError("no two consecutive points on any trajectory (every pair is split by an excluded "
                                 "point or a gap, or trajectories have a single point)")
        gs, ma, mb, sa, sb, kls, ses = (list(column) for column in zip(*rows))
        o = self._order_name
        coords = {"group": ("transition", np.array(gs, dtype=object)), "model": ("transition", np.array(ma, dtype=object)),
                  "model_next": ("transition", np.array(mb, dtype=object)), o: ("transition", np.array(sa)),
                  f"{o}_next": ("transition", np.array(sb))}
        return xr.Dataset({"kl": ("transition", np.array(kls)), "se": ("transition", np.array(ses))}, coords=coords,
                          attrs={"units": unit, "order": o, "bridge": int(bridge)})

    # ------------------------------------------------------------------ displacement and diffusion
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
            return exponent_intervals(self, window, min_start, group, window_on=window_on,
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
