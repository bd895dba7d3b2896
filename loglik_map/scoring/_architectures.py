"""What differs between architectures: where the final norm lives, how long the context is.

Torch-free; used by the logit lens (:class:`~loglik_map.LogitLensScorer`) and by the scorers'
context length. Logit post-processing (soft-capping, logit scales) is in :mod:`.unembed`.
"""

from __future__ import annotations

from typing import Any

from ..errors import LoglikMapError

__all__ = ["DEFAULT_CONTEXT", "FINAL_NORM_PATHS", "find_final_norm", "stated_positions"]

#: Where the final norm lives, tried in order (GPT-NeoX; Llama/Mistral/Qwen2/Gemma; GPT-2; OPT; Phi).
FINAL_NORM_PATHS = (
    "gpt_neox.final_layer_norm",
    "model.norm",
    "transformer.ln_f",
    "model.decoder.final_layer_norm",
    "model.final_layernorm",
)
#: Context length assumed when a config states none.
DEFAULT_CONTEXT = 2048


def _resolve_module(model: Any, dotted: str) -> Any:
    obj = model
    for part in dotted.split("."):
        if not hasattr(obj, part):
            return None
        obj = getattr(obj, part)
    return obj


def find_final_norm(model: Any, final_norm: str | None = None) -> Any:
    """The module applying the model's final normalisation (for the logit lens).

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A causal LM.
    final_norm : str, optional
        Dotted path (e.g. ``"model.norm"``) overriding the built-in list :data:`FINAL_NORM_PATHS`.

    Returns
    -------
    torch.nn.Module
        The final normalisation module.

    Raises
    ------
    LoglikMapError
        If the architecture is unknown and no path is given, or the given path does not exist.
    """
    if final_norm is not None:
        module = _resolve_module(model, final_norm)
        if module is None:
            raise LoglikMapError(f"final_norm {final_norm!r} is not a submodule of {type(model).__name__}")
        return module
    for path in FINAL_NORM_PATHS:
        module = _resolve_module(model, path)
        if module is not None:
            return module
    raise LoglikMapError(
        f"cannot find the final norm of {type(model).__name__}; pass final_norm='dotted.path' "
        f"(known places: {', '.join(FINAL_NORM_PATHS)})"
    )


def stated_positions(config: Any) -> int | None:
    """The context length a model's config states.

    Parameters
    ----------
    config : transformers.PretrainedConfig

    Returns
    -------
    int or None
        ``max_position_embeddings`` (or its older names); None if the config states none.
    """
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
