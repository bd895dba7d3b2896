"""How a :class:`~loglik_map.Trajectory` lays out its points: groups, order, excluded points, grids.

Excluded points and the checkpoint grid follow the paper authors' scripts (shimo-lab/modelmap,
``kl-scale/``): an excluded checkpoint is kept aside (never a start, a target or bridged), and a
grid slot without a point is a gap.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core._groups import ordered_groups
from ..core._matrix import MODEL_DIM
from ..errors import LoglikMapError

__all__ = ["TrajectoryLayout", "build_layout"]


@dataclass(frozen=True)
class TrajectoryLayout:
    """Points of one or more trajectories, by index into the source's models.

    Attributes
    ----------
    names : numpy.ndarray
        Every point's name (model label).
    positions : numpy.ndarray
        Every point's position (the ``order`` coordinate, float; NaN for points on no trajectory).
    excluded : numpy.ndarray of bool
        Which points are excluded.
    groups : dict
        Trajectory label → indices of its kept points, in order.
    dropped : dict
        Trajectory label → indices of its excluded points.
    grids : dict
        Trajectory label → its checkpoint grid (sorted positions).
    order : str
        Name of the position coordinate.
    by : str or None
        The model coordinate that splits the points into trajectories (None: one trajectory).
    """

    names: np.ndarray
    positions: np.ndarray
    excluded: np.ndarray
    groups: dict[Hashable, np.ndarray]
    dropped: dict[Hashable, np.ndarray]
    grids: dict[Hashable, np.ndarray]
    order: str
    by: str | None = None


def build_layout(coords: Any, names: np.ndarray, order: str, by: str | None, exclude: Iterable[str] | None,
                 grid: Any) -> TrajectoryLayout:
    """Split the points into trajectories, order them, and place them on their grids.

    Parameters
    ----------
    coords : mapping of coordinates
        The points' model coordinates (``order`` and ``by`` among them).
    names : numpy.ndarray
        Point (model) names.
    order, by, exclude, grid
        As for :class:`~loglik_map.Trajectory`.

    Returns
    -------
    TrajectoryLayout
    """
    if order not in coords or coords[order].dims != (MODEL_DIM,):
        raise LoglikMapError(f"no model coordinate {order!r} to order the trajectory by")
    values = np.asarray(coords[order].values)
    if values.dtype.kind not in "iuf":
        raise LoglikMapError(f"model coordinate {order!r} must be numeric, got dtype {values.dtype}")
    values = values.astype(float)
    if by is not None and (by not in coords or coords[by].dims != (MODEL_DIM,)):
        raise LoglikMapError(f"no model coordinate {by!r} to split trajectories by")
    names = np.asarray(names, dtype=object)
    excluded = set(exclude or ())
    unknown = excluded - set(names)
    if unknown:
        raise LoglikMapError(f"excluded models not on the map: {sorted(unknown)[:3]}; exclude only mapped models "
                             "(to leave out checkpoints already removed from the matrix, pass their steps in "
                             "grid= instead)")
    is_excluded = np.isin(names, list(excluded))
    labels = coords[by].values.tolist() if by is not None else ["all"] * len(names)
    groups: dict[Hashable, np.ndarray] = {}
    dropped: dict[Hashable, np.ndarray] = {}
    grids: dict[Hashable, np.ndarray] = {}
    for g, every in ordered_groups(values, labels, names, order, split_hint=by is None).items():
        kept = every[~is_excluded[every]]
        if kept.size == 0:
            continue
        groups[g] = kept
        dropped[g] = every[is_excluded[every]]
        grids[g] = _group_grid(grid, g, values[every], order)
    if not groups:
        raise LoglikMapError(f"no model has a finite {order!r} (excluded models do not count)")
    return TrajectoryLayout(names, values, is_excluded, groups, dropped, grids, order, by)


def _group_grid(grid: Any, g: Hashable, positions: np.ndarray, order: str) -> np.ndarray:
    if grid is None:
        return positions
    if isinstance(grid, Mapping):
        if g not in grid:
            raise LoglikMapError(f"grid= has no entry for trajectory {g!r}; give one for every trajectory")
        grid = grid[g]
    arr = np.unique(np.asarray(grid, dtype=float))
    if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all():
        raise LoglikMapError(f"grid must be a non-empty list of finite {order} values")
    off = positions[~np.isin(positions, arr)]
    if off.size:
        raise LoglikMapError(f"trajectory {g!r} has points off the grid ({order} = {off[0]:g}, …); add them to "
                             "grid= or leave grid=None")
    return arr
