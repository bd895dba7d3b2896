"""Reading a run store: its finished rows as one matrix, and its failure records (not public API)."""

from __future__ import annotations

import json
import warnings
from os import PathLike
from pathlib import Path
from typing import Any

from ...core._combine import concat_dataarrays
from ...core._matrix import LogLikelihoodMatrix
from ...errors import DataIntegrityWarning, LoglikMapError
from .._lazy import lazy_row, normalise_chunks
from .layout import (
    DamagedManifest,
    fingerprint_ids,
    is_store,
    load_row,
    read_manifest,
    row_dirs,
    row_key,
    unfinished_store_error,
)

__all__ = ["open_store", "store_failures"]


def store_failures(store: str | PathLike[str]) -> dict[str, dict[str, Any]]:
    """The failure records of a run store, by model name.

    Parameters
    ----------
    store : path
        The run store.

    Returns
    -------
    dict
        Model name → its failure record (the error and when it happened); an unreadable record
        is skipped with a :class:`~loglik_map.errors.DataIntegrityWarning`.
    """
    out = {}
    for f in sorted((Path(store) / "failures").glob("*.json")):
        try:
            rec = json.loads(f.read_text(encoding="utf-8"))
            out[rec["model"]] = rec
        except (OSError, ValueError, KeyError, TypeError) as err:
            warnings.warn(f"failure record {str(f)!r} is unreadable ({err}); skipped", DataIntegrityWarning,
                          stacklevel=2)
    return out


def open_store(store: str | PathLike[str], *, verify: bool = True,
               chunks: int | dict[str, int] | None = None) -> LogLikelihoodMatrix:
    """The finished rows of a run store as one matrix, in the run's model order.

    Rows are found from their own files (the manifest orders them). A damaged row — one that
    cannot be read or fails its checksum — is skipped with a
    :class:`~loglik_map.errors.DataIntegrityWarning` naming the model and file, listed in the
    result's ``damaged_models_skipped`` attribute, and rescored by the next
    :func:`~loglik_map.score_models` run on the store. ``verify=False`` skips the checksums.
    ``chunks=`` returns a dask-backed matrix (see :func:`~loglik_map.open_matrix`): each row is
    checked and validated, then only a lazy handle on it is kept.

    Parameters
    ----------
    store : path
        The run store.
    verify : bool, default True
        Check every row's checksum.
    chunks : int or dict, optional
        Chunk sizes of a dask-backed matrix (default: read into memory).

    Returns
    -------
    LogLikelihoodMatrix
        The finished rows, in the run's model order.
    """
    sizes = None if chunks is None else normalise_chunks(chunks)
    path = Path(store)
    if not is_store(path):
        raise unfinished_store_error(path) or LoglikMapError(f"{str(path)!r} is not a loglik_map run store")
    texts_fingerprint: str | None = None
    try:
        manifest = read_manifest(path)
        order, texts_fingerprint = list(manifest["models"]), manifest["texts_fingerprint"]
    except DamagedManifest as err:
        warnings.warn(f"{err}; rows are listed by name (rerun score_models on the store to rebuild the manifest)",
                      DataIntegrityWarning, stacklevel=2)
        order = []
    label_of_key = {row_key(lab): lab for lab in order}
    found: list[tuple[int, str, LogLikelihoodMatrix]] = []
    damaged = []
    for row in row_dirs(path):
        matrix, label, problem = load_row(row, verify)
        if matrix is None:
            if not row.exists():
                continue  # moved aside by a run that is rescoring it
            name = label or label_of_key.get(row.stem, row.stem)
            damaged.append(name)
            warnings.warn(f"run store {str(path)!r}: the rows of model {name!r} ({str(row)!r}) are damaged and were "
                          f"skipped ({problem}); the next score_models run on this store scores them again",
                          DataIntegrityWarning, stacklevel=2)
            continue
        label = label or label_of_key.get(row.stem, row.stem)
        fingerprint = fingerprint_ids(matrix.texts)
        if texts_fingerprint is None:
            texts_fingerprint = fingerprint
        elif fingerprint != texts_fingerprint:
            raise LoglikMapError(f"run store {str(path)!r}: the rows of model {label!r} ({str(row)!r}) were scored on "
                                 f"another set of texts ({matrix.n_texts} texts) than the store's; the rows were "
                                 "copied in from another store. Rerun score_models on the store (it moves these rows "
                                 "to corrupt/ and scores the model again on the store's texts), or move the folder out")
        if sizes is not None:
            matrix = lazy_row(row, matrix)
        rank = order.index(label) if label in order else len(order)
        found.append((rank, label, matrix))
    if not found:
        extra = f" ({len(damaged)} damaged rows skipped)" if damaged else ""
        raise LoglikMapError(f"{str(path)!r} holds no finished model yet{extra}")
    found.sort(key=lambda item: (item[0], item[1]))
    if sizes is not None:  # rows already validated one by one; stack them lazily
        stacked = concat_dataarrays([m for _, _, m in found], False)
        out = LogLikelihoodMatrix._wrap(stacked.chunk(sizes))
        # attrs as the eager concat gives them: the rows' common attrs over the defaults
        out.data.attrs = dict(LogLikelihoodMatrix.from_dataarray(stacked.isel(model=[0]).load()).attrs)
    else:
        out = LogLikelihoodMatrix.concat([m for _, _, m in found])
    if damaged:
        out.data.attrs["damaged_models_skipped"] = damaged
    return out
