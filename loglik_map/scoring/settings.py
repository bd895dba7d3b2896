"""Scorer options, validated when they are given (torch-free).

:class:`~loglik_map.HFScorer` checks its arguments with :func:`check_scorer_options` when it is
made, and :class:`~loglik_map.ModelSpec` checks its ``options`` the same way, so a typo or an
impossible value fails at once instead of hours into a scoring run.
"""

from __future__ import annotations

import inspect
import numbers
import re
from collections.abc import Callable
from os import PathLike
from typing import Any

from .._labels import check_text, unknown_labels_error
from ..errors import LoglikMapError
from .naming import check_model_coords
from .unembed import UNEMBED_METHODS
from .windows import CONVENTIONS, LONG_TEXT_MODES

__all__ = ["DTYPES", "QUANTIZATIONS", "check_scorer_options", "quantization_label"]

DTYPES = ("auto", "float32", "bfloat16", "float16")
QUANTIZATIONS = ("8bit", "4bit", "4bit-nf4", "4bit-fp4")
_DEVICE = re.compile(r"^(auto|cpu|mps|meta|(cuda|xpu|npu|hpu)(:\d+)?)$")


def quantization_label(quantization: Any) -> str:
    """Short label for a quantization setting: ``"none"``, ``"8bit"``, ``"4bit-nf4"``, ``"4bit-fp4"``."""
    if quantization is None:
        return "none"
    if isinstance(quantization, str):
        if quantization in QUANTIZATIONS:
            return "4bit-nf4" if quantization == "4bit" else quantization
        raise LoglikMapError(f"unknown quantization {quantization!r}; use '8bit', '4bit' (nf4), '4bit-fp4' "
                             "or a transformers.BitsAndBytesConfig")
    if getattr(quantization, "load_in_8bit", False):
        return "8bit"
    if getattr(quantization, "load_in_4bit", False):
        return f"4bit-{getattr(quantization, 'bnb_4bit_quant_type', 'fp4')}"
    raise LoglikMapError(f"cannot interpret quantization {quantization!r}")


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
        raise LoglikMapError(f"token must be a string, True/False or None, got {type(value).__name__}")


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
    "trust_remote_code": _flag,
    "progress": _flag,
    "name": _optional_text,
    "revision": _optional_text,
    "final_norm": _optional_text,
    "cache_dir": _path,
    "token": _token,
    "coords": lambda key, value: check_model_coords(value),
}


def scorer_parameters() -> list[str]:
    """The keyword arguments :class:`~loglik_map.HFScorer` takes (besides the model)."""
    from .hf import HFScorer

    return [p for p in inspect.signature(HFScorer.__init__).parameters if p not in ("self", "model")]


def check_scorer_options(**options: Any) -> None:
    """Validate scorer options by name; unknown names are refused with the closest known ones.

    Raises
    ------
    LoglikMapError
        Naming the option, the bad value and the accepted ones.
    """
    known = scorer_parameters()
    unknown = [key for key in options if key not in known]
    if unknown:
        raise unknown_labels_error(unknown, known, "scorer option", "an HFScorer argument")
    for key, value in options.items():
        check = _CHECKS.get(key)
        if check is not None:
            check(key, value)
    max_length, stride = options.get("max_length"), options.get("stride")
    if max_length is not None and stride is not None and stride >= max_length:
        raise LoglikMapError(f"stride must be smaller than max_length = {max_length} (each window keeps "
                             f"max_length - stride tokens of context), got {stride}")
