"""``Trajectory``: models ordered by training step (or layer) on a map, and their diffusion (SPEC §6)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from typing import Any

import numpy as np
import xarray as xr

from .errors import LoglikMapError
from .fits import PowerLawFit, fit_power_law
from .kernels import pair_kl_se
from .matrix import MODEL_DIM, LogLikelihoodMatrix
from .modelmap import ModelMap
from .units import check_unit, nats_per_bit_per_byte

__all__ = ["Trajectory"]

_ALL = "all"


class Trajectory:
    """Points of a model map ordered by a numeric model coordinate — checkpoints by ``step``,
    logit-lens rows by ``layer`` — optionally one trajectory per value of ``by`` (size, seed…).

    Squared distances between points are KL divergences in bits/byte (for a map) or whatever a
    precomputed distance matrix holds (:meth:`from_distances`, e.g. weight-space ‖W_t − W_s‖²).

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
        Models to skip as starts and as targets (e.g. outlier checkpoints).

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
    """

    __slots__ = ("_X", "_D", "_has_se", "_names", "_order", "_groups", "_by", "_order_name", "_unit", "_nats_per_bit",
                 "_n_texts")

    def __init__(self, source: ModelMap | LogLikelihoodMatrix, order: str = "step", by: str | None = None, *,
                 exclude: Iterable[str] | None = None) -> None:
        if isinstance(source, LogLikelihoodMatrix):
            source = ModelMap(source)
        if not isinstance(source, ModelMap):
            raise LoglikMapError(f"Trajectory needs a ModelMap or LogLikelihoodMatrix, got {type(source).__name__}")
        coords = source.coordinates
        self._X: np.ndarray | None = coords.values
        self._D: np.ndarray | None = None
        self._has_se = True
        self._unit = "bits/byte"
        self._nats_per_bit = nats_per_bit_per_byte(source.mean_bytes)
        self._n_texts = source.n_texts
        self._setup(coords.coords, source.models, order, by, exclude)

    @classmethod
    def from_distances(cls, distances: Any, steps: Sequence[float], *, models: Sequence[str] | None = None,
                       groups: Sequence[Hashable] | None = None, exclude: Iterable[str] | None = None,
                       unit: str = "") -> "Trajectory":
        """A trajectory over a precomputed squared-distance matrix (e.g. from :func:`weight_distances`).

        Parameters
        ----------
        distances : array_like or xarray.DataArray, shape (K, K)
            ``distances[i, j]`` is the squared distance between points i and j (NaN where unknown).
        steps : sequence of float, length K
            Position of each point (training step).
        models : sequence of str, optional
            Point names (default: the DataArray's labels, else ``"p0"``, ``"p1"``, …).
        groups : sequence, optional
            Trajectory label of each point.
        unit : str
            Unit of the distances, recorded in results.
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
        new = cls.__new__(cls)
        new._X = None
        new._D = D
        new._has_se = False
        new._unit = unit
        new._nats_per_bit = math.nan
        new._n_texts = 0
        coords = {"step": (MODEL_DIM, np.asarray(steps, dtype=float))}
        if groups is not None:
            coords["group"] = (MODEL_DIM, np.asarray(list(groups), dtype=object))
        da = xr.DataArray(np.zeros(K), dims=(MODEL_DIM,), coords={MODEL_DIM: list(models), **coords})
        new._setup(da.coords, np.asarray(models, dtype=object), "step", "group" if groups is not None else None, exclude)
        return new

    def _setup(self, coords: Any, names: np.ndarray, order: str, by: str | None, exclude: Iterable[str] | None) -> None:
        if order not in coords or coords[order].dims != (MODEL_DIM,):
            raise LoglikMapError(f"no model coordinate {order!r} to order the trajectory by")
        values = np.asarray(coords[order].values)
        if values.dtype.kind not in "iuf":
            raise LoglikMapError(f"model coordinate {order!r} must be numeric, got dtype {values.dtype}")
        values = values.astype(float)
        if by is not None and (by not in coords or coords[by].dims != (MODEL_DIM,)):
            raise LoglikMapError(f"no model coordinate {by!r} to split trajectories by")
        excluded = set(exclude or ())
        unknown = excluded - set(names)
        if unknown:
            raise LoglikMapError(f"excluded models not on the map: {sorted(unknown)[:3]}")
        labels = np.asarray(coords[by].values) if by is not None else np.full(len(names), _ALL, dtype=object)
        groups: dict[Hashable, np.ndarray] = {}
        for g in dict.fromkeys(labels.tolist()):
            idx = np.flatnonzero((labels == g) & np.isfinite(values) & ~np.isin(names, list(excluded)))
            if idx.size == 0:
                continue
            idx = idx[np.argsort(values[idx], kind="stable")]
            dup = np.flatnonzero(np.diff(values[idx]) == 0)
            if dup.size:
                raise LoglikMapError(f"trajectory {g!r} has two points at {order} = {values[idx[dup[0]]]:g}: "
                                     f"{names[idx[dup[0]]]!r} and {names[idx[dup[0] + 1]]!r}")
            groups[g] = idx
        if not groups:
            raise LoglikMapError(f"no model has a finite {order!r}")
        self._names = np.asarray(names, dtype=object)
        self._order = values
        self._groups = groups
        self._by = by
        self._order_name = order

    # ------------------------------------------------------------------ access
    @property
    def groups(self) -> list[Hashable]:
        """Trajectory labels (values of ``by``; ``["all"]`` without ``by``)."""
        return list(self._groups)

    def _group(self, group: Hashable | None) -> np.ndarray:
        if group is None:
            if len(self._groups) != 1:
                raise LoglikMapError(f"several trajectories ({self.groups[:4]}…); pass group=")
            return next(iter(self._groups.values()))
        if group not in self._groups:
            raise LoglikMapError(f"no trajectory {group!r}; there are {self.groups}")
        return self._groups[group]

    def models(self, group: Hashable | None = None) -> np.ndarray:
        """Model names along a trajectory, in order."""
        return self._names[self._group(group)]

    def steps(self, group: Hashable | None = None) -> np.ndarray:
        """Positions (``order`` values) along a trajectory."""
        return self._order[self._group(group)]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{g}: {len(i)}" for g, i in list(self._groups.items())[:4])
        return f"<Trajectory by {self._order_name!r}: {len(self._groups)} trajectory(ies) ({sizes})>"

    def _sqdist(self, i: int, j: np.ndarray) -> np.ndarray:
        if self._X is not None:
            d = self._X[j] - self._X[i]
            return np.einsum("ij,ij->i", d, d)
        return self._D[i, j]

    def _pair_se(self, i: int, j: int) -> float:
        return pair_kl_se(self._X[i], self._X[j])[1]

    def _scale(self, unit: str | None) -> tuple[float, str]:
        if self._X is None:
            return 1.0, self._unit
        unit = check_unit(unit or "bits/byte")
        return (1.0 if unit == "bits/byte" else self._nats_per_bit), unit

    # ------------------------------------------------------------------ consecutive KL
    def step_kl(self, *, unit: str | None = None) -> xr.Dataset:
        """KL (squared distance) between consecutive points, with its SE (SPEC §6, Fig. 4).

        Returns
        -------
        xarray.Dataset
            Over a ``transition`` dimension: ``kl`` and ``se`` (NaN for distance-only
            trajectories), with coordinates ``group``, ``model``, ``model_next``, ``step``,
            ``step_next``. The value at ``step`` t is the KL between t and the next saved point.
        """
        scale, unit = self._scale(unit)
        rows = []
        for g, idx in self._groups.items():
            for a, b in zip(idx[:-1], idx[1:]):
                kl = float(self._sqdist(a, np.array([b]))[0])
                se = self._pair_se(a, b) if self._has_se else math.nan
                rows.append((g, self._names[a], self._names[b], self._order[a], self._order[b], kl * scale, se * scale))
        if not rows:
            raise LoglikMapError("every trajectory has a single point; nothing consecutive")
        g, ma, mb, sa, sb, kl, se = map(list, zip(*rows))
        coords = {"group": ("transition", np.array(g, dtype=object)), "model": ("transition", np.array(ma, dtype=object)),
                  "model_next": ("transition", np.array(mb, dtype=object)), "step": ("transition", np.array(sa)),
                  "step_next": ("transition", np.array(sb))}
        return xr.Dataset({"kl": ("transition", np.array(kl)), "se": ("transition", np.array(se))}, coords=coords,
                          attrs={"units": unit, "order": self._order_name})

    # ------------------------------------------------------------------ displacement and diffusion
    def displacement(self, t0: float, group: Hashable | None = None, *, unit: str | None = None) -> xr.DataArray:
        """Squared distance ‖q_t − q_t0‖² for every saved t > t0 (bits/byte for a map).

        ``t0`` must be a saved (not excluded) point of the trajectory.
        """
        idx = self._group(group)
        pos = np.flatnonzero(self._order[idx] == t0)
        if pos.size == 0:
            raise LoglikMapError(f"t0 = {t0:g} is not a saved point of the trajectory (excluded points cannot start)")
        start = idx[pos[0]]
        later = idx[pos[0] + 1 :]
        scale, unit = self._scale(unit)
        d = self._sqdist(start, later) * scale
        return xr.DataArray(d, dims=("step",), coords={"step": self._order[later], MODEL_DIM: ("step", self._names[later])},
                            attrs={"units": unit, "t0": float(t0), "model_t0": str(self._names[start])},
                            name="displacement")

    def diffusion_exponent(self, t0: float, window: int = 10, group: Hashable | None = None) -> PowerLawFit:
        """Fit ``‖q_t − q_t0‖² ∝ |t − t0|^c`` over the next ``window`` saved points after ``t0`` (SPEC §6)."""
        if window < 2:
            raise LoglikMapError("window must be at least 2 points")
        disp = self.displacement(t0, group)[:window]
        if disp.size < window:
            raise LoglikMapError(f"only {disp.size} saved points after t0 = {t0:g}; window is {window}")
        return fit_power_law(disp["step"].values - t0, disp.values, t0=t0, window=window)

    def diffusion_exponents(self, window: int = 10, min_start: float | None = None,
                            group: Hashable | None = None) -> xr.Dataset:
        """c(t0) and r²(t0) for every valid start: a saved point ≥ ``min_start`` with a full window.

        Returns
        -------
        xarray.Dataset
            Over a ``start`` dimension: ``exponent``, ``r2``, ``stderr``, ``n_points``, with
            coordinates ``group`` and ``t0``. Combine with ``.where(ds.group == g, drop=True)``.
        """
        rows = []
        groups = self.groups if group is None else [group]
        for g in groups:
            idx = self._group(g)
            for k in range(len(idx) - window):
                t0 = self._order[idx[k]]
                if min_start is not None and t0 < min_start:
                    continue
                try:
                    fit = self.diffusion_exponent(t0, window, g)
                except LoglikMapError:
                    continue
                rows.append((g, t0, fit.exponent, fit.r2, fit.stderr, fit.n_points))
        if not rows:
            raise LoglikMapError(f"no start point has a full window of {window} saved points")
        g, t0, c, r2, se, n = map(list, zip(*rows))
        return xr.Dataset(
            {"exponent": ("start", np.array(c)), "r2": ("start", np.array(r2)), "stderr": ("start", np.array(se)),
             "n_points": ("start", np.array(n))},
            coords={"group": ("start", np.array(g, dtype=object)), "t0": ("start", np.array(t0))},
            attrs={"window": window, "order": self._order_name},
        )
