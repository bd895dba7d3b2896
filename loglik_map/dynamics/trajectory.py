"""``Trajectory``: models ordered by training step (or layer) on a map, and their diffusion (:ref:`method-trajectories`).

Excluded points and the checkpoint grid follow the paper authors' scripts (shimo-lab/modelmap,
``kl-scale/``): an excluded checkpoint is skipped as a start and as a target and is never bridged
(no pair or window jumps over it as if it were not there); diffusion windows are the next ``W``
slots of the checkpoint grid (``fig5.py``), not the next ``W`` remaining points.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from .._repr import SHOWN, ReprMixin, Summary, first_labels
from ..core.kernels import pairs_kl_se
from ..core.matrix import MODEL_DIM, LogLikelihoodMatrix
from ..core.modelmap import ModelMap
from ..errors import LoglikMapError, UnknownLabelError, WrongTypeError
from ..units import check_unit, nats_per_bit_per_byte
from ._diffusion import TrajectoryDiffusion
from ._layout import build_layout

__all__ = ["Trajectory"]



@dataclass(frozen=True)
class _Distances:
    """What :meth:`Trajectory.from_distances` builds a trajectory from (instead of a map)."""

    squared: np.ndarray
    coords: Any
    unit: str


class Trajectory(TrajectoryDiffusion, ReprMixin):
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

    __slots__ = ("_D", "_X", "_layout", "_nats_per_bit", "_unit")

    def __init__(self, source: ModelMap | LogLikelihoodMatrix, order: str = "step", by: str | None = None, *,
                 exclude: Iterable[str] | None = None, grid: Any = None) -> None:
        if isinstance(source, LogLikelihoodMatrix):
            source = ModelMap(source)
        if isinstance(source, _Distances):  # from_distances
            self._X: np.ndarray | None = None
            self._D: np.ndarray | None = source.squared
            self._unit = source.unit
            self._nats_per_bit = math.nan
            coords, names = source.coords, source.coords[MODEL_DIM].values
        elif isinstance(source, ModelMap):
            self._X, self._D = source.points.values, None
            self._unit = "bits/byte"
            self._nats_per_bit = nats_per_bit_per_byte(source.mean_bytes)
            coords, names = source.points.coords, source.models
        else:
            raise WrongTypeError(f"Trajectory needs a ModelMap or LogLikelihoodMatrix, got {type(source).__name__}")
        self._layout = build_layout(coords, names, order, by, exclude, grid)

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
        return cls(_Distances(D, da.coords, unit), order, "group" if groups is not None else None,  # type: ignore[arg-type]
                   exclude=exclude, grid=grid)

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
        source = (f"model map over {self._X.shape[1]} texts" if self._X is not None
                  else "precomputed squared distances")
        return Summary("Trajectory", ((o, int(kept.size)),), self._unit or "unitless", (
            ("trajectories", f"{sizes}{more} points" + (f" (by {by})" if by else "")),
            (o, span),
            ("excluded", first_labels(self.excluded)),
            ("grid gaps", f"{gaps} of {slots} grid slots without a kept point" if gaps else ""),
            ("from", source),
        ))

    def _kl_se(self, i: int, j: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """KL (squared distance) and SE from point ``i`` to points ``j``; SE NaN for distances."""
        j = np.asarray(j, dtype=np.int64)
        if self._X is not None:
            return pairs_kl_se(self._X, np.full(j.size, i), j)
        assert self._D is not None  # a trajectory holds either points or distances
        return self._D[i, j], np.full(j.size, math.nan)

    def _scale(self, unit: str | None) -> tuple[float, str]:
        if self._X is None:
            return 1.0, self._unit
        unit = check_unit(unit or "bits/byte")
        return (1.0 if unit == "bits/byte" else self._nats_per_bit), unit

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
