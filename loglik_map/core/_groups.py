"""Models grouped by a label and ordered by a position: one function for trajectories, pair rules and outliers."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import pandas as pd

from ..errors import LoglikMapError

__all__ = ["ordered_groups", "ordered_unique"]


def ordered_unique(values: Sequence[Hashable] | np.ndarray) -> list[Hashable]:
    """The distinct values in order of first appearance (:func:`pandas.unique`).

    Parameters
    ----------
    values : sequence
        Hashable values (strings, numbers, tuples).

    Returns
    -------
    list

    Examples
    --------
    >>> ordered_unique(["b", "a", "b", "c"])
    ['b', 'a', 'c']
    """
    return pd.unique(pd.Series(list(values), dtype=object)).tolist()


def ordered_groups(positions: np.ndarray, labels: Sequence[Hashable], names: np.ndarray, order: str, *,
                   split_hint: bool = False) -> dict[Hashable, np.ndarray]:
    """Row indices per label (labels in order of first appearance), each group sorted by position.

    Rows whose position is not finite are left out, and so are groups left empty. Two rows of
    one group at the same position are an error naming both.

    Parameters
    ----------
    positions : ndarray, shape (K,)
        Position of each row (a training step, a layer); NaN for rows that have none.
    labels : sequence, length K
        Group label of each row (a value of ``by``, or a tuple of values).
    names : ndarray, shape (K,)
        Row names, for the error message.
    order : str
        Name of the position (``"step"``), for the error message.
    split_hint : bool
        Suggest ``by=`` in the error (when no grouping was given).

    Returns
    -------
    dict
        Label → indices of its rows, by increasing position.
    """
    codes, uniques = pd.factorize(pd.Series(list(labels), dtype=object), use_na_sentinel=False)  # first-seen order
    frame = pd.DataFrame({"code": codes, "position": np.asarray(positions, float)})
    frame = frame[np.isfinite(frame["position"].to_numpy())].sort_values("position", kind="stable")
    out: dict[Hashable, np.ndarray] = {}
    for code, rows in frame.groupby("code", sort=True):
        label = uniques[code]
        repeated = rows["position"].duplicated(keep=False).to_numpy()
        if repeated.any():
            a, b = rows.index[repeated][:2]
            raise LoglikMapError(f"trajectory {label!r} has two points at {order} = {positions[a]:g}: {names[a]!r} and "
                                 f"{names[b]!r}" + ("; pass by= to split the trajectories" if split_hint else ""))
        out[label] = rows.index.to_numpy()
    return out
