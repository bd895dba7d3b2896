"""Exact token-level KL between two models that share a vocabulary (``loglik_map.exact_kl``).

The map's KL (SPEC §2) is an estimate from one log-likelihood per text; it works across
tokenizers. When two models share one — a quantized copy and its original, checkpoints of a run,
a fine-tune and its base, two logit-lens layers of one model — the full next-token
distributions can be compared at every position of the same texts. Both models run on the same
token windows as :class:`~loglik_map.HFScorer` (same conventions, same long-text handling); each
batch goes once through each model (once in all for layers of one model), and at the scored
positions the float32 logits of both are formed a chunk of positions at a time
(:func:`~loglik_map.scoring.unembed.logit_rows`), never for the whole batch at once. Per position:
KL in both directions over the whole vocabulary (float32), the true token's log-probability
under each, and whether the most likely tokens agree; per text the float64 sums.

torch is imported when :func:`exact_kl` runs.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from os import PathLike
from typing import Any

import numpy as np
import xarray as xr

from ..errors import LoglikMapError, LoglikMapWarning
from ..texts import TextSet
from .kl_summary import exact_kl_dataset

__all__ = ["exact_kl", "tokenizer_difference", "PairSide", "VocabularyMismatch"]

_SPECIAL_NAMES = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")


class VocabularyMismatch(LoglikMapError):
    """Two models whose tokenizers or output vocabularies differ: no exact token-level KL."""


# ---------------------------------------------------------------------- tokenizers
def _backend_json(tok: Any) -> dict[str, Any] | None:
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        return None
    return json.loads(backend.to_str())


def _specials(tok: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _SPECIAL_NAMES:
        value = getattr(tok, name, None)
        if value is not None:
            out[name] = (str(value), tok.convert_tokens_to_ids(str(value)))
    for idx, added in sorted(getattr(tok, "added_tokens_decoder", {}).items()):
        out[f"added token {idx}"] = str(added)
    return out


def _first_difference(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    for key in sorted(set(a) | set(b), key=str):
        if a.get(key) != b.get(key):
            return key
    return None


def tokenizer_difference(tok_a: Any, tok_b: Any) -> str | None:
    """What differs between two tokenizers, in words, or ``None`` if they tokenize alike.

    Compared in order: vocabulary size, special tokens (BOS/EOS/UNK/PAD…, added tokens), the
    vocabulary's content (token → id), BPE merges, and the rest of a fast tokenizer's pipeline
    (normaliser, pre-tokeniser, post-processor, model options).
    """
    if tok_a is tok_b:
        return None
    if len(tok_a) != len(tok_b):
        return f"vocabulary sizes differ: {len(tok_a)} vs {len(tok_b)} tokens"
    sa, sb = _specials(tok_a), _specials(tok_b)
    key = _first_difference(sa, sb)
    if key is not None:
        return f"special tokens differ: {key} is {sa.get(key)!r} vs {sb.get(key)!r}"
    va, vb = tok_a.get_vocab(), tok_b.get_vocab()
    if va != vb:
        for token, idx in sorted(va.items(), key=lambda kv: kv[1]):
            if vb.get(token) != idx:
                other = vb.get(token)
                where = f"id {other}" if other is not None else "absent"
                return f"vocabularies differ: token {token!r} is id {idx} vs {where}"
        return "vocabularies differ"  # pragma: no cover - equal sizes and no differing entry of a
    ja, jb = _backend_json(tok_a), _backend_json(tok_b)
    if (ja is None) != (jb is None):
        return "one tokenizer is a fast (Rust) tokenizer, the other is not"
    if ja is not None and jb is not None:
        ma, mb = ja.get("model", {}).get("merges"), jb.get("model", {}).get("merges")
        if ma != mb:
            ma, mb = ma or [], mb or []
            if len(ma) != len(mb):
                return f"BPE merges differ: {len(ma)} vs {len(mb)} merges"
            i = next(i for i, (x, y) in enumerate(zip(ma, mb)) if x != y)
            return f"BPE merges differ: merge {i} is {ma[i]!r} vs {mb[i]!r}"
        for part in ("normalizer", "pre_tokenizer", "post_processor", "model"):
            if ja.get(part) != jb.get(part):
                return f"tokenizer pipelines differ: {part}"
    return None


# ---------------------------------------------------------------------- resolving the two sides
@dataclass(frozen=True)
class PairSide:
    """One of the two distributions compared: a scorer's model, at its output or a logit-lens layer."""

    scorer: Any
    layer: int | None
    name: str


def _as_scorer(model: Any, options: dict[str, Any]) -> tuple[Any, bool]:
    """The scorer for ``model`` and whether it names the logit lens."""
    from .hf import HFScorer
    from .runs import ModelSpec

    if isinstance(model, HFScorer):
        if options:
            raise LoglikMapError(f"scoring options ({', '.join(sorted(options))}) apply to models given by name or "
                                 "ModelSpec; set them on the HFScorer you passed")
        return model, model.logit_lens
    if isinstance(model, (str, PathLike, ModelSpec)):
        spec = ModelSpec.coerce(model)
        return replace(spec, logit_lens=False).scorer(**options), spec.logit_lens
    raise LoglikMapError(f"cannot score {model!r}: give a hub id, a folder, a ModelSpec or an HFScorer")


def _same_model(a: Any, b: Any) -> bool:
    from .hf import HFScorer

    if a is b:
        return True
    return not isinstance(a, HFScorer) and not isinstance(b, HFScorer) and a == b


def _resolve(model_a: Any, model_b: Any, layer_a: int | None, layer_b: int | None,
             options: dict[str, Any]) -> tuple[PairSide, PairSide]:
    """The two sides; one scorer (one load, one forward pass per batch) where both name the same model."""
    seen: list[tuple[Any, Any, bool]] = []
    sides = []
    for model, layer, which in ((model_a, layer_a, "a"), (model_b, layer_b, "b")):
        earlier = next(((s, lens) for m, s, lens in seen if _same_model(m, model)), None)
        scorer, lens = _as_scorer(model, options) if earlier is None else earlier
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
    from .hf import _stated_positions

    a, b = side_a.scorer, side_b.scorer
    lengths = {n for n in (a.max_length, b.max_length) if n is not None}
    if len(lengths) > 1:
        raise LoglikMapError(f"max_length differs ({a.max_length} vs {b.max_length}); give both the same")
    given = lengths.pop() if lengths else None
    stated = {side.name: _stated_positions(side.scorer._config()) for side in (side_a, side_b)}
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
    from .windows import encode_texts, token_ids

    a, b = side_a.scorer, side_b.scorer
    for attr in ("convention", "long_texts", "stride"):
        if getattr(a, attr) != getattr(b, attr):
            raise LoglikMapError(f"{side_a.name} uses {attr}={getattr(a, attr)!r}, {side_b.name} {attr}="
                                 f"{getattr(b, attr)!r}: exact KL needs one set of token windows; give both the same")
    tok_a, tok_b = a._tokenizer(), b._tokenizer()
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
@dataclass
class _Model:
    """A loaded model whose forward pass serves one or both sides."""

    loaded: Any
    head: Any
    lens_norm: Any
    n_layers: int
    layers: list[int | None]  # which states the sides need: None = last_hidden_state


def _models(sides: Sequence[PairSide]) -> tuple[list[_Model], list[tuple[int, int]]]:
    """Distinct models and, for each side, (model index, slot in that model's states)."""
    from .hf import find_final_norm
    from .unembed import Head

    models: list[_Model] = []
    owners: dict[int, int] = {}
    where = []
    for side in sides:
        key = id(side.scorer)
        if key not in owners:
            loaded = side.scorer._load()
            base, head = loaded.model.base_model, loaded.model.get_output_embeddings()
            if base is loaded.model or head is None:
                raise LoglikMapError(f"{type(loaded.model).__name__} has no separate base model and output embeddings")
            n_layers = int(getattr(loaded.model.config, "num_hidden_layers", 0))
            owners[key] = len(models)
            models.append(_Model(loaded, Head(head), None, n_layers, []))
        m = models[owners[key]]
        layer = side.layer
        if layer is not None:
            if not m.n_layers:
                raise LoglikMapError(f"{side.name}: the config has no num_hidden_layers; the logit lens needs it")
            if not -(m.n_layers + 1) <= layer <= m.n_layers:
                raise LoglikMapError(f"{side.name}: layer {layer} out of range 0 … {m.n_layers}")
            layer %= m.n_layers + 1
            if layer == m.n_layers:
                layer = None  # the last hidden state is the model's own (final-normed) output
            elif m.lens_norm is None:
                m.lens_norm = find_final_norm(m.loaded.model, side.scorer.final_norm)
        if layer not in m.layers:
            m.layers.append(layer)
        where.append((owners[key], m.layers.index(layer)))
    heads = {models[i].head.vocab for i, _ in where}
    if len(heads) > 1:
        raise VocabularyMismatch(f"the output layers have {' vs '.join(map(str, sorted(heads)))} rows (vocabulary "
                             "padding differs): exact KL needs one output vocabulary")
    return models, where


def _states(torch: Any, model: _Model, ids: Any, rows: Any, positions: Any) -> list[Any]:
    """Hidden states at the scored positions for every layer ``model`` serves, on its head's device."""
    lm = model.loaded.model
    device = lm.get_input_embeddings().weight.device
    lens = any(layer is not None for layer in model.layers)
    out = lm.base_model(input_ids=ids.to(device), use_cache=False, output_hidden_states=lens)
    picked = []
    for layer in model.layers:
        h = out.last_hidden_state if layer is None else out.hidden_states[layer]
        x = h[rows.to(h.device), positions.to(h.device)]
        if layer is not None:
            params = list(model.lens_norm.parameters())
            x = model.lens_norm(x.to(params[0].device if params else x.device))
        picked.append(x.to(model.head.device))
    return picked


def _rowdot(torch: Any, x: Any, y: Any) -> Any:
    """Row-wise dot products of two (S, V) tensors, without an (S, V) temporary."""
    return torch.bmm(x.unsqueeze(1), y.unsqueeze(2)).view(-1)


def _pair_chunk(torch: Any, za: Any, zb: Any, targets: Any, work: Any = None) -> tuple[Any, ...]:
    """Per-position KL(a‖b), KL(b‖a), log p_a(target), log p_b(target), same top token (float32).

    ``za`` and ``zb`` (float32 logits, S × V) are overwritten; ``work`` (4 × S' × V float32, S' ≥ S),
    if given, holds the log-probabilities and probabilities instead of fresh allocations — a CPU
    heap that keeps getting chunk-sized blocks between small ones fragments. With Δ = z_a − z_b and
    c = E_pa[Δ], KL(a‖b) = E_pa[Δ] − (lse_a − lse_b) = log E_pa[exp(−(Δ − c))], computed as
    ``log1p(E_pa[expm1(−(Δ − c))])``: no log-normaliser is subtracted, so a KL of 1e-5 nats keeps
    ~4 significant digits in float32 (the textbook Σ p_a (log p_a − log p_b) loses everything
    below ~1e-6, the rounding of log p at the scale of the logits). The reverse direction
    likewise with p_b. Rows where the exponential overflows (logit differences beyond ~88 nats,
    i.e. a huge KL) use the textbook form, which is accurate there.
    """
    same = za.argmax(dim=-1) == zb.argmax(dim=-1)
    if work is None:
        work = torch.empty((4, *za.shape), dtype=za.dtype, device=za.device)
    la, lb, pa, pb = (w[:za.shape[0]] for w in work)
    torch.log_softmax(za, dim=-1, out=la)
    torch.log_softmax(zb, dim=-1, out=lb)
    ta = la.gather(-1, targets[:, None]).view(-1)
    tb = lb.gather(-1, targets[:, None]).view(-1)
    torch.exp(la, out=pa)
    torch.exp(lb, out=pb)
    dz = za.sub_(zb)
    work = zb
    c_ab, c_ba = _rowdot(torch, pa, dz), _rowdot(torch, pb, dz)
    torch.sub(c_ab[:, None], dz, out=work).expm1_()
    kl_ab = torch.log1p(_rowdot(torch, pa, work))
    torch.sub(dz, c_ba[:, None], out=work).expm1_()
    kl_ba = torch.log1p(_rowdot(torch, pb, work))
    # the textbook form for rows whose exponentials overflowed (on a GPU always computed: no host sync)
    if za.device.type != "cpu" or not bool((torch.isfinite(kl_ab) & torch.isfinite(kl_ba)).all()):
        diff = la.sub_(lb)
        kl_ab = torch.where(torch.isfinite(kl_ab), kl_ab, _rowdot(torch, pa, diff))
        kl_ba = torch.where(torch.isfinite(kl_ba), kl_ba, -_rowdot(torch, pb, diff))
    return kl_ab, kl_ba, ta, tb, same


def _run(sides: Sequence[PairSide], windows: list[Any], batch_tokens: int, progress: bool) -> dict[str, np.ndarray]:
    """Per-token arrays in window order, for the pair ``sides``."""
    import torch

    from .batching import pad_batch, run_batches
    from .unembed import logit_rows, postprocess_logits

    models, where = _models(sides)
    (ma, sa), (mb, sb) = where
    head_a, head_b = models[ma].head, models[mb].head
    config_a, config_b = models[ma].loaded.model.config, models[mb].loaded.model.config
    rows_per_chunk = logit_rows(head_a.device, head_a.vocab)
    if head_a.device.type != "cpu":  # six chunk-sized float32 buffers live at once, not one
        rows_per_chunk = max(128, rows_per_chunk // 4)
    offsets = np.concatenate([[0], np.cumsum([w.n_scored for w in windows])])
    total = int(offsets[-1])
    device = head_a.device
    work = torch.empty((4, rows_per_chunk, head_a.vocab), dtype=torch.float32, device=device)
    # per-token results go straight to their place: one allocation, no host wait until the end
    names = ("kl_ab", "kl_ba", "logp_a", "logp_b", "same_top")
    result = {n: torch.empty(total, dtype=torch.bool if n == "same_top" else torch.float32, device=device)
              for n in names}

    def run_batch(batch: list[int]) -> None:
        ids, rows, positions = pad_batch(torch, windows, batch)
        states = [_states(torch, m, ids, rows, positions) for m in models]
        ha, hb = states[ma][sa], states[mb][sb]
        targets = ids[rows, positions + 1].to(device)
        starts = np.asarray([windows[w].score_from - 1 for w in batch])
        index = torch.from_numpy(offsets[np.asarray(batch)][rows.numpy()] + positions.numpy()
                                 - starts[rows.numpy()]).to(device)
        for p0 in range(0, ha.shape[0], rows_per_chunk):
            p1 = min(p0 + rows_per_chunk, ha.shape[0])
            za = postprocess_logits(config_a, head_a.logits(ha[p0:p1]))
            zb = postprocess_logits(config_b, head_b.logits(hb[p0:p1])).to(za.device)
            for n, value in zip(names, _pair_chunk(torch, za, zb, targets[p0:p1], work)):
                result[n][index[p0:p1]] = value

    run_batches(windows, batch_tokens, run_batch, what=f"exact KL {sides[0].name} vs {sides[1].name}",
                desc=f"exact KL {sides[0].name} vs {sides[1].name}", progress=progress)
    return {n: v.cpu().numpy() for n, v in result.items()}  # the only wait for the device


def _batch_budget(sides: Sequence[PairSide]) -> int:
    from .batching import auto_batch_tokens

    budgets = []
    for side in sides:
        bt = side.scorer.batch_tokens
        if bt == "auto":
            model = side.scorer._load().model
            lens = side.layer is not None
            bt = auto_batch_tokens(model, n_states=int(getattr(model.config, "num_hidden_layers", 0)) + 1 if lens else 1)
        budgets.append(int(bt))
    return min(budgets)


def exact_kl(model_a: Any, model_b: Any, texts: TextSet | Sequence[str], *, layer_a: int | None = None,
             layer_b: int | None = None, progress: bool = False, **options: Any) -> xr.Dataset:
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
    layer_a, layer_b : int, optional
        Logit-lens layer (0 = embeddings … L = the model's output; negative counts from L), as
        :class:`~loglik_map.LogitLensScorer` scores it. ``None``: the model's output.
    progress : bool
        Progress bar over batches.
    **options
        :class:`~loglik_map.HFScorer` arguments for models given by name or spec (``convention``,
        ``max_length``, ``long_texts``, ``stride``, ``batch_tokens``, ``dtype``, ``device``, …).
        Both models must use the same convention and long-text handling; the context is the
        shorter of the two models' unless ``max_length`` is given.

    Returns
    -------
    xarray.Dataset
        Along ``text``: ``kl_ab``, ``kl_ba`` and ``kl_sym`` (nats per text: float64 sums of the
        float32 per-position KLs), ``kl_ab_bpb`` … (each text's KL / (its bytes · ln 2),
        bits/byte), ``logp_a``, ``logp_b`` (the texts' log-likelihoods, nats), ``n_tokens`` and
        ``n_tokens_dropped`` (tokens ``long_texts="truncate"`` cut, which is also warned about).
        Along ``token``: the per-position values. Summary (llama.cpp's statistics, and the
        bits/byte averages on the map's scale — mean over texts / (B̄ ln 2) with SEs over texts):
        see :func:`loglik_map.scoring.kl_summary.summarize_exact_kl`; print it with
        :func:`loglik_map.exact_kl_report`.

    Raises
    ------
    LoglikMapError
        If the tokenizers differ (the message names the difference: vocabulary size, special
        tokens, vocabulary content, merges or pipeline), the output vocabularies differ, or the
        two models' scoring options would give different token windows.

    Examples
    --------
    ::

        ds = lm.exact_kl("EleutherAI/pythia-410m", lm.ModelSpec("EleutherAI/pythia-410m", quantization="4bit"),
                         texts)
        print(lm.exact_kl_report(ds))
        ds = lm.exact_kl("EleutherAI/pythia-410m", "EleutherAI/pythia-410m", texts, layer_a=12, layer_b=13)
    """
    from .hf import _require_torch

    _require_torch()
    texts = texts if isinstance(texts, TextSet) else TextSet(texts)
    side_a, side_b = _resolve(model_a, model_b, layer_a, layer_b, dict(options))
    encoded, max_length = _windows(side_a, side_b, texts)
    windows = [w for e in encoded for w in e.windows]
    values = _run((side_a, side_b), windows, _batch_budget((side_a, side_b)), progress)
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
             "convention": sa.convention, "long_texts": sa.long_texts, "max_length": int(max_length),
             "n_texts_truncated": int((n_dropped > 0).sum()), "vocab_size": int(len(sa._load().tokenizer)),
             "kl_direction": "kl_ab = KL(p_a || p_b): model_a is the reference (llama.cpp's base); Δp = p_b − p_a",
             "logit_dtype": "float32", "sum_dtype": "float64"}
    return exact_kl_dataset(texts=texts, token_text=owner, token_target=target, kl_ab=values["kl_ab"],
                            kl_ba=values["kl_ba"], logp_a=values["logp_a"], logp_b=values["logp_b"],
                            same_top=values["same_top"], n_tokens_dropped=n_dropped, attrs=attrs)
