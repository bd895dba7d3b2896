"""Loading a Hugging Face model for scoring: torch on demand, devices, dtypes, errors that name the model.

Everything here imports torch or transformers inside its functions, when a model is loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ..errors import LoglikMapError
from ._quantization import bnb_config, route_unpackable_4bit_layers
from ._torch import require_torch

__all__ = ["Loaded", "finish_loading", "from_pretrained_options", "loading_errors", "quiet_transformers",
           "target_device", "weight_dtype"]


@dataclass
class Loaded:
    """A loaded model with its tokenizer, the device its inputs go to, and a label of its dtype."""

    model: Any
    tokenizer: Any
    device: Any
    dtype_label: str


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' per-file progress bars ("Loading weights", "Writing model shards") while
    loading or saving inside loglik_map's own progress reporting; restores the previous setting."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


@contextmanager
def loading_errors(model_id: str, revision: str | None) -> Iterator[None]:
    """Turn hub and file errors into one :class:`~loglik_map.LoglikMapError` that names the model and revision."""
    try:
        yield
    except LoglikMapError:
        raise
    except Exception as err:
        rev = f" at revision {revision!r}" if revision else ""
        raise LoglikMapError(f"cannot load {model_id!r}{rev}: {type(err).__name__}: {err}") from err


def target_device(device: Any) -> Any:
    """The ``torch.device`` inputs go to: ``"auto"`` is the GPU if torch sees one, else the CPU.

    Parameters
    ----------
    device : str or torch.device
        ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, …

    Returns
    -------
    torch.device
    """
    torch = require_torch()
    if device == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    out = torch.device(device)
    if out.type == "cuda" and not torch.cuda.is_available():
        raise LoglikMapError(f"device={device!r}, but torch sees no CUDA GPU on this machine "
                             "(torch.cuda.is_available() is False); use device='cpu' or 'auto'")
    return out


def weight_dtype(dtype: Any, device: Any) -> Any:
    """The dtype to load weights in: ``"auto"`` is float32 on a CPU and the checkpoint's own on a GPU.

    Parameters
    ----------
    dtype : str or torch.dtype
        ``"auto"``, ``"float32"``, ``"bfloat16"``, ``"float16"`` or a ``torch.dtype``.
    device : torch.device

    Returns
    -------
    torch.dtype or "auto"
    """
    torch = require_torch()
    if not isinstance(dtype, str):
        return dtype
    if dtype == "auto":
        return torch.float32 if device.type == "cpu" else "auto"
    return getattr(torch, dtype)


def from_pretrained_options(device: Any, dtype: Any, quantization: Any, hub_options: dict[str, Any],
                            device_option: Any) -> dict[str, Any]:
    """Keyword arguments of ``AutoModelForCausalLM.from_pretrained`` for a device, dtype and quantization.

    Parameters
    ----------
    device : torch.device
        From :func:`target_device`.
    dtype : torch.dtype or "auto"
        From :func:`weight_dtype`.
    quantization : str, transformers.BitsAndBytesConfig or None
    hub_options : dict
        ``revision``, ``cache_dir``, ``token``, ``trust_remote_code``.
    device_option : str or torch.device
        The ``device`` the user asked for (``"auto"`` spreads a GPU model over every GPU).

    Returns
    -------
    dict
    """
    torch = require_torch()
    options: dict[str, Any] = dict(hub_options, dtype=dtype)
    if quantization is not None:
        compute = torch.float32 if device.type == "cpu" else torch.bfloat16
        options["quantization_config"] = bnb_config(quantization, compute)
        options["device_map"] = {"": device.index if device.type == "cuda" and device.index is not None
                                 else device.type}
    elif device_option == "auto" and device.type == "cuda":
        options["device_map"] = "auto"
    return options


def finish_loading(model: Any, tokenizer: Any, device: Any, quantization: Any, quantization_label: str,
                   dtype: Any) -> Loaded:
    """Put a loaded model in evaluation mode (4-bit CPU layers rerouted) and label its dtype.

    Parameters
    ----------
    model : transformers.PreTrainedModel
    tokenizer : transformers tokenizer
    device : torch.device
        Where its inputs go.
    quantization : str, transformers.BitsAndBytesConfig or None
    quantization_label : str
        From :func:`~loglik_map.scoring._quantization.quantization_label`.
    dtype : torch.dtype or "auto"
        The dtype asked for (the compute dtype of a quantized model).

    Returns
    -------
    Loaded
    """
    model.eval()
    if quantization is not None and device.type == "cpu":
        route_unpackable_4bit_layers(model)
    dtype_label = str(next(model.parameters()).dtype).replace("torch.", "")
    if quantization is not None:
        dtype_label = f"{quantization_label} (compute {str(dtype).replace('torch.', '')})"
    return Loaded(model, tokenizer, device, dtype_label)
