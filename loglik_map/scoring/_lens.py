"""The logit lens: every layer of one model scored as a model of its own (:ref:`method-lens`)."""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from typing import Any

from ..errors import LoglikMapError
from ._architectures import find_final_norm
from ._hf import HFScorer
from ._selfcheck import CheckResult
from ._settings import Execution, Loading, Windowing, check_optional_text
from ._windows import Window

__all__ = ["LogitLensScorer"]


class LogitLensScorer(HFScorer):
    """The logit lens (:ref:`method-lens`): every layer of one model scored as a model of its own.

    One forward pass gives all hidden states; for the states after the embedding (layer 0) and
    blocks 1 … L−1 the model's final norm and its head (bias, head transforms and logit
    transforms included) are applied, and the last state — already final-normed by the model —
    goes straight to the head, so layer L equals :class:`HFScorer`'s result. The final norm,
    the head and the number of layers are found by tracing the model (:mod:`._head`): the final
    norm is the module of the base model whose output is its last hidden state; a model without
    one (post-LN blocks) gets none, recorded in the rows' ``final_norm`` coordinate. Rows are
    named ``"<name>@layer<l>"`` with a ``layer`` coordinate, a ``parent_model`` coordinate
    (``<name>``) and the model's own coordinates (``step``, ``coords``, …). Only one
    position-chunk of one layer's logits exists at a time.

    Parameters
    ----------
    model : str, path or transformers.PreTrainedModel
        As for :class:`HFScorer`.
    tokenizer, name, revision, step, coords : optional
        As for :class:`HFScorer`.
    final_norm : str, optional
        Dotted path of the final norm (e.g. ``"model.norm"``), overriding the traced one.
    loading, windowing, execution : Loading, Windowing, Execution, optional
        As for :class:`HFScorer`.

    Notes
    -----
    Where the lens is not defined — the model's head cannot be reproduced from a hidden state,
    or its hidden states have an extra dimension (several residual streams) — scoring raises a
    :class:`~loglik_map.LoglikMapError` that says why.
    """

    _is_lens = True

    def __init__(self, model: str | PathLike[str] | Any, *, tokenizer: Any = None, name: str | None = None,
                 revision: str | None = None, step: int | None = None, coords: Mapping[str, Any] | None = None,
                 final_norm: str | None = None, loading: Loading | None = None, windowing: Windowing | None = None,
                 execution: Execution | None = None) -> None:
        check_optional_text("final_norm", final_norm)
        super().__init__(model, tokenizer=tokenizer, name=name, revision=revision, step=step, coords=coords,
                         loading=loading, windowing=windowing, execution=execution)
        self.final_norm = final_norm

    def self_check(self, windows: list[Window] | None = None) -> CheckResult:
        """The self-check of :class:`HFScorer`, and the lens's own requirements.

        Parameters
        ----------
        windows : list of Window, optional
            Windows of the texts about to be scored (two join the probe).

        Returns
        -------
        CheckResult
            As for :meth:`HFScorer.self_check`; ``.plan.final_norm_name`` is the final norm
            applied to the layers (``"none"`` if the model has none) and ``.plan.n_states``
            the number of rows (layers + 1).

        Raises
        ------
        LoglikMapError
            Where the logit lens is not defined for the model (its head cannot be applied to
            the hidden states of its layers, they have an extra dimension, …).
        """
        loaded = self._load()
        if self._check is None:
            check = super().self_check(windows)
            plan = check.plan
            if self.final_norm is not None:
                plan.final_norm = find_final_norm(loaded.model, self.final_norm)
                plan.final_norm_name, plan.norm_last_state = self.final_norm, False
            elif plan.lens_problem is not None:
                self._check = None
                raise LoglikMapError(f"{self.name!r} ({type(loaded.model).__name__}): the logit lens is not defined "
                                     f"for this model: {plan.lens_problem}; score its final layer with HFScorer")
        assert self._check is not None
        return self._check

    def _rows(self, check: CheckResult) -> list[tuple[str, dict[str, Any]]]:
        n_layers = check.plan.n_states - 1
        norm = check.plan.final_norm_name
        return [(f"{self.name}@layer{k}", {"layer": k, "parent_model": self.name, "final_norm": norm})
                for k in range(n_layers + 1)]
