"""The logit lens: every layer of one model scored as a model of its own (:ref:`method-lens`)."""

from __future__ import annotations

from os import PathLike
from typing import Any

from ..errors import LoglikMapError
from .architectures import find_final_norm
from .hf import HFScorer
from .loading import Loaded
from .settings import check_scorer_options

__all__ = ["LogitLensScorer"]


class LogitLensScorer(HFScorer):
    """The logit lens (:ref:`method-lens`): every layer of one model scored as a model of its own.

    One forward pass gives all hidden states; for the states after the embedding (layer 0) and
    blocks 1 … L−1 the model's final norm and unembedding (bias included) are applied, and the
    last state — already final-normed by the model — goes straight to the unembedding, so layer L
    equals :class:`HFScorer`'s result. Rows are named ``"<name>@layer<l>"`` with a ``layer``
    coordinate, a ``parent_model`` coordinate (``<name>``) and the model's own coordinates
    (``step``, ``coords``, …). Only one position-chunk of one layer's logits exists at a time.

    Parameters
    ----------
    model : str, path or transformers.PreTrainedModel
        As for :class:`HFScorer`.
    final_norm : str, optional
        Dotted path of the final norm (e.g. ``"model.norm"``), overriding the per-architecture
        lookup of :func:`~loglik_map.scoring.architectures.find_final_norm`.
    **options
        Every other :class:`HFScorer` argument.
    """

    def __init__(self, model: str | PathLike[str] | Any, *, final_norm: str | None = None, **options: Any) -> None:
        check_scorer_options(final_norm=final_norm, lens=True)
        super().__init__(model, **options)
        self.final_norm = final_norm

    def _rows(self, loaded: Loaded) -> list[tuple[str, dict[str, Any]]]:
        n_layers = getattr(loaded.model.config, "num_hidden_layers", None)
        if n_layers is None:
            raise LoglikMapError(f"{self.model_id!r}: config has no num_hidden_layers")
        return [(f"{self.name}@layer{k}", {"layer": k, "parent_model": self.name}) for k in range(n_layers + 1)]

    def _lens_norm(self, loaded: Loaded) -> Any:
        return find_final_norm(loaded.model, self.final_norm)
