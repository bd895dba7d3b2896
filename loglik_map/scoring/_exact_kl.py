"""Exact token-level KL between two models that share a vocabulary (``loglik_map.exact_kl``).

The map's KL (:ref:`method-map`) is an estimate from one log-likelihood per text; it works across
tokenizers. When two models share one — a quantized copy and its original, checkpoints of a run,
a fine-tune and its base, two logit-lens layers of one model — the full next-token
distributions can be compared at every position of the same texts. Both models run on the same
token windows as :class:`~loglik_map.HFScorer` (same conventions, same long-text handling); each
batch goes once through each model (once in all for layers of one model), and at the scored
positions the float32 logits of both are formed a chunk of positions at a time
(:func:`~loglik_map.scoring._unembed.logit_rows`), never for the whole batch at once. Per position:
KL in both directions over the whole vocabulary (float32), the true token's log-probability
under each, and whether the most likely tokens agree; per text the float64 sums.

torch is imported when :func:`exact_kl` runs.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from os import PathLike
from typing import Any

import numpy as np
import xarray as xr

from .._progress import PROGRESS_DOC, ProgressArg
from .._util import fill_doc
from ..errors import LoglikMapError, LoglikMapWarning, WrongTypeError
from ..texts import TextSet
from ._exact_kl_run import batch_budget, run_pair
from ._kl_summary import exact_kl_dataset
from ._settings import Execution, Loading, Windowing, check_group
from ._vocabulary import VocabularyMismatch, tokenizer_difference

__all__ = ["PairSide", "VocabularyMismatch", "exact_kl", "tokenizer_difference"]

@dataclass(frozen=True)
class PairSide:
    """One of the two distributions compared: a scorer's model, at its output or a logit-lens layer."""

    scorer: Any
    layer: int | None
    name: str


def _as_scorer(model: Any, groups: dict[str, Any]) -> tuple[Any, bool]:
    """The scorer for ``model`` and whether it names the logit lens."""
    from ._hf import HFScorer
    from ._lens import LogitLensScorer
    from ._runs import ModelSpec

    if isinstance(model, HFScorer):
        given = sorted(k for k, v in groups.items() if v is not None)
        if given:
            raise LoglikMapError(f"scoring settings ({', '.join(given)}) apply to models given by name or "
                                 "ModelSpec; set them on the HFScorer you passed")
        return model, isinstance(model, LogitLensScorer)
    if isinstance(model, (str, PathLike, ModelSpec)):
        spec = ModelSpec.coerce(model)
        if spec.final_norm is not None:
            raise LoglikMapError(f"{spec.label}: exact_kl traces the final norm of the logit lens itself; give the "
                                 "ModelSpec without final_norm")
        return replace(spec, logit_lens=False).scorer(**groups), spec.logit_lens
    raise LoglikMapError(f"cannot score {model!r}: give a hub id, a folder, a ModelSpec or an HFScorer")


def _same_model(a: Any, b: Any) -> bool:
    from ._hf import HFScorer

    if a is b:
        return True
    return not isinstance(a, HFScorer) and not isinstance(b, HFScorer) and a == b


def _resolve(model_a: Any, model_b: Any, layer_a: int | None, layer_b: int | None,
             groups: dict[str, Any]) -> tuple[PairSide, PairSide]:
    """The two sides; one scorer (one load, one forward pass per batch) where both name the same model."""
    seen: list[tuple[Any, Any, bool]] = []
    sides = []
    for model, layer, which in ((model_a, layer_a, "a"), (model_b, layer_b, "b")):
        earlier = next(((s, lens) for m, s, lens in seen if _same_model(m, model)), None)
        scorer, lens = _as_scorer(model, groups) if earlier is None else earlier
        if lens and layer is None:
            raise LoglikMapError(f"model_{which} is a logit-lens spec: say which layer with layer_{which}=")
        seen.append((model, scorer, lens))
        name = scorer.name + (f"@layer{layer}" if layer is not None else "")
        sides.append(PairSide(scorer, layer, name))
    a, b = sides
    if a.scorer is b.scorer and a.layer == b.layer:
        raise LoglikMapError(f"model_a and model_b are the same model at the same layer ({a.name}): the KL is 0; "
                             "give layer_a= and layer_b= to compare two layers")
    return a, b


def _context(side_a: PairSide, side_b: PairSide) -> int:
    """Tokens per window for both: the ``max_length`` given, or the shorter of the two models' contexts.

    Read from the configs alone (no weights); a ``max_length`` beyond either model's stated
    positions is refused, as :meth:`HFScorer.context_length` refuses it for one model.
    """
    from ._architectures import stated_positions

    a, b = side_a.scorer.windowing, side_b.scorer.windowing
    lengths = {n for n in (a.max_length, b.max_length) if n is not None}
    if len(lengths) > 1:
        raise LoglikMapError(f"max_length differs ({a.max_length} vs {b.max_length}); give both the same")
    given = lengths.pop() if lengths else None
    stated = {side.name: stated_positions(side.scorer._config()) for side in (side_a, side_b)}
    for name, n in stated.items():
        if given is not None and n is not None and given > n:
            raise LoglikMapError(f"max_length={given} exceeds the {n} positions of {name!r}; use max_length ≤ {n} "
                                 "(long texts are scored in rolling windows)")
    return given if given is not None else min(n or 2048 for n in stated.values())


def _windows(side_a: PairSide, side_b: PairSide, texts: TextSet) -> tuple[list[Any], int]:
    """Token windows both models score: one tokenizer, one convention, one context.

    Only the tokenizers and configs are read here, so a pair that cannot be compared (different
    tokenizers or scoring options) or texts that cannot be scored are refused before any
    weights load.
    """
    from ._windows import encode_texts, token_ids

    a, b = side_a.scorer.windowing, side_b.scorer.windowing
    for attr in ("convention", "long_texts", "stride"):
        if getattr(a, attr) != getattr(b, attr):
            raise LoglikMapError(f"{side_a.name} uses {attr}={getattr(a, attr)!r}, {side_b.name} {attr}="
                                 f"{getattr(b, attr)!r}: exact KL needs one set of token windows; give both the same")
    tok_a, tok_b = side_a.scorer._tokenizer(), side_b.scorer._tokenizer()
    why = tokenizer_difference(tok_a, tok_b)
    if why is not None:
        raise VocabularyMismatch(f"{side_a.name} and {side_b.name} do not share a tokenizer ({why}): exact token-level "
                                 "KL needs one vocabulary; compare them on the model map (ModelMap.kl) instead")
    if tok_b is not tok_a:  # the check above compares structure; the texts' ids must agree too
        ids_a = token_ids(tok_a, texts.texts, convention=a.convention)
        ids_b = token_ids(tok_b, texts.texts, convention=b.convention)
        bad = next((k for k, (x, y) in enumerate(zip(ids_a, ids_b)) if x != y), None)
        if bad is not None:
            raise VocabularyMismatch(f"{side_a.name} and {side_b.name} tokenize text {texts.ids[bad]!r} (index {bad}) "
                                     "differently; exact token-level KL needs one tokenization")
    context = _context(side_a, side_b)
    encoded = encode_texts(tok_a, texts.texts, convention=a.convention, max_length=context,
                           long_texts=a.long_texts, stride=a.stride, text_ids=texts.ids)
    n_dropped = np.array([e.n_dropped for e in encoded])
    if n_dropped.any():
        n_tokens = sum(e.n_tokens for e in encoded)
        warnings.warn(f"exact KL of {side_a.name} vs {side_b.name}: long_texts='truncate' cut {int((n_dropped > 0).sum())} "
                      f"of {len(encoded)} texts to their first {context} tokens, dropping {int(n_dropped.sum())} of "
                      f"{n_tokens} tokens ({n_dropped.sum() / n_tokens:.0%}); the per-text KLs cover prefixes, not the "
                      "texts (recorded as n_tokens_dropped); long_texts='rolling' scores every token",
                      LoglikMapWarning, stacklevel=3)
    return encoded, context


# ---------------------------------------------------------------------- the computation
@fill_doc(progress=PROGRESS_DOC)
def exact_kl(model_a: Any, model_b: Any, texts: TextSet | Sequence[str], *, layer_a: int | None = None,
             layer_b: int | None = None, progress: ProgressArg = False, loading: Loading | None = None,
             windowing: Windowing | None = None, execution: Execution | None = None) -> xr.Dataset:
    """Exact teacher-forced KL between two models that share a vocabulary, at every scored position.

    For each scored position t of each text x (the positions :class:`~loglik_map.HFScorer`
    scores), ``KL_t(a‖b) = Σ_v p_a(v|x_<t) (log p_a(v|x_<t) − log p_b(v|x_<t))`` over the whole
    vocabulary, and the reverse; per text the sums over its positions. This is *not* the
    sequence-level KL the model map estimates: the prefixes x_<t are the corpus text's, not
    samples from p_a (see the user guide page "Exact KL beside the estimator").

    Parameters
    ----------
    model_a, model_b : str, path, ModelSpec or HFScorer
        The two models, as :class:`~loglik_map.HFScorer` accepts them (a hub id, a folder, a
        :class:`~loglik_map.ModelSpec`, e.g. with ``quantization="8bit"``), or scorers. ``model_a``
        is the reference (llama.cpp's *base*): ``kl_ab`` is its KLD and Δp is p_b − p_a. The
        same model (same object or equal spec) passed twice with two ``layer``\\ s is loaded
        once and each batch runs through it once.
    texts : TextSet or sequence of str
        The texts the KL is taken over (teacher-forced, token by token).
    layer_a, layer_b : int, optional
        Logit-lens layer (0 = embeddings … L = the model's output; negative counts from L), as
        :class:`~loglik_map.LogitLensScorer` scores it. ``None``: the model's output.
    progress : bool, callable or None, default False
        Progress over batches.
        {progress}
    loading, windowing, execution : Loading, Windowing, Execution, optional
        Settings of the models given by name or spec (:class:`~loglik_map.scoring.Loading`, ...;
        a group a :class:`~loglik_map.ModelSpec` gives replaces these). Both models must use the
        same convention and long-text handling; the context is the shorter of the two models'
        unless ``max_length`` is given.

    Returns
    -------
    xarray.Dataset
        Along ``text``: ``kl_ab``, ``kl_ba`` and ``kl_sym`` (nats per text: float64 sums of the
        float32 per-position KLs), ``kl_ab_bpb`` … (each text's KL / (its bytes · ln 2),
        bits/byte), ``logp_a``, ``logp_b`` (the texts' log-likelihoods, nats), ``n_tokens`` and
        ``n_tokens_dropped`` (tokens ``long_texts="truncate"`` cut, which is also warned about).
        Along ``token``: the per-position values. Summary (llama.cpp's statistics, and the
        bits/byte averages on the map's scale — mean over texts / (B̄ ln 2) with SEs over texts):
        see :func:`loglik_map.scoring._kl_summary.summarize_exact_kl`; print it with
        :func:`loglik_map.scoring.exact_kl_report`.

    Raises
    ------
    LoglikMapError
        If the tokenizers differ (the message names the difference: vocabulary size, special
        tokens, vocabulary content, merges or pipeline), the output vocabularies differ, or the
        two models' scoring options would give different token windows.

    Examples
    --------
    ::

        four_bit = lm.ModelSpec("EleutherAI/pythia-410m", loading=lm.scoring.Loading(quantization="4bit"))
        ds = lm.exact_kl("EleutherAI/pythia-410m", four_bit, texts)
        print(lm.scoring.exact_kl_report(ds))
        ds = lm.exact_kl("EleutherAI/pythia-410m", "EleutherAI/pythia-410m", texts, layer_a=12, layer_b=13)
    """
    from ._torch import require_torch

    for which, layer in (("layer_a", layer_a), ("layer_b", layer_b)):
        if layer is not None and (isinstance(layer, (bool, np.bool_)) or not isinstance(layer, (int, np.integer))):
            raise WrongTypeError(f"{which} must be a whole layer number (0 = embeddings, negative counts from the "
                                 f"output) or None, got {layer!r} ({type(layer).__name__})")
    require_torch()
    texts = TextSet.coerce(texts)
    groups = {"loading": check_group(loading, Loading, "exact_kl"),
              "windowing": check_group(windowing, Windowing, "exact_kl"),
              "execution": check_group(execution, Execution, "exact_kl")}
    side_a, side_b = _resolve(model_a, model_b, layer_a, layer_b, groups)
    encoded, max_length = _windows(side_a, side_b, texts)
    windows = [w for e in encoded for w in e.windows]
    values = run_pair((side_a, side_b), windows, batch_budget((side_a, side_b)), progress)
    owner = np.repeat([w.text_index for w in windows], [w.n_scored for w in windows])
    done = np.zeros(len(texts), dtype=np.int64)
    target = np.empty(owner.size, dtype=np.int64)
    start = 0
    for w in windows:  # the k-th scored token of a text predicts its token k + 1
        n = w.n_scored
        target[start:start + n] = done[w.text_index] + 1 + np.arange(n)
        done[w.text_index] += n
        start += n
    n_dropped = np.array([e.n_dropped for e in encoded])
    sa = side_a.scorer
    attrs = {"model_a": side_a.name, "model_b": side_b.name,
             "layer_a": -1 if side_a.layer is None else int(side_a.layer),
             "layer_b": -1 if side_b.layer is None else int(side_b.layer),
             "dtype_a": sa._load().dtype_label, "dtype_b": side_b.scorer._load().dtype_label,
             "convention": sa.windowing.convention, "long_texts": sa.windowing.long_texts, "max_length": int(max_length),
             "n_texts_truncated": int((n_dropped > 0).sum()), "vocab_size": len(sa._load().tokenizer),
             "kl_direction": "kl_ab = KL(p_a || p_b): model_a is the reference (llama.cpp's base); Δp = p_b − p_a",
             "logit_dtype": "float32", "sum_dtype": "float64"}
    return exact_kl_dataset(texts=texts, token_text=owner, token_target=target, kl_ab=values["kl_ab"],
                            kl_ba=values["kl_ba"], logp_a=values["logp_a"], logp_b=values["logp_b"],
                            same_top=values["same_top"], n_tokens_dropped=n_dropped, attrs=attrs)
