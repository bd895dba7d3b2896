"""Hugging Face scorers: batched log-likelihoods of texts (:ref:`method-loglik`) and the logit lens (:ref:`method-lens`).

:class:`HFScorer` tokenizes (:mod:`.windows`), loads (:mod:`.loading`, :mod:`.quantization`),
batches (:mod:`.batching`) and unembeds (:mod:`.unembed`); :class:`LogitLensScorer` adds the
final norm of every layer (:mod:`.architectures`). torch and transformers are imported only
when a model is loaded.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ..core._matrix import LogLikelihoodMatrix
from ..errors import LoglikMapError, LoglikMapWarning
from ..texts import TextSet
from ._architectures import DEFAULT_CONTEXT, stated_positions
from ._batching import auto_batch_tokens, score_windows
from ._loading import (
    Loaded,
    finish_loading,
    from_pretrained_options,
    loading_errors,
    quiet_transformers,
    target_device,
    weight_dtype,
)
from ._naming import check_model_coords, default_model_name, local_folder, merge_step
from ._quantization import quantization_label
from ._quiet import quiet_third_party
from ._selfcheck import CheckResult, choose_path, data_probe, probe_windows
from ._settings import Execution, Loading, Windowing, check_group, check_optional_text
from ._torch import require_torch
from ._windows import EncodedText, Window, encode_texts

__all__ = ["HFScorer"]


class HFScorer:
    """Log-likelihoods of texts under a Hugging Face causal language model.

    Parameters
    ----------
    model : str, path or transformers.PreTrainedModel
        A hub id (e.g. ``"EleutherAI/pythia-70m"``) or a local folder, loaded with
        ``AutoModelForCausalLM.from_pretrained`` on first use; or an already-loaded model (then
        give ``tokenizer``).
    tokenizer : transformers tokenizer, optional
        Needed with an already-loaded model; otherwise loaded from ``model``.
    name : str, optional
        Row label. Default: short and stable (:func:`~loglik_map.scoring.default_model_name`):
        the hub id or the folder's base name (``run@step24`` for a checkpoint folder
        ``run/step24``), then ``@revision`` and ``[quantization]`` if any. An already-loaded
        model is named after the folder or hub id it was loaded from; one built in memory
        needs ``name``.
    revision : str, optional
        Hub revision, e.g. Pythia's ``"step1000"`` (which also sets the ``step`` coordinate).
    step : int, optional
        Training step of this checkpoint, recorded as the ``step`` model coordinate (for
        :class:`~loglik_map.Trajectory`). Read from a ``"stepN"`` revision or a checkpoint
        folder name (``step24``, ``checkpoint-500``) when not given.
    coords : mapping, optional
        Further model coordinates of this model's rows, e.g. ``{"seed": 1, "family": "pythia"}``.
    loading : Loading, optional
        How the weights are loaded (:class:`~loglik_map.scoring.Loading`: dtype, device,
        quantization, hub options); default ``Loading()``.
    windowing : Windowing, optional
        Which tokens are scored (:class:`~loglik_map.scoring.Windowing`: convention, context,
        long texts); default ``Windowing()``.
    execution : Execution, optional
        How fast, never what (:class:`~loglik_map.scoring.Execution`: batch size, unembedding,
        self-check fallback, progress); default ``Execution()``.

    Attributes
    ----------
    name : str
        The row label.
    loading, windowing, execution : Loading, Windowing, Execution
        The settings, each checked when it was made.

    Notes
    -----
    Every setting is checked when its group is made; a local folder that does not exist is
    refused when the scorer is made ("no such folder").

    Examples
    --------
    ::

        scorer = lm.HFScorer("EleutherAI/pythia-410m", revision="step143000",
                             loading=lm.scoring.Loading(dtype="bfloat16"),
                             execution=lm.scoring.Execution(batch_tokens=16384))
        matrix = scorer.score(lm.TextSet.from_jsonl("texts-10k-pile.jsonl"))
    """

    def __init__(
        self,
        model: str | PathLike[str] | Any,
        *,
        tokenizer: Any = None,
        name: str | None = None,
        revision: str | None = None,
        step: int | None = None,
        coords: Mapping[str, Any] | None = None,
        loading: Loading | None = None,
        windowing: Windowing | None = None,
        execution: Execution | None = None,
    ) -> None:
        check_optional_text("name", name)
        check_optional_text("revision", revision)
        self.loading: Loading = check_group(loading, Loading, type(self).__name__) or Loading()
        self.windowing: Windowing = check_group(windowing, Windowing, type(self).__name__) or Windowing()
        self.execution: Execution = check_group(execution, Execution, type(self).__name__) or Execution()
        self._source = model
        self._given_tokenizer = tokenizer
        self._tokenizer_loaded: Any = None
        self._config_loaded: Any = None
        quantization = self.loading.quantization
        qlabel = quantization_label(quantization) if quantization is not None else None
        if isinstance(model, (str, PathLike)):
            folder = local_folder(model)  # "no such folder" here, before any hub lookup
            self.model_id = str(model)
            default = default_model_name(model, revision, qlabel)
        else:
            if tokenizer is None:
                raise LoglikMapError("an already-loaded model needs tokenizer= (the one it was trained with)")
            origin = str(getattr(getattr(model, "config", None), "name_or_path", "") or "")
            folder = local_folder(origin) if origin and Path(origin).is_dir() else None
            if not origin and name is None:
                raise LoglikMapError(f"this {type(model).__name__} was built in memory, not loaded from a folder or the "
                                     "hub, so it has no name to label its row: pass name='...'")
            self.model_id = origin or f"in-memory {type(model).__name__}"
            default = default_model_name(origin, revision, qlabel, must_exist=False) if origin else ""
        self.coords = merge_step(check_model_coords(coords), step, revision, folder)
        self.revision = revision
        self.quantization_label = quantization_label(quantization)
        self._check: CheckResult | None = None
        self.name = name or default
        self._loaded: Loaded | None = None

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, convention={self.windowing.convention!r}, "
                f"quantization={self.quantization_label!r})")

    # ------------------------------------------------------------------ loading
    def _hub_kwargs(self) -> dict[str, Any]:
        return dict(revision=self.revision, cache_dir=self.loading.cache_dir, token=self.loading.token,
                    trust_remote_code=self.loading.trust_remote_code)

    def _pretrained(self, attr: str, auto_class: str) -> Any:
        """``transformers.<auto_class>.from_pretrained(model)``, loaded once and kept in ``self.<attr>``."""
        if getattr(self, attr) is None:
            require_torch()
            import transformers

            with loading_errors(self.model_id, self.revision):
                loader = getattr(transformers, auto_class)
                setattr(self, attr, loader.from_pretrained(self._source, **self._hub_kwargs()))
        return getattr(self, attr)

    def _tokenizer(self) -> Any:
        """The tokenizer, loaded on its own (without the model) the first time it is needed."""
        if self._given_tokenizer is not None:
            return self._given_tokenizer
        return self._pretrained("_tokenizer_loaded", "AutoTokenizer")

    def _config(self) -> Any:
        """The model's config: the loaded model's, or read on its own (the weights are not loaded)."""
        if self._loaded is not None:
            return self._loaded.model.config
        if not isinstance(self._source, (str, PathLike)):
            return self._source.config
        return self._pretrained("_config_loaded", "AutoConfig")

    def context_length(self) -> int:
        """Tokens per window: ``max_length``, or the model's context (read from its config).

        Returns
        -------
        int
            Tokens per window.

        Raises
        ------
        LoglikMapError
            If ``max_length`` exceeds the context the model's config states (positions it never
            saw give numbers that mean nothing, or fail).
        """
        stated = stated_positions(self._config())
        max_length = self.windowing.max_length
        if max_length is None:
            return stated or DEFAULT_CONTEXT
        if stated is not None and max_length > stated:
            raise LoglikMapError(f"max_length={max_length} exceeds the {stated} positions of {self.name!r}; "
                                 f"use max_length ≤ {stated} (long texts are scored in rolling windows)")
        return max_length

    def _load(self) -> Loaded:
        if self._loaded is not None:
            return self._loaded
        require_torch()
        from transformers import AutoModelForCausalLM

        device = target_device(self.loading.device)
        dtype = weight_dtype(self.loading.dtype, device)
        if isinstance(self._source, (str, PathLike)):
            with loading_errors(self.model_id, self.revision):
                tokenizer = self._tokenizer()
                options = from_pretrained_options(device, dtype, self.loading.quantization, self._hub_kwargs(),
                                                  self.loading.device)
                with quiet_transformers():
                    model = AutoModelForCausalLM.from_pretrained(self._source, **options)
            if "device_map" not in options:
                model = model.to(device)
        else:
            model, tokenizer = self._source, self._given_tokenizer
            device = next(model.parameters()).device
        self._loaded = finish_loading(model, tokenizer, device, self.loading.quantization, self.quantization_label,
                                      dtype)
        return self._loaded

    def unload(self) -> None:
        """Free the model (it is loaded again on the next :meth:`score`)."""
        self._loaded = None
        self._check = None

    def self_check(self, windows: list[Window] | None = None) -> CheckResult:
        """The self-check of this model (loads it, and runs the check once per load).

        Parameters
        ----------
        windows : list of Window, optional
            Windows of the texts about to be scored: two of them join the fixed probe
            (:func:`~loglik_map.scoring._selfcheck.data_probe`).

        Returns
        -------
        CheckResult
            The scoring path taken (``.path.label``), the traced head (``.plan``), the fast
            path's largest difference from the model's own forward on the probe (``.fast_gap``,
            nats per text) and why a slower path was taken (``.reason``).

        Raises
        ------
        LoglikMapError
            With ``fallback="error"`` when the fast path disagrees, or when nothing reproduces
            the model's own forward.
        """
        loaded = self._load()
        if self._check is None:
            probe = probe_windows(loaded.tokenizer, convention=self.windowing.convention,
                                  max_length=self.context_length())
            probe += data_probe(windows or [])
            self._check = choose_path(loaded, probe, name=self.name, lens=self._is_lens,
                                      fallback=self.execution.fallback, unembed=self.execution.unembed)
        return self._check

    # ------------------------------------------------------------------ scoring
    def encode(self, texts: TextSet | Sequence[str]) -> list[EncodedText]:
        """Tokenize ``texts`` into windows under this scorer's convention and context length.

        Needs only the tokenizer and the model's config, so texts that cannot be scored (fewer
        than two tokens: the first only conditions) are found before the model loads, all of
        them at once, named by text id.

        Parameters
        ----------
        texts : TextSet or sequence of str
            The texts.

        Returns
        -------
        list of EncodedText
            One per text, with its windows.
        """
        texts = TextSet.coerce(texts)
        return encode_texts(self._tokenizer(), texts.texts, convention=self.windowing.convention,
                            max_length=self.context_length(), long_texts=self.windowing.long_texts,
                            stride=self.windowing.stride, text_ids=texts.ids)

    _is_lens = False

    def _rows(self, check: CheckResult) -> list[tuple[str, dict[str, Any]]]:
        return [(self.name, {})]

    def _warn_truncated(self, n_dropped: np.ndarray, n_tokens: np.ndarray) -> None:
        """One warning per :meth:`score` call (one per model) when truncation cut texts."""
        cut = int((n_dropped > 0).sum())
        warnings.warn(
            f"model {self.name!r}: long_texts='truncate' cut {cut} of {len(n_dropped)} texts to their first "
            f"{self.context_length()} tokens, dropping {int(n_dropped.sum())} of {int(n_tokens.sum())} tokens "
            f"({n_dropped.sum() / n_tokens.sum():.0%}); those log-likelihoods cover a prefix, not the text. The matrix "
            "records it (n_tokens_dropped), and ModelMap, entropy() and cross_entropy() refuse it unless "
            "allow_truncated=True; long_texts='rolling' scores every token.",
            LoglikMapWarning, stacklevel=3,
        )

    def score(self, texts: TextSet | Sequence[str]) -> LogLikelihoodMatrix:
        """Log-likelihood of every text, nats: a one-row :class:`~loglik_map.LogLikelihoodMatrix`.

        Model coordinates record the model, revision, dtype, quantization, convention, long-text
        mode and how many texts were truncated, and the scorer's ``step`` and ``coords``; cell
        coordinates (model × text) record, for every text, the tokens scored (``n_tokens``) and
        the tokens truncation dropped (``n_tokens_dropped``; 0 unless ``long_texts="truncate"``
        cut the text, which is also warned about).

        Parameters
        ----------
        texts : TextSet or sequence of str
            The texts (a TextSet keeps its domains and metadata as text coordinates).

        Returns
        -------
        LogLikelihoodMatrix
            One row (one per layer for :class:`LogitLensScorer`), nats.
        """
        require_torch()
        texts = TextSet.coerce(texts)
        encoded = self.encode(texts)  # tokenizer and config only: bad texts fail before the model loads
        with quiet_third_party():  # bitsandbytes' expected notices; real warnings and errors pass
            loaded = self._load()
            windows = [w for e in encoded for w in e.windows]
            check = self.self_check(windows)
            rows = self._rows(check)
            batch_tokens = self.execution.batch_tokens
            if isinstance(batch_tokens, str):  # "auto" (checked when the scorer was made)
                batch_tokens = auto_batch_tokens(loaded.model, n_states=len(rows))
            sums = score_windows(loaded, windows, batch_tokens, len(rows), plan=check.plan, path=check.path,
                                 lens=self._is_lens, progress=self.execution.progress, desc=self.name,
                                 unembed=self.execution.unembed)
        values = np.zeros((len(rows), len(texts)))
        owner = np.array([w.text_index for w in windows])
        for r in range(len(rows)):
            np.add.at(values[r], owner, sums[r])
        bad = ~np.isfinite(values)
        if bad.any():
            r, k = np.argwhere(bad)[0]
            raise LoglikMapError(f"model {rows[r][0]!r} gave a non-finite log-likelihood for {int(bad.sum())} "
                                 f"text(s), the first text {texts.ids[k]!r} (index {k})")
        n_dropped = np.array([e.n_dropped for e in encoded], dtype=np.int64)
        n_scored = np.array([sum(w.n_scored for w in e.windows) for e in encoded], dtype=np.int64)
        if n_dropped.any():
            self._warn_truncated(n_dropped, np.array([e.n_tokens for e in encoded]))
        coords: dict[str, list[Any]] = {
            "source_model": [self.model_id] * len(rows),
            "revision": [self.revision or ""] * len(rows),
            "dtype": [loaded.dtype_label] * len(rows),
            "quantization": [self.quantization_label] * len(rows),
            "convention": [self.windowing.convention] * len(rows),
            "long_texts": [self.windowing.long_texts] * len(rows),
            "n_texts_truncated": [int((n_dropped > 0).sum())] * len(rows),
            "scoring_path": [check.path.label] * len(rows),
            **{key: [value] * len(rows) for key, value in self.coords.items()},
        }
        for key in rows[0][1]:
            coords[key] = [extra[key] for _, extra in rows]
        return LogLikelihoodMatrix(
            values,
            models=[n for n, _ in rows],
            texts=texts.ids,
            n_bytes=texts.n_bytes,
            model_coords=coords,
            text_coords=texts.text_coords(),
            cell_coords={"n_tokens": np.tile(n_scored, (len(rows), 1)),
                         "n_tokens_dropped": np.tile(n_dropped, (len(rows), 1))},
            attrs={"convention": self.windowing.convention, "scorer": type(self).__name__,
                   "log_softmax_dtype": "float32", "sum_dtype": "float64"},
        )
