"""A scorer's settings in three groups, each checked when it is made (torch-free).

:class:`Loading` (how the weights are loaded), :class:`Windowing` (which tokens are scored) and
:class:`Execution` (how fast, never what) are small frozen dataclasses, as transformers groups
quantisation in ``BitsAndBytesConfig``. :class:`~loglik_map.HFScorer`,
:class:`~loglik_map.ModelSpec`, :func:`~loglik_map.score_models` and the command line's models
file take them, so a typo or an impossible value fails at once instead of hours into a run.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from os import PathLike
from typing import Any

from .._labels import check_text, unknown_labels_error
from .._progress import PROGRESS_DOC, ProgressArg, check_progress
from .._util import fill_doc
from ..errors import LoglikMapError, WrongTypeError
from ._quantization import quantization_label
from ._unembed import UNEMBED_METHODS
from ._windows import CONVENTIONS, LONG_TEXT_MODES

__all__ = ["DTYPES", "FALLBACK_MODES", "SETTING_GROUPS", "Execution", "Loading", "Windowing", "check_group",
           "check_optional_text", "settings_from_keys"]

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


def _path(key: str, value: Any) -> None:
    if value is not None and not isinstance(value, (str, PathLike)):
        raise LoglikMapError(f"{key} must be a folder path or None, got {value!r}")


def _token(key: str, value: Any) -> None:
    if value is not None and not isinstance(value, (str, bool)):
        raise WrongTypeError(f"token must be a string, True/False or None, got {type(value).__name__}")


_CHECKS: dict[str, Callable[[str, Any], Any]] = {  # each raises on a bad value, naming the field
    "convention": _one_of(CONVENTIONS),
    "long_texts": _one_of(LONG_TEXT_MODES),
    "dtype": _dtype,
    "device": _device,
    "quantization": lambda key, value: None if value is None else quantization_label(value),
    "max_length": _int_at_least(2),
    "stride": _int_at_least(1),
    "batch_tokens": _batch_tokens,
    "unembed": lambda key, value: _one_of(UNEMBED_METHODS)(key, value),
    "fallback": _one_of(FALLBACK_MODES),
    "trust_remote_code": _flag,
    "progress": lambda key, value: check_progress(value, key),
    "cache_dir": _path,
    "token": _token,
}


def _check_fields(group: Any) -> None:
    for f in fields(group):
        _CHECKS[f.name](f.name, getattr(group, f.name))


_CHECKED = """\
Raises
------
LoglikMapError
    When it is made, naming the field, the bad value and the accepted ones (an unknown field
    is a :class:`TypeError`)."""


@fill_doc(checked=_CHECKED)
@dataclass(frozen=True)
class Loading:
    """How a model's weights are loaded: dtype, device, quantization and the hub's options.

    Parameters
    ----------
    dtype : {"auto", "float32", "bfloat16", "float16"} or torch.dtype
        Weights' dtype. ``"auto"``: float32 on CPU, the checkpoint's dtype on GPU. Whatever the
        dtype, log-softmax is taken in float32 and sums in float64.
    device : {"auto", "cpu", "cuda", "cuda:N", "mps"} or torch.device
        ``"auto"``: all visible GPUs (``device_map="auto"``) if any, else the CPU. Whether the
        device exists is checked when the model loads (a scorer may be made on another machine).
    quantization : {"8bit", "4bit", "4bit-fp4"} or transformers.BitsAndBytesConfig, optional
        Load through bitsandbytes (``"4bit"`` is nf4); part of the row's default name.
    trust_remote_code : bool, default False
        Passed to ``from_pretrained``.
    cache_dir : path, optional
        Passed to ``from_pretrained``.
    token : str or bool, optional
        Passed to ``from_pretrained`` (a hub access token).

    {checked}

    Examples
    --------
    >>> from loglik_map.scoring import Loading
    >>> Loading(dtype="bfloat16", device="cuda").quantization is None
    True
    """

    dtype: Any = "auto"
    device: Any = "auto"
    quantization: Any = None
    trust_remote_code: bool = False
    cache_dir: str | PathLike[str] | None = None
    token: str | bool | None = None

    def __post_init__(self) -> None:
        _check_fields(self)


@fill_doc(checked=_CHECKED)
@dataclass(frozen=True)
class Windowing:
    """Which tokens are scored: the convention, the context and what to do with long texts.

    Parameters
    ----------
    convention : {"reference", "bos"}
        Which tokens are scored; see :func:`loglik_map.scoring.encode_text`.
        ``"reference"`` reproduces shimo-lab/modelmap (the published data).
    max_length : int, optional
        Context length; default the model's maximum positions.
    long_texts : {"rolling", "truncate", "error"}
        What to do with texts longer than ``max_length`` tokens. ``"rolling"`` (default) scores
        every token with overlapping windows, and equals the reference scripts whenever a text
        fits the context. ``"truncate"`` keeps the first ``max_length`` tokens as the reference
        scripts do (warned once per model, with counts); such rows are refused by
        :class:`~loglik_map.ModelMap` and :meth:`~loglik_map.LogLikelihoodMatrix.entropy` unless
        ``allow_truncated=True``. ``"error"`` refuses long texts.
    stride : int, optional
        New tokens per window with ``long_texts="rolling"`` (default ``max_length // 2``);
        smaller than ``max_length``.

    {checked}

    Examples
    --------
    >>> from loglik_map.scoring import Windowing
    >>> Windowing(max_length=512, long_texts="truncate").convention
    'reference'
    """

    convention: str = "reference"
    max_length: int | None = None
    long_texts: str = "rolling"
    stride: int | None = None

    def __post_init__(self) -> None:
        _check_fields(self)
        if self.max_length is not None and self.stride is not None and self.stride >= self.max_length:
            raise LoglikMapError(f"stride must be smaller than max_length = {self.max_length} (each window keeps "
                                 f"max_length - stride tokens of context), got {self.stride}")


@fill_doc(progress=PROGRESS_DOC, checked=_CHECKED)
@dataclass(frozen=True)
class Execution:
    """How fast a model is scored, never what: batches, the unembedding, the self-check, progress.

    Parameters
    ----------
    batch_tokens : int or "auto"
        Padded tokens per forward pass; texts are sorted by length so padding stays small.
        ``"auto"``: 8,192 on a CPU; on a GPU, what half the free device memory holds
        (:func:`loglik_map.scoring._batching.auto_batch_tokens`), at most 65,536. A batch that
        runs out of memory is split, never lost.
    unembed : {"auto", "fused", "chunked"}
        How log p(target) is computed from the final hidden states
        (:mod:`loglik_map.scoring._unembed`): ``"auto"`` uses the fused Triton kernel on GPUs
        where it applies, checked against the chunked computation the first time.
    fallback : {"warn", "error"}
        When the model loads, a self-check compares the fast scoring path (hidden states at the
        scored positions through the model's traced head, batches padded on the right) with the
        model's own ``forward(...).logits`` on a short probe (:mod:`loglik_map.scoring._selfcheck`).
        If they disagree, ``"warn"`` (default) warns once and scores with the fastest path that
        agrees (an attention mask, one text per pass, or the model's own logits); ``"error"``
        refuses instead of scoring more slowly. The path taken is the row's ``scoring_path``
        coordinate.
    progress : bool, callable or None, default None
        Progress over a model's batches.
        {progress}

    {checked}

    Examples
    --------
    >>> from loglik_map.scoring import Execution
    >>> Execution(batch_tokens=16384, progress=False).fallback
    'warn'
    """

    batch_tokens: int | str = "auto"
    unembed: str = "auto"
    fallback: str = "warn"
    progress: ProgressArg = None

    def __post_init__(self) -> None:
        _check_fields(self)
        if isinstance(self.batch_tokens, numbers.Integral):
            object.__setattr__(self, "batch_tokens", int(self.batch_tokens))


#: Every group's fields: field name → group (the models file and the command line map keys with it).
SETTING_GROUPS: dict[str, type] = {f.name: group for group in (Loading, Windowing, Execution) for f in fields(group)}
_GROUP_ARGS = {Loading: "loading", Windowing: "windowing", Execution: "execution"}


def check_group(value: Any, group: type, where: str = "") -> Any:
    """``value`` if it is a ``group`` (or None); otherwise a :class:`WrongTypeError` saying what to pass.

    Parameters
    ----------
    value : object
        The argument given.
    group : type
        :class:`Loading`, :class:`Windowing` or :class:`Execution`.
    where : str
        Who takes it, for the message.

    Returns
    -------
    Loading, Windowing, Execution or None
        ``value``.
    """
    if value is None or isinstance(value, group):
        return value
    arg = _GROUP_ARGS[group]
    hint = ""
    if isinstance(value, Mapping):
        hint = f"; for a mapping write {arg}=loglik_map.scoring.{group.__name__}(**{arg})"
    raise WrongTypeError(f"{where + ' ' if where else ''}{arg}= takes a loglik_map.scoring.{group.__name__}, got "
                         f"{type(value).__name__}{hint}")


def check_optional_text(key: str, value: Any) -> None:
    """Refuse a scorer argument (``name``, ``revision``, ``final_norm``) that is not a non-empty string or None.

    Parameters
    ----------
    key : str
        The argument's name, for the message.
    value : object
        What was given.
    """
    if value is not None and (not isinstance(value, str) or not check_text(value, key)):
        raise LoglikMapError(f"{key} must be a non-empty string or None, got {value!r}")


def settings_from_keys(values: Mapping[str, Any], what: str = "setting") -> dict[str, Any]:
    """Flat ``key=value`` settings (a models file, the command line) gathered into their groups.

    Parameters
    ----------
    values : mapping
        Field name → value, for fields of any of the three groups.
    what : str
        How to name a key in the message about an unknown one.

    Returns
    -------
    dict
        ``{"loading": Loading, "windowing": Windowing, "execution": Execution}`` for the groups
        that ``values`` sets.

    Raises
    ------
    LoglikMapError
        For an unknown key (with the closest known ones) or a bad value.
    """
    unknown = [key for key in values if key not in SETTING_GROUPS]
    if unknown:
        raise unknown_labels_error(unknown, list(SETTING_GROUPS), what, "a field of Loading, Windowing or Execution")
    out = {}
    for group, arg in _GROUP_ARGS.items():
        given = {k: v for k, v in values.items() if SETTING_GROUPS[k] is group}
        if given:
            out[arg] = group(**given)
    return out
