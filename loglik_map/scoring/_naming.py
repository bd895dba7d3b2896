"""Where a model comes from and what its rows are called: local folder or hub id, short names, steps.

Torch-free: used when scorers and :class:`~loglik_map.ModelSpec` objects are made, before any
model is loaded.
"""

from __future__ import annotations

import numbers
import os
import re
from os import PathLike
from pathlib import Path
from typing import Any

from ..errors import LoglikMapError

__all__ = ["CHECKPOINT_FOLDER", "check_model_coords", "default_model_name", "local_folder", "merge_step", "step_of"]

#: Folder names of training checkpoints: ``step24`` (the zoo, Pythia-style), ``checkpoint-500``
#: (transformers' Trainer), ``ckpt_1000``, ``global_step300``, ``iter_2000``. Group 1 is the step.
CHECKPOINT_FOLDER = re.compile(r"^(?:step|checkpoint|ckpt|global_step|iter)[-_]?(\d+)$", re.IGNORECASE)
_REVISION_STEP = re.compile(r"^step(\d+)$")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
#: Coordinates the matrix or the scorers write themselves; ``coords=`` cannot set them.
_RECORDED = frozenset({"model", "text", "n_bytes", "n_tokens", "n_tokens_dropped", "source_model", "revision", "dtype",
                       "quantization", "convention", "long_texts", "n_texts_truncated", "layer", "parent_model"})


def _looks_like_a_path(source: str) -> bool:
    return (os.path.isabs(source) or source.startswith(("./", "../", "~", ".\\", "..\\")) or source in (".", "..")
            or source.count("/") > 1 or "\\" in source or not _HUB_ID.match(source))


def local_folder(source: str | PathLike[str]) -> Path | None:
    """The local folder a model is loaded from, or None for a hub id; refuses a path that does not exist.

    A ``PathLike``, an existing path, or a string that cannot be a hub id (absolute, ``./…``,
    ``~/…``, more than one ``/``) is a folder, and must exist: the error says "no such folder"
    before anything is looked up on the hub. Anything else (``"gpt2"``, ``"EleutherAI/pythia-70m"``)
    is a hub id.
    """
    text = os.fspath(source)
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise LoglikMapError(f"{text!r} is a file, not a model folder; give the folder that holds config.json")
        return path
    if isinstance(source, PathLike) or _looks_like_a_path(text):
        parent = next((p for p in path.parents if p.exists()), None)
        where = f" (the nearest existing folder is {str(parent)!r})" if parent is not None and str(parent) != "." else ""
        raise LoglikMapError(f"no such folder: {text!r}{where}; a hub id looks like 'owner/name'")
    return None


def _folder_label(folder: Path) -> str:
    """A folder's base name, with its parent's for checkpoint folders (``run/step24`` -> ``run@step24``)."""
    folder = Path(os.path.abspath(folder))  # not resolve(): a symlinked snapshot keeps its own name
    if CHECKPOINT_FOLDER.match(folder.name) and folder.parent.name:
        return f"{folder.parent.name}@{folder.name}"
    return folder.name


def default_model_name(source: str | PathLike[str], revision: str | None = None, quantization: str | None = None, *,
                       must_exist: bool = True) -> str:
    """The short, stable row name of a model: ``<folder or hub id>[@revision][[quantization]]``.

    A local folder contributes its base name (``/data/zoo/neox-s`` -> ``neox-s``), or its parent's
    and its own for a checkpoint folder (``/data/runs/neox/step24`` -> ``neox@step24``); a hub id
    is used as it is. ``revision`` (e.g. ``"step1000"``) follows an ``@``, a quantization label
    (``"8bit"``) brackets.

    Parameters
    ----------
    source : str or path
        A hub id or a local folder.
    revision : str, optional
        Hub revision, appended after ``@``.
    quantization : str, optional
        Quantization label (``"8bit"``, ``"4bit"``, ...), appended in brackets; ``"none"`` adds nothing.
    must_exist : bool, default True
        Refuse a local-looking path that is not a folder; ``False`` names a folder that may be gone
        (the origin of a model already in memory).

    Returns
    -------
    str
        The row name.

    Raises
    ------
    LoglikMapError
        With ``must_exist=True``, for a path that looks local but is no folder.

    Examples
    --------
    >>> default_model_name("EleutherAI/pythia-70m", "step1000")
    'EleutherAI/pythia-70m@step1000'
    """
    text = os.fspath(source)
    if must_exist:
        folder = local_folder(source)
    else:
        folder = Path(text) if Path(text).is_dir() or _looks_like_a_path(text) else None
    name = _folder_label(folder) if folder is not None else text
    if revision:
        name += f"@{revision}"
    if quantization and quantization != "none":
        name += f"[{quantization}]"
    return name


def step_of(revision: str | None = None, folder: Path | None = None) -> int | None:
    """The training step a model is at, read from a ``"stepN"`` revision or a checkpoint folder name.

    Examples
    --------
    >>> step_of("step1000"), step_of("main"), step_of(None, Path("runs/a/checkpoint-500"))
    (1000, None, 500)
    """
    if revision:
        match = _REVISION_STEP.match(revision)
        return int(match.group(1)) if match else None
    if folder is not None:
        match = CHECKPOINT_FOLDER.match(Path(folder).name)
        return int(match.group(1)) if match else None
    return None


def _plain(value: Any) -> float | int | str:
    """A Python scalar (numpy scalars become int, float or str, so specs stay JSON-serialisable)."""
    if isinstance(value, str):
        return str(value)
    return int(value) if isinstance(value, numbers.Integral) else float(value)


def check_model_coords(coords: Any, what: str = "coords") -> dict[str, float | str]:
    """Validate per-model coordinates given for one model: names are strings, values numbers or strings."""
    if coords is None:
        return {}
    if not hasattr(coords, "items"):
        raise LoglikMapError(f"{what} must be a mapping of coordinate name to value, e.g. {{'step': 1000}}; "
                             f"got {coords!r}")
    out: dict[str, float | str] = {}
    for key, value in coords.items():
        if not isinstance(key, str) or not key or key in _RECORDED:
            raise LoglikMapError(f"{what}: {key!r} cannot be a model coordinate name"
                                 + (" (the matrix or the scorer records it)" if key in _RECORDED else ""))
        if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
            raise LoglikMapError(f"{what}[{key!r}] = {value!r}: a model coordinate is a number or a string")
        out[key] = _plain(value)
    return out


def merge_step(coords: dict[str, float | str], step: int | None, revision: str | None,
               folder: Path | None) -> dict[str, float | str]:
    """``coords`` with ``step`` filled from ``step=``, a ``"stepN"`` revision or a checkpoint folder.

    Refuses a ``step`` that contradicts another source (e.g. ``step=2000`` with ``revision="step1000"``).
    """
    given: Any = coords.get("step")
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, numbers.Real) or step < 0:
            raise LoglikMapError(f"step must be a non-negative number, got {step!r}")
        if given is not None and given != step:
            raise LoglikMapError(f"step={step} contradicts coords['step']={given}")
        given = _plain(step)
    inferred = step_of(revision, folder)
    if given is not None and inferred is not None and float(given) != float(inferred):
        source = f"revision {revision!r}" if revision else f"folder {folder.name!r}"  # type: ignore[union-attr]
        raise LoglikMapError(f"step={given} contradicts {source}, which is step {inferred}")
    out: dict[str, Any] = dict(coords)
    if given is not None or inferred is not None:
        out["step"] = given if given is not None else inferred
    return out
