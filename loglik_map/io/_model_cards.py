"""Model cards: the ``base_model`` metadata of local folders and hub models, and the lineage it gives."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import LoglikMapError, require_extra

__all__ = ["lineage", "read_base_model"]


def _front_matter(text: str) -> dict[str, Any]:
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        return {}
    import yaml

    data = yaml.safe_load(text[3:end])
    return data if isinstance(data, dict) else {}


def read_base_model(model: str | PathLike[str], *, token: str | None = None) -> list[str]:
    """The ``base_model`` entries of a model card.

    Parameters
    ----------
    model : str or path
        A local model folder (its README.md front matter is read) or a hub id (its card is
        read through huggingface_hub, installed with the ``models`` extra).
    token : str, optional
        Hub token for gated or private models.

    Returns
    -------
    list of str
        The card's ``base_model`` entries; empty when there is none.
    """
    path = Path(model)
    if path.is_dir():
        readme = path / "README.md"
        meta = _front_matter(readme.read_text(encoding="utf-8")) if readme.is_file() else {}
    else:
        ModelCard = require_extra("huggingface_hub", "models", "reading hub model cards").ModelCard
        try:
            meta = ModelCard.load(str(model), token=token).data.to_dict()
        except Exception as err:
            raise LoglikMapError(f"cannot read the model card of {model!r}: {type(err).__name__}: {err}") from err
    base = meta.get("base_model")
    if base is None:
        return []
    return [str(b) for b in (base if isinstance(base, list) else [base])]


def lineage(models: Sequence[str | PathLike[str]], *, follow: bool = False, token: str | None = None,
            max_depth: int = 10) -> pd.DataFrame:
    """Parent → child links from model cards' ``base_model`` metadata (the fine-tuning pairs of :ref:`method-scale`).

    Parameters
    ----------
    models : sequence of hub ids or folders
        The models whose cards are read.
    follow : bool
        Also read the cards of parents outside ``models`` to compute depths further up.
    token : str, optional
        Hub token for gated cards.
    max_depth : int
        Stop following a chain after this many generations (guards against cycles).

    Returns
    -------
    pandas.DataFrame
        One row per model: ``model``, ``parent`` (None for roots and for merges), ``n_parents``,
        ``merge`` (several base models — excluded from fine-tuning pairs), ``depth`` (generations
        from the root along single-parent links).
    """
    names = [str(m) for m in models]
    parents: dict[str, list[str]] = {m: read_base_model(m, token=token) for m in names}

    def parents_of(m: str) -> list[str]:
        if m not in parents:
            parents[m] = read_base_model(m, token=token) if follow else []
        return parents[m]

    def depth(m: str) -> int:
        d, cur = 0, m
        seen = {m}
        while d < max_depth:
            ps = parents_of(cur)
            if len(ps) != 1 or ps[0] in seen:
                break
            cur = ps[0]
            seen.add(cur)
            d += 1
        return d

    rows = []
    for m in names:
        ps = parents[m]
        rows.append({"model": m, "parent": ps[0] if len(ps) == 1 else None, "n_parents": len(ps),
                     "merge": len(ps) > 1, "depth": depth(m)})
    return pd.DataFrame(rows)
