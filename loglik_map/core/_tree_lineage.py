"""Groups of models to test on a tree: given ones, and the lineages of model cards (``base_model``).

A model card's lineage says "these models descend from that base"; on a tree the claim is that
the base (where it is mapped) and its descendants form a clade. :func:`lineage_clades` turns a
lineage table (:func:`loglik_map.io.lineage`: a ``model`` and ``parent`` per row) into those
groups; :func:`clade_hypotheses` checks groups against the map's models and gives each its bit
mask over the models, the form in which the bootstrap counts clades.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._labels import unknown_labels_error
from ..errors import LoglikMapError, WrongTypeError

__all__ = ["Hypotheses", "clade_hypotheses", "lineage_clades", "mask_of"]


@dataclass(frozen=True)
class Hypotheses:
    """Groups of models whose support is counted in every bootstrap replicate.

    Attributes
    ----------
    names : tuple of str
        One name per group (``"lineage of <base>"`` for a card lineage).
    members : tuple of tuple of str
        The models of each group, in the map's order.
    masks : tuple of int
        Each group as a bit mask over the map's models (bit i: model i is in it).
    parents : tuple of str or None
        The base model of a card lineage; None for a group given by hand.
    """

    names: tuple[str, ...] = ()
    members: tuple[tuple[str, ...], ...] = ()
    masks: tuple[int, ...] = ()
    parents: tuple[str | None, ...] = ()


def mask_of(members: Sequence[str], models: np.ndarray) -> int:
    """The bit mask over ``models`` of a group (an unknown name is refused)."""
    index = {str(m): i for i, m in enumerate(models)}
    missing = [m for m in members if str(m) not in index]
    if missing:
        raise unknown_labels_error(missing, list(models), "model", "on the map")
    mask = 0
    for m in members:
        mask |= 1 << index[str(m)]
    return mask


def lineage_clades(lineage: pd.DataFrame, models: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """The clades that model cards' lineages claim, among the mapped models.

    For every base model named as a parent (mapped or not): the mapped models descending from
    it through single-parent links, with the base itself when it is mapped. Groups of fewer than
    2 or of all the models claim nothing and are left out, as is a group equal to one already
    listed.

    Parameters
    ----------
    lineage : pandas.DataFrame
        Columns ``model`` and ``parent`` (None for a root or a merge), as :func:`loglik_map.io.lineage` gives.
    models : sequence of str
        The map's models; names are matched exactly.

    Returns
    -------
    dict
        ``"lineage of <base>"`` → the group's models, in the map's order.

    Examples
    --------
    >>> import pandas as pd
    >>> cards = pd.DataFrame({"model": ["base", "chat", "chat-v2", "other"],
    ...                       "parent": [None, "base", "chat", None]})
    >>> lineage_clades(cards, ["base", "chat", "chat-v2", "other"])
    {'lineage of base': ('base', 'chat', 'chat-v2'), 'lineage of chat': ('chat', 'chat-v2')}
    """
    if not isinstance(lineage, pd.DataFrame) or not {"model", "parent"} <= set(lineage.columns):
        raise WrongTypeError("a lineage is a DataFrame with the columns 'model' and 'parent' (loglik_map.io.lineage(...))")
    names = [str(m) for m in models]
    mapped = set(names)
    children: dict[str, list[str]] = {}
    for child, parent in zip(lineage["model"], lineage["parent"]):
        if parent is not None and not (isinstance(parent, float) and np.isnan(parent)):
            children.setdefault(str(parent), []).append(str(child))
    out: dict[str, tuple[str, ...]] = {}
    seen: set[frozenset[str]] = set()
    for base in children:
        group, stack = {base} & mapped, list(children[base])
        while stack:
            m = stack.pop()
            if m in group or m == base:
                continue
            if m in mapped:
                group.add(m)
            stack.extend(children.get(m, []))
        key = frozenset(group)
        if 2 <= len(group) < len(names) and key not in seen:
            seen.add(key)
            out[f"lineage of {base}"] = tuple(m for m in names if m in group)
    return out


def clade_hypotheses(clades: Mapping[str, Sequence[str]] | Sequence[Sequence[str]] | pd.DataFrame | None,
                     models: np.ndarray) -> Hypotheses:
    """Groups to test, checked against the map's models: a mapping name → models, a list of model lists, or a lineage table."""
    if clades is None:
        return Hypotheses()
    parents: list[str | None]
    if isinstance(clades, pd.DataFrame):
        groups = lineage_clades(clades, [str(m) for m in models])
        if not groups:
            raise LoglikMapError("the lineage claims no group of 2 or more (and fewer than all) mapped models; check "
                                 "that its model names are the map's")
        parents = [name.removeprefix("lineage of ") for name in groups]
    elif isinstance(clades, Mapping):
        groups = {str(k): tuple(str(m) for m in v) for k, v in clades.items()}
        parents = [None] * len(groups)
    elif isinstance(clades, Sequence) and not isinstance(clades, str):
        groups = {}
        for group in clades:
            if isinstance(group, str):
                raise WrongTypeError("clades= takes groups of models (lists of names), not single names")
            members = tuple(str(m) for m in group)
            groups[" + ".join(members)] = members
        parents = [None] * len(groups)
    else:
        raise WrongTypeError(f"clades= takes a mapping name → models, a list of model lists or a lineage DataFrame, "
                             f"got {type(clades).__name__}")
    order = {str(m): i for i, m in enumerate(models)}
    masks, members_out = [], []
    for name, members in groups.items():
        mask = mask_of(members, models)
        n = bin(mask).count("1")
        if not 2 <= n < len(models):
            raise LoglikMapError(f"group {name!r} has {n} distinct model(s); a clade to test needs from 2 to "
                                 f"{len(models) - 1} (fewer than all) models")
        masks.append(mask)
        members_out.append(tuple(sorted(set(members), key=order.__getitem__)))
    return Hypotheses(tuple(groups), tuple(members_out), tuple(masks), tuple(parents))
