"""Quantized loading through bitsandbytes: settings, their labels, and the CPU kernel workaround.

Torch-free at import: :func:`quantization_label` is used when scorers and specs are made;
:func:`bnb_config` and :func:`route_unpackable_4bit_layers` run when a model loads.
"""

from __future__ import annotations

from typing import Any

from ..errors import LoglikMapError, require_extra

__all__ = ["QUANTIZATIONS", "bnb_config", "quantization_label", "route_unpackable_4bit_layers"]

QUANTIZATIONS = ("8bit", "4bit", "4bit-nf4", "4bit-fp4")


def quantization_label(quantization: Any) -> str:
    """Short label for a quantization setting.

    Parameters
    ----------
    quantization : str, transformers.BitsAndBytesConfig or None
        ``"8bit"``, ``"4bit"`` (nf4), ``"4bit-nf4"``, ``"4bit-fp4"``, a config, or None.

    Returns
    -------
    str
        ``"none"``, ``"8bit"``, ``"4bit-nf4"`` or ``"4bit-fp4"``.

    Examples
    --------
    >>> quantization_label("4bit"), quantization_label(None)
    ('4bit-nf4', 'none')
    """
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


def bnb_config(quantization: Any, compute_dtype: Any) -> Any:
    """The ``transformers.BitsAndBytesConfig`` of a quantization setting (a config is returned as is).

    Parameters
    ----------
    quantization : str or transformers.BitsAndBytesConfig
        See :func:`quantization_label`.
    compute_dtype : torch.dtype
        Dtype of the 4-bit layers' arithmetic.

    Returns
    -------
    transformers.BitsAndBytesConfig
    """
    from transformers import BitsAndBytesConfig

    if not isinstance(quantization, str):
        return quantization
    label = quantization_label(quantization)
    require_extra("bitsandbytes", "quant", "quantization")
    if label == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=label.split("-")[1],
                              bnb_4bit_compute_dtype=compute_dtype)


def route_unpackable_4bit_layers(model: Any) -> int:
    """Send 4-bit layers that bitsandbytes' AVX-512-BF16 CPU kernel cannot take to its generic CPU path.

    On CPUs with AVX-512-BF16, bitsandbytes (0.50 seen) repacks each ``Linear4bit`` weight on its
    first forward pass, which needs ``out_features % 32 == 0`` and ``in_features`` a multiple of
    the quantization block size; any other layer fails with "shape '[N, 0]' is invalid". Real LLM
    shapes satisfy both, small or odd-sized models may not.

    Parameters
    ----------
    model : torch.nn.Module
        A model loaded in 4 bit on a CPU.

    Returns
    -------
    int
        The number of layers rerouted.
    """
    n = 0
    for module in model.modules():
        if not getattr(module, "support_avx512bf16_for_cpu", False):
            continue
        state = getattr(getattr(module, "weight", None), "quant_state", None)
        if state is None or getattr(state, "packing_format_for_cpu", False):
            continue
        out_features, in_features = int(state.shape[0]), int(state.shape[1])
        if out_features % 32 or in_features % int(state.blocksize):
            module.support_avx512bf16_for_cpu = False
            n += 1
    return n
