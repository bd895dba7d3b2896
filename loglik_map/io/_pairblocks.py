"""Checksums of an all-pairs store: one over its header, one per block pair (not public API).

The header digest covers the attributes that give the numbers their meaning (fingerprint,
block size, number of texts, mean byte length, format) and the model names. Block pair
``(I, J)`` (``I ≤ J``) has a SHA-256 over its KL and SE values (little-endian float64, row-major),
stored as four uint64 words in ``block_digest[I, J]``; all zeros means "not computed". Its
transpose ``(J, I)`` is checked against the same digest, transposed back.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LoglikMapError, require_extra

__all__ = ["DIGEST", "HEADER_ATTR", "HEADER_KEYS", "block_digest", "damaged_store_error", "header_digest",
           "read_block", "read_names"]

#: The array of per-block digests (n_blocks, n_blocks, 4) uint64.
DIGEST = "block_digest"
#: Attribute holding the header digest.
HEADER_ATTR = "header_digest"
#: The attributes the header digest covers.
HEADER_KEYS = ("loglik_map_pairs_format", "fingerprint", "n_models", "n_texts", "mean_bytes", "block_size")


def _zarr() -> Any:
    return require_extra("zarr", "io", "Zarr storage")


def header_digest(attrs: dict[str, Any], names: Any) -> str:
    """``"sha256:<hex>"`` of the header attributes and the model names."""
    h = hashlib.sha256()
    head = {k: (float(attrs[k]).hex() if k == "mean_bytes" else attrs[k]) for k in HEADER_KEYS if k in attrs}
    h.update(json.dumps(head, sort_keys=True, default=str).encode("utf-8"))
    for name in names:
        b = str(name).encode("utf-8", "surrogatepass")
        h.update(len(b).to_bytes(8, "little") + b)
    return "sha256:" + h.hexdigest()


def block_digest(i: int, j: int, kl: np.ndarray, se: np.ndarray) -> np.ndarray:
    """The four uint64 words of block pair ``(i, j)``'s digest (never all zero)."""
    h = hashlib.sha256(f"{i},{j},{kl.shape[0]},{kl.shape[1]}".encode("ascii"))
    for block in (kl, se):
        h.update(np.ascontiguousarray(block, dtype="<f8").data)
    words = np.frombuffer(h.digest(), dtype="<u8").astype(np.uint64)
    if not words.any():  # pragma: no cover - probability 2**-256
        words[0] = 1
    return words


def damaged_store_error(path: Path, what: str, fix: str) -> LoglikMapError:
    return LoglikMapError(f"the all-pairs store {str(path)!r} is damaged: {what} (changed by another program, a "
                          f"faulty disk or a truncated copy); {fix}")


def read_names(path: Path) -> np.ndarray:
    """The model names, or an error naming the store."""
    try:
        values = np.asarray(_zarr().open_array(path / "model", mode="r")[...])
    except Exception as err:
        raise damaged_store_error(path, f"its model names cannot be read ({type(err).__name__}: {err})",
                                  "compute it again with overwrite=True") from None
    return np.array([v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values], dtype=object)


def read_block(path: Path, bi: int, bj: int, block_size: int, n: int, digest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """KL and SE of block ``(bi, bj)`` read from disk and checked against ``digest`` (of block
    ``(min, max)``); a :class:`LoglikMapError` naming the store and block if they do not match."""
    zarr = _zarr()
    ri = slice(bi * block_size, min((bi + 1) * block_size, n))
    rj = slice(bj * block_size, min((bj + 1) * block_size, n))
    try:
        kl = np.asarray(zarr.open_array(path / "kl", mode="r")[ri, rj], dtype=np.float64)
        se = np.asarray(zarr.open_array(path / "se", mode="r")[ri, rj], dtype=np.float64)
    except Exception as err:
        raise damaged_store_error(path, f"block pair ({bi}, {bj}) cannot be read ({type(err).__name__}: {err})",
                                  "call ModelMap.all_pairs with the same store to recompute the damaged blocks") from None
    lo, hi = min(bi, bj), max(bi, bj)
    upper = (kl, se) if bi <= bj else (kl.T, se.T)
    if not np.array_equal(block_digest(lo, hi, *upper), digest):
        raise damaged_store_error(path, f"block pair ({bi}, {bj}) no longer matches its checksum",
                                  "call ModelMap.all_pairs with the same store to recompute the damaged blocks")
    return kl, se
