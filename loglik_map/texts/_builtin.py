"""Built-in data: the ``mini`` text set (openly licensed, shipped with the package)."""

from __future__ import annotations

import json
import lzma
from importlib import resources

from ..errors import LoglikMapError
from ._textset import TextSet

__all__ = ["DOMAINS", "licenses", "load_texts"]

#: Domains of the built-in texts (the ``domain`` coordinate, like the Pile's ``pile_set_name``).
DOMAINS = ("kjv", "shakespeare", "devils_dictionary", "wordnet", "python_docs")
_SPLITS = ("mini", "train")


def _records() -> list[dict]:
    with resources.files(__package__).joinpath("data/mini.jsonl.xz").open("rb") as raw:
        with lzma.open(raw, "rt", encoding="utf-8") as fh:
            return [json.loads(line) for line in fh]


def load_texts(name: str = "mini", *, domains: tuple[str, ...] | None = None) -> TextSet:
    """A built-in text set.

    Parameters
    ----------
    name : {"mini", "train"}
        ``"mini"``: 1,924 chunks of 257–1,024 bytes (up to 500 per domain, half of the smaller
        sources: the King James Bible, Shakespeare's plays, The Devil's Dictionary, WordNet
        glosses, the Python language reference), chunked as the paper's texts are (:ref:`method-loglik`). ``"train"``: 2,526
        further chunks of the same sources, disjoint from ``"mini"``, used to train
        :mod:`loglik_map.demo`.
    domains : tuple of str, optional
        Keep only these domains.

    Returns
    -------
    TextSet
        With ``domain`` labels; rebuild with ``python tools/build_mini.py``.
        Licences: :func:`licenses`.
    """
    if name not in _SPLITS:
        raise LoglikMapError(f"unknown text set {name!r}; built-in sets are {_SPLITS}")
    recs = [r for r in _records() if r["split"] == name]
    if domains is not None:
        unknown = set(domains) - set(DOMAINS)
        if unknown:
            raise LoglikMapError(f"unknown domains {sorted(unknown)}; domains are {DOMAINS}")
        recs = [r for r in recs if r["pile_set_name"] in domains]
    return TextSet([r["text"] for r in recs], domains=[r["pile_set_name"] for r in recs])


def licenses() -> str:
    """The licence notices of the built-in texts' sources.

    Returns
    -------
    str
        The text of ``LICENSES.txt``, one notice per source.
    """
    return resources.files(__package__).joinpath("data/LICENSES.txt").read_text(encoding="utf-8")
