"""Storage: matrices in netCDF and Zarr, run stores, the published shimo-lab/modelmap data, model cards.

Every file format lives here. :mod:`loglik_map.io` imports the core (to build matrices) and
never the scoring code: a *run store* is a format (:mod:`loglik_map.io._runstore`), a *scoring
run* that fills one is :func:`loglik_map.score_models`. Importing this package registers
:func:`save_matrix` and :func:`read_modelmap` with :class:`~loglik_map.LogLikelihoodMatrix`
(its :meth:`~loglik_map.LogLikelihoodMatrix.save` and
:meth:`~loglik_map.LogLikelihoodMatrix.from_modelmap`).
"""

from __future__ import annotations

from ..core._matrix import STORAGE
from ._files import open_matrix, save_matrix
from ._model_cards import lineage, read_base_model
from ._modelmap_data import convert_modelmap_pickle, read_modelmap
from ._pairstore import open_pairs, pair_store
from ._runstore import is_store, open_store, store_failures

__all__ = ["convert_modelmap_pickle", "is_store", "lineage", "open_matrix", "open_pairs", "open_store", "read_base_model",
           "read_modelmap", "save_matrix", "store_failures"]

STORAGE.update(save_matrix=save_matrix, read_modelmap=read_modelmap, pair_store=pair_store, open_pairs=open_pairs)
