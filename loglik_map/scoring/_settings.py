"""Scorer options, validated when they are given (torch-free).

:class:`~loglik_map.HFScorer` checks its arguments with :func:`check_scorer_options` when it is
made, and :class:`~loglik_map.ModelSpec` checks its ``options`` the same way, so a typo or an
impossible value fails at once instead of hours into a scoring run.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable
from os import PathLike
from typing import Any

from .._labels import check_text, unknown_labels_error
from ..errors import LoglikMapError, WrongTypeError
from ._naming import check_model_coords
from ._quantization import quantization_label
from ._unembed import UNEMBED_METHODS
from ._windows import CONVENTIONS, LONG_TEXT_MODES

__all__ = ["DTYPES", "FALLBACK_MODES", "LENS_OPTIONS", "SCORER_OPTIONS", "check_scorer_options"]

DTYPES = ("auto", "float32", "bfloat16", "float16")
#: What a scorer does when its fast path disagrees with the model's own forward (:mod:`._selfcheck`).
FALLBACK_MODES = ("warn", "error")
_DEVICE = re.compile(r"^(auto|cpu|mps|meta|(cuda|xpu|npu|hpu)(:\d+)?)$")


def _is_torch(value: Any, kind: str) -> bool:
    return type(value).__module__ == "torch" and type(value).__name__ == kind


def _one_of(choices: tuple[str, ...]) -> Callable[[str, Any], None]:
    def check(key: str, value: Any) -> None:
        if value not in choices:
            raise LoglikMapError(f"unknown {key} {value!r}; use one of {choices}")
    return check


def _dtype(key: str, value: Any) -> None:
    if not _is_torch(value, "dtype") and value not in DTYPES:
        raise LoglikMapError(f"unknown dtype {value!r}; use one of {DTYPES} or a torch.dtype")


def _device(key: str, value: Any) -> None:
    if _is_torch(value, "device"):
        return
    if not isinstance(value, str) or not _DEVICE.match(value):
        raise LoglikMapError(f"device {value!r} is not a device; use 'auto', 'cpu', 'cuda', 'cuda:1', 'mps' or a "
                             "torch.device")


def _int_at_least(low: int) -> Callable[[str, Any], None]:
    def check(key: str, value: Any) -> None:
        if value is None and key in ("max_length", "stride"):
            return
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise LoglikMapError(f"{key} must be an integer ≥ {low}, got {value!r}")
    return check


def _batch_tokens(key: str, value: Any) -> None:
    if value != "auto" and (isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1):
        raise LoglikMapError(f"batch_tokens must be a positive integer or 'auto', got {value!r}")


def _flag(key: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise LoglikMapError(f"{key} must be True or False, got {value!r}")


def _optional_text(key: str, value: Any) -> None:
    if value is not None and (not isinstance(value, str) or not check_text(value, key)):
        raise LoglikMapError(f"{key} must be a non-empty string or None, got {value!r}")


def _path(key: str, value: Any) -> None:
    if value is not None and not isinstance(value, (str, PathLike)):
        raise LoglikMapError(f"{key} must be a folder path or None, got {value!r}")


def _token(key: str, value: Any) -> None:
    if value is not None and not isinstance(value, (str, bool)):
        raise WrongTypeError(f"token must be a string, True/False or None, got {type(value).__name__}")


_CHECKS: dict[str, Callable[[str, Any], Any]] = {  # each raises on a bad value
    "convention": _one_of(CONVENTIONS),
    "long_texts": _one_of(LONG_TEXT_MODES),
    "dtype": _dtype,
    "device": _device,
    "quantization": lambda key, value: quantization_label(value),
    "max_length": _int_at_least(2),
    "stride": _int_at_least(1),
    "batch_tokens": _batch_tokens,
    "unembed": lambda key, value: _one_of(UNEMBED_METHODS)(key, value),
    "fallback": _one_of(FALLBACK_MODES),
    "trust_remote_code": _flag,
    "progress": lambda key, value: None if value is None else _flag(key, value),
    "name": _optional_text,
    "revision": _optional_text,
    "cache_dir": _path,
    "token": _token,
    "coords": lambda key, value: check_model_coords(value),
    "tokenizer": lambda key, value: None,  # any tokenizer object
    "step": lambda key, value: None,  # checked with the revision by naming.merge_step
}
_LENS_CHECKS: dict[str, Callable[[str, Any], Any]] = {"final_norm": _optional_text}

#: The keyword arguments of :class:`~loglik_map.HFScorer` besides the model (a test checks the signature).
SCORER_OPTIONS = tuple(_CHECKS)
#: The further keyword arguments of :class:`~loglik_map.LogitLensScorer`.
LENS_OPTIONS = tuple(_LENS_CHECKS)


def check_scorer_options(*, lens: bool = False, **options: Any) -> None:
    """Validate scorer options by name; unknown names are refused with the closest known ones.

    Parameters
    ----------
    lens : bool, default False
        Also accept the options of :class:`~loglik_map.LogitLensScorer` (``final_norm``).
    **options
        :class:`~loglik_map.HFScorer` arguments by name.

    Raises
    ------
    LoglikMapError
        Naming the option, the bad value and the accepted ones.
    """
    checks = {**_CHECKS, **_LENS_CHECKS} if lens else _CHECKS
    unknown = [key for key in options if key not in checks]
    if unknown:
        hint = " (final_norm is an option of the logit lens: logit_lens=True)" if "final_norm" in unknown else ""
        raise unknown_labels_error(unknown, list(checks), "scorer option", "an HFScorer argument" + hint)
    for key, value in options.items():
        checks[key](key, value)
    max_length, stride = options.get("max_length"), options.get("stride")
    if max_length is not None and stride is not None and stride >= max_length:
        raise LoglikMapError(f"stride must be smaller than max_length = {max_length} (each window keeps "
                             f"max_length - stride tokens of context), got {stride}")
