"""The published data of shimo-lab/modelmap (Oyama et al. 2025): safe imports, and a one-time pickle conversion."""

from __future__ import annotations

import os
import pickle
import warnings
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ..core._matrix import LogLikelihoodMatrix
from ..errors import LoglikMapError
from ..texts import read_jsonl_records, text_id
from . import _storage
from ._backends import damaged_error

__all__ = ["convert_modelmap_pickle", "read_modelmap"]

_SAFE_MODELMAP_SUFFIXES = (".npz", ".csv")


def _pickle_refusal(path: Path) -> LoglikMapError:
    return LoglikMapError(
        f"{str(path)!r} is read as a pickle, and unpickling runs whatever code the file contains, so loglik_map does "
        "not unpickle files unless asked: pass trust_pickle=True only for a file you trust (e.g. the authors' "
        "log-likelihood_1018.pkl that you downloaded yourself). Better, convert it once, e.g. in a throwaway "
        "environment: loglik_map.io.convert_modelmap_pickle(pkl, 'modelmap.npz', trust_pickle=True), and read the "
        ".npz from then on (no code runs when it is read)"
    )


def _load_pickle(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            data = pickle.load(fh)
    except OSError as err:
        raise LoglikMapError(f"cannot read {str(path)!r}: {err}") from None
    except Exception as err:
        raise damaged_error(path, err) from err
    if not isinstance(data, dict) or not data:
        raise LoglikMapError(f"{path}: expected a non-empty dict {{model_name: vector}}, got {type(data).__name__}")
    return {str(k): v for k, v in data.items()}


def _load_npz(path: Path) -> dict[str, Any]:
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            if {"models", "log_likelihood"} <= files:
                names = [str(n) for n in np.asarray(z["models"]).reshape(-1)]
                values = np.asarray(z["log_likelihood"], dtype=np.float64)
                if values.ndim != 2 or values.shape[0] != len(names):
                    raise LoglikMapError(f"{path}: 'log_likelihood' must be (models × texts) with one row per entry of "
                                         f"'models' ({len(names)}), got shape {values.shape}")
                return dict(zip(names, values))
            return {name: z[name] for name in z.files}
    except LoglikMapError:
        raise
    except OSError as err:
        raise LoglikMapError(f"cannot read {str(path)!r}: {err}") from None
    except Exception as err:
        raise damaged_error(path, err) from err


def _load_csv(path: Path) -> dict[str, Any]:
    import pandas as pd

    try:
        df = pd.read_csv(path, index_col=0, dtype={0: str})
        values = df.to_numpy(dtype=np.float64)
    except OSError as err:
        raise LoglikMapError(f"cannot read {str(path)!r}: {err}") from None
    except Exception as err:
        raise LoglikMapError(f"cannot read {str(path)!r} as CSV with one row per model (model name, then one "
                             f"log-likelihood per text): {type(err).__name__}: {err}") from err
    return {str(name): row for name, row in zip(df.index, values)}


def _modelmap_vectors(path: Path, trust_pickle: bool) -> dict[str, Any]:
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _load_npz(path)
    if suffix == ".csv":
        return _load_csv(path)
    if not trust_pickle:
        raise _pickle_refusal(path)
    return _load_pickle(path)


def convert_modelmap_pickle(pickle_path: str | PathLike[str], npz_path: str | PathLike[str], *,
                            trust_pickle: bool = False) -> None:
    """Convert shimo-lab/modelmap's pickled log-likelihoods once to a ``.npz`` that is safe to read.

    The ``.npz`` holds ``models`` (K names) and ``log_likelihood`` (K × N, nats) and is read
    without unpickling by :meth:`LogLikelihoodMatrix.from_modelmap`. Run this once, ideally in a
    throwaway environment, since the pickle can run code when it is loaded.

    Parameters
    ----------
    pickle_path : path
        ``log-likelihood_1018.pkl``: a pickled dict ``{model_name: vector of N log-likelihoods}``.
    npz_path : path
        Where to write the ``.npz`` (must not exist).
    trust_pickle : bool
        Must be True: you state that you trust the pickle.
    """
    pickle_path, npz_path = Path(pickle_path), Path(npz_path)
    if not trust_pickle:
        raise _pickle_refusal(pickle_path)
    if npz_path.suffix.lower() != ".npz":
        raise LoglikMapError(f"write the converted data to a path ending in .npz, not {str(npz_path)!r}")
    if npz_path.exists():
        raise LoglikMapError(f"{str(npz_path)!r} exists; remove it or choose another name")
    data = _load_pickle(pickle_path)
    names = list(data)
    try:
        values = np.vstack([np.asarray(data[n], dtype=np.float64).reshape(-1) for n in names])
    except ValueError as err:
        raise LoglikMapError(f"{pickle_path}: the vectors differ in length or are not numeric ({err})") from None
    tmp = _storage.temp_sibling(npz_path, _storage.PARTIAL)
    try:
        with open(tmp, "xb") as fh:
            np.savez(fh, models=np.array(names, dtype=str), log_likelihood=values)
            fh.flush()
            os.fsync(fh.fileno())
        os.link(tmp, npz_path)
    except FileExistsError:
        raise LoglikMapError(f"{str(npz_path)!r} exists; remove it or choose another name") from None
    except OSError as err:
        raise _storage.storage_error(err, npz_path, "write") from err
    finally:
        _storage.remove_path(tmp)


def read_modelmap(loglik_path: str | PathLike[str], texts_path: str | PathLike[str], *,
                  trust_pickle: bool = False) -> LogLikelihoodMatrix:
    """Import shimo-lab/modelmap's published log-likelihoods (Oyama et al. 2025).

    Parameters
    ----------
    loglik_path : path
        The log-likelihoods: ``.npz`` or ``.csv`` (safe), or the authors' pickle (refused unless
        ``trust_pickle``); see :meth:`LogLikelihoodMatrix.from_modelmap
        <loglik_map.LogLikelihoodMatrix.from_modelmap>`.
    texts_path : path
        ``texts-10k-pile.jsonl``, in the order of the vectors.
    trust_pickle : bool, default False
        Allow unpickling ``loglik_path``: only for a file you trust.

    Returns
    -------
    LogLikelihoodMatrix
        Text ids from :func:`loglik_map.texts.text_id`; ``domain`` and the index fields as text
        coordinates.
    """
    loglik_path, texts_path = Path(loglik_path), Path(texts_path)
    if loglik_path.suffix.lower() not in _SAFE_MODELMAP_SUFFIXES and not trust_pickle:
        raise _pickle_refusal(loglik_path)  # before reading anything
    records = read_jsonl_records(texts_path)
    data = _modelmap_vectors(loglik_path, trust_pickle)
    if not data:
        raise LoglikMapError(f"{loglik_path}: no models in the file")
    n = len(records)
    rows = []
    for name, vec in data.items():
        try:
            arr = np.asarray(vec, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise LoglikMapError(f"{loglik_path}: model {name!r} has non-numeric log-likelihoods") from None
        if arr.shape != (n,):
            raise LoglikMapError(f"{loglik_path}: model {name!r} has {arr.size} values but {texts_path} has {n} texts")
        rows.append(arr)

    ids = [text_id(r["text"]) for r in records]
    counts: dict[str, int] = {}
    unique_ids = []
    for tid in ids:
        c = counts.get(tid, 0)
        counts[tid] = c + 1
        unique_ids.append(tid if c == 0 else f"{tid}#{c}")
    n_dup = sum(c - 1 for c in counts.values())
    if n_dup:
        warnings.warn(f"{texts_path}: {n_dup} texts repeat an earlier text; their ids get a '#k' suffix", stacklevel=3)
    text_coords: dict[str, object] = {
        "domain": np.array([str(r.get("pile_set_name", "")) for r in records], dtype=object),
        "position": np.arange(n),
    }
    for key in ("pile_idx", "chunk_idx"):
        if all(isinstance(r.get(key), (int, np.integer)) for r in records):
            text_coords[key] = np.array([r[key] for r in records], dtype=np.int64)
    return LogLikelihoodMatrix(
        np.vstack(rows),
        models=list(data),
        texts=unique_ids,
        n_bytes=[len(r["text"].encode("utf-8")) for r in records],
        text_coords=text_coords,
        attrs={
            "source": "shimo-lab/modelmap",
            "source_files": [loglik_path.name, texts_path.name],
            "convention": "reference",
        },
    )
