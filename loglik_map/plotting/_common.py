"""What every figure shares: matplotlib on demand, new axes whose layout keeps labels inside, plain ticks."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np

from ..errors import require_extra

__all__ = ["new_axes", "plain_ticks", "pyplot", "symlog_ticks"]

#: Round numbers above the linear part of a symlog KL axis: 1, 2, 5 × 10^k.
_ROUND = [m * 10.0**k for k in range(-8, 9) for m in (1, 2, 5)]


def pyplot() -> Any:
    """:mod:`matplotlib.pyplot` (the ``plot`` extra), imported on first use."""
    return require_extra("matplotlib.pyplot", "plot", "plotting")


def new_axes(ax: Any, projection: str | None = None, figsize: tuple[float, float] = (6.0, 5.0)) -> Any:
    """``ax`` itself, or the axes of a new figure with the constrained layout.

    The constrained layout sizes the axes so that tick labels, axis labels, colour bars and point
    labels stay inside the figure, also when it is saved (``fig.savefig``) without
    ``bbox_inches="tight"``. Pass ``ax=`` to draw into a figure of your own (its layout is yours:
    ``plt.figure(layout="constrained")`` keeps the same guarantee).
    """
    if ax is not None:
        return ax
    fig = pyplot().figure(figsize=figsize, layout="constrained")
    return fig.add_subplot(projection=projection)


def plain_ticks(axis: Any) -> None:
    """Label an axis's major ticks as plain decimals (``0.02``, ``0.1``, ``1``, ``1000``), its minor ticks not at all."""
    ticker = require_extra("matplotlib.ticker", "plot", "plotting")
    axis.set_major_formatter(ticker.FuncFormatter(lambda value, _pos: np.format_float_positional(
        float(value), precision=6, unique=True, trim="-")))
    axis.set_minor_formatter(ticker.NullFormatter())


@cache
def _symlog_locator() -> type:
    ticker = require_extra("matplotlib.ticker", "plot", "plotting")

    class RoundSymlogLocator(ticker.Locator):  # type: ignore[name-defined]
        """Round ticks on the linear part ``[0, linthresh]`` of a symlog axis (evenly spaced; only its
        ends when more than two decades follow), then 1, 2, 5 × 10^k above it (1 × 10^k alone when
        those would be more than eight)."""

        def __init__(self, linthresh: float) -> None:
            self.linthresh = float(linthresh)

        def __call__(self):
            return self.tick_values(*self.axis.get_view_interval())

        def tick_values(self, vmin, vmax):
            lo, hi = sorted((float(vmin), float(vmax)))
            top = min(hi, self.linthresh)
            decades = np.log10(hi / self.linthresh) if hi > self.linthresh else 0.0
            # the linear part takes about one decade's height: fewer ticks there the more decades follow
            linear = [lo, top] if decades > 2 else ticker.MaxNLocator(2 if decades > 0 else 4).tick_values(lo, top)
            ticks = [float(v) for v in linear if lo <= v <= top]
            above = [v for v in _ROUND if max(lo, self.linthresh) < v <= hi]
            if len(above) > 8:
                above = [v for v in above if np.isclose(np.log10(v), np.round(np.log10(v)))]
            return ticks + above

    return RoundSymlogLocator


def symlog_ticks(axis: Any, linthresh: float) -> None:
    """Put a symlog axis's major ticks on round numbers, labelled plainly.

    matplotlib's own symlog locator leaves the linear part unlabelled or labels it at arbitrary
    values such as ``2.99649×10⁻²``.
    """
    axis.set_major_locator(_symlog_locator()(linthresh))
    plain_ticks(axis)
