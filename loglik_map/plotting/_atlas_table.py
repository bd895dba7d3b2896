"""The atlas as an open table (:func:`atlas_table`): for maps beyond a browser, or for other viewers."""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._progress import PROGRESS_DOC, ProgressArg
from .._util import fill_doc
from ..errors import LoglikMapError, require_extra
from ._atlas_data import atlas_data

if TYPE_CHECKING:
    from ..core._modelmap import ModelMap

__all__ = ["atlas_table"]


def _column(pa: Any, values: np.ndarray) -> Any:
    """A model coordinate as an Arrow column (object columns as strings, missing kept missing)."""
    if values.dtype.kind in "biuf":
        return pa.array(values)
    return pa.array([None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values.tolist()],
                    type=pa.string())


@fill_doc(progress=PROGRESS_DOC)
def atlas_table(mm: ModelMap, path: str | PathLike[str], *, k: int = 10, embedding: Any = "pca", pin: str | None = None,
                level: float = 0.05, unit: str = "bits/byte", seed: int = 0, perplexity: float | None = None,
                run: str | None = None, progress: ProgressArg = None) -> Path:
    """Write the atlas's numbers as a Parquet table, one row per model (for any number of models).

    What :func:`atlas` draws, as an open table that `Embedding Atlas
    <https://apple.github.io/embedding-atlas/>`_ or `datamapplot
    <https://datamapplot.readthedocs.io>`_ open (the ``x``, ``y`` columns are the positions).

    Parameters
    ----------
    mm : ModelMap
        The map.
    path : path
        The ``.parquet`` file to write (replaced if it exists).
    k : int, default 10
        Neighbours per model, 1 ≤ k < K.
    embedding : {"pca", "tsne"} or array-like, default "pca"
        As in :func:`atlas`.
    pin : str, optional
        Add ``kl_to_pin`` and ``se_to_pin`` columns: KL ± SE from this model.
    level : float, default 0.05
        Significance level of the paired test against the nearest neighbour.
    unit : {"bits/byte", "nats"}
        Unit of the KL and SE columns (recorded in the file's metadata).
    seed : int, default 0
        Seed of t-SNE.
    perplexity : float, optional
        The t-SNE perplexity (default ``min(30, (K − 1) / 3)``).
    run : str, optional
        The coordinate grouping checkpoints into runs (default ``run``, else ``source_model``).
    progress : bool, callable or None, default None
        Progress of the k-NN search over block pairs (:meth:`ModelMap.nearest <loglik_map.ModelMap.nearest>`).
        {progress}

    Returns
    -------
    pathlib.Path
        The file written. Columns: ``model``, ``x``, ``y``, the model coordinates, ``neighbours``
        (k row numbers, nearest first), ``neighbour_names``, ``neighbour_kl``, ``neighbour_se`` and
        ``neighbour_tied`` (k-long lists; tied: a paired test cannot tell it from the nearest),
        ``kept_in_2d`` (share of the k nearest also nearest in 2-D) and, with ``pin``,
        ``kl_to_pin`` and ``se_to_pin``; ``next_checkpoint``, ``next_kl``, ``next_se``: a checkpoint's
        next one in its run and the KL ± SE of that step (missing elsewhere). Needs the ``viz`` extra (pyarrow).
    """
    pa = require_extra("pyarrow", "viz", "the atlas table")
    pq = require_extra("pyarrow.parquet", "viz", "the atlas table")
    path = Path(path)
    if path.suffix != ".parquet":
        raise LoglikMapError(f"atlas_table writes Parquet; give a path ending in .parquet, got {str(path)!r}")
    data = atlas_data(mm, k=k, embedding=embedding, pin=pin, level=level, unit=unit, seed=seed, perplexity=perplexity,
                      run=run, progress=progress)
    kk = data.k

    def lists(values: np.ndarray) -> Any:
        return pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), kk)

    columns: dict[str, Any] = {"model": pa.array(data.models.astype(str)), "x": pa.array(data.xy[:, 0]),
                               "y": pa.array(data.xy[:, 1])}
    for name, values in data.coords.items():
        if name not in columns:
            columns[name] = _column(pa, values)
    columns.update(neighbours=lists(data.neighbours.astype(np.int32)),
                   neighbour_names=lists(data.models[data.neighbours].astype(str)),
                   neighbour_kl=lists(data.kl), neighbour_se=lists(data.se), neighbour_tied=lists(data.tied),
                   kept_in_2d=pa.array(data.kept))
    has_next = data.successor >= 0
    columns.update(next_checkpoint=pa.array([str(data.models[j]) if j >= 0 else None for j in data.successor.tolist()],
                                            type=pa.string()),
                   next_kl=pa.array(data.successor_kl, mask=~has_next), next_se=pa.array(data.successor_se, mask=~has_next))
    if data.pin_kl is not None and data.pin_se is not None:
        columns.update(kl_to_pin=pa.array(data.pin_kl), se_to_pin=pa.array(data.pin_se))
    meta = {"loglik_map.units": unit, "loglik_map.k": str(kk), "loglik_map.embedding": data.embedding,
            "loglik_map.level": str(level), "loglik_map.n_texts": str(data.n_texts), "loglik_map.pin": pin or ""}
    table = pa.table(columns).replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return path
