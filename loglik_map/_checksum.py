"""Content checksums of stored matrices: one SHA-256 over the log-likelihoods and every coordinate.

The digest is taken over a canonical form (names, dims, shapes, and the values as little-endian
float64/int64 or UTF-8 strings; the dataset's attributes as flat lists of strings and numbers),
so it does not depend on how a backend hands them back (object or fixed-width strings, float32
or float64 coordinates, NaN payloads, a one-element list read back as a scalar).
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["CHECKSUM_ATTR", "FORMAT_ATTR", "FILE_FORMAT", "dataset_checksum"]

#: Attribute holding ``"sha256:<hex>"`` of the data (written by every save and every run-store row).
CHECKSUM_ATTR = "loglik_map_checksum"
#: Attribute holding the storage format version of a saved matrix or run-store row.
FORMAT_ATTR = "loglik_map_format"
#: The storage format this version writes (and the newest it reads).
FILE_FORMAT = 1


def _feed(h: "hashlib._Hash", tag: str, data: bytes | memoryview) -> None:
    h.update(tag.encode("ascii"))
    h.update(memoryview(data).nbytes.to_bytes(8, "little"))
    h.update(data)


def _canonical_bytes(values: np.ndarray) -> tuple[str, bytes | memoryview]:
    kind = values.dtype.kind
    if kind in "USOT":
        parts = []
        for v in values.ravel():
            s = v.decode("utf-8", "surrogateescape") if isinstance(v, bytes) else str(v)
            b = s.encode("utf-8", "surrogatepass")
            parts.append(len(b).to_bytes(8, "little") + b)
        return "str", b"".join(parts)
    if kind == "f":
        v = np.ascontiguousarray(values, dtype="<f8")
        nan = np.isnan(v)
        if nan.any():
            v = v.copy()
            v[nan] = np.nan  # one NaN bit pattern, whatever the backend returns
        return "f8", memoryview(v).cast("B")
    if kind in "ib":
        return "i8", memoryview(np.ascontiguousarray(values, dtype="<i8")).cast("B")
    if kind == "u":
        return "u8", memoryview(np.ascontiguousarray(values, dtype="<u8")).cast("B")
    raise TypeError(f"cannot checksum an array of dtype {values.dtype}")


def _canonical_attr(value: Any) -> bytes:
    items = np.asarray(value, dtype=object).reshape(-1) if isinstance(value, (list, tuple, np.ndarray)) else [value]
    parts = []
    for v in items:
        if isinstance(v, bytes):
            v = v.decode("utf-8", "surrogateescape")
        if isinstance(v, str):
            parts.append("s:" + v)
        elif isinstance(v, (bool, np.bool_)):
            parts.append(f"b:{bool(v)}")
        elif isinstance(v, (int, np.integer)) or (isinstance(v, (float, np.floating)) and float(v).is_integer()):
            parts.append(f"n:{int(v)}")  # 3 and 3.0: backends may turn one into the other
        elif isinstance(v, (float, np.floating)):
            parts.append("n:" + float(v).hex())
        else:
            parts.append(f"?:{v!r}")
    return "\x00".join(parts).encode("utf-8", "surrogatepass")


def dataset_checksum(ds: xr.Dataset, variable: str = "log_likelihood") -> str:
    """``"sha256:<hex>"`` of ``ds[variable]``, every coordinate of ``ds`` and the dataset's attributes
    (except the checksum attribute itself)."""
    h = hashlib.sha256()
    for key in sorted(str(k) for k in ds.attrs if k != CHECKSUM_ATTR):
        _feed(h, "attr", key.encode("utf-8", "surrogatepass"))
        _feed(h, "value", _canonical_attr(ds.attrs[key]))
    names = [variable] + sorted(str(n) for n in ds.coords)
    for name in names:
        da = ds[name]
        values = np.asarray(da.values)
        tag, data = _canonical_bytes(values)
        _feed(h, "name", name.encode("utf-8", "surrogatepass"))
        _feed(h, "dims", ",".join(map(str, da.dims)).encode("utf-8"))
        _feed(h, "shape", repr(values.shape).encode("ascii"))
        _feed(h, tag, data)
    return "sha256:" + h.hexdigest()
