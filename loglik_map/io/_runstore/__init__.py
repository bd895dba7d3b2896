"""The run store on disk: layout, manifest, locking and integrity (written by :func:`~loglik_map.score_models`).

A *run store* is a directory::

    store/
      loglik_map_store.json      manifest: format version, text-set fingerprint, model order
      loglik_map_store.lock      lock file (an OS lock, released when its holder dies)
      texts.zarr                 text ids, byte lengths, domains
      models/<key>.zarr          one finished model's rows, with a checksum (written elsewhere, renamed in)
      failures/<key>.json        the error of a model that failed (removed when it later succeeds)
      corrupt/<key>.<id>.zarr    damaged rows moved aside (kept for inspection; the model is rescored)
      claims/<key>.lock          held (an OS lock) by the process scoring that model: no model is
                                 scored by two workers or two runs at once

A model's rows appear by an atomic rename, so they are complete or absent, and they are found
from their own files: the manifest only orders them, so a row can never be lost from it. The
manifest and the initialisation are changed only under the store's lock; a store whose
initialisation was killed is completed by the next run. Every row carries the storage format
version and a SHA-256 checksum of its values and coordinates; a row that fails the check is
skipped with a warning when the store is opened and moved aside and rescored by the next run.
"""

from __future__ import annotations

from .layout import (
    LOCK,
    MANIFEST,
    STORE_FORMAT,
    failure_path,
    fingerprint_ids,
    is_store,
    row_key,
    row_path,
    unfinished_store_error,
)
from .reading import open_store, store_failures
from .writing import claim, init_store, remove_stale_partials, row_is_finished, write_result

__all__ = ["LOCK", "MANIFEST", "STORE_FORMAT", "claim", "failure_path", "fingerprint_ids", "init_store", "is_store",
           "open_store", "remove_stale_partials", "row_is_finished", "row_key", "row_path", "store_failures",
           "unfinished_store_error", "write_result"]
