"""The forward passes of :func:`~loglik_map.exact_kl`: both models on the same windows, KL at every position.

torch is passed in by the caller (imported when :func:`~loglik_map.exact_kl` runs).
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .._progress import ProgressArg
from ..errors import LoglikMapError
from ._torch import torch_module
from ._vocabulary import VocabularyMismatch

if TYPE_CHECKING:
    from ._exact_kl import PairSide

__all__ = ["batch_budget", "pair_chunk", "run_pair"]


@dataclass
class _Model:
    """A loaded model whose forward pass serves one or both sides."""

    loaded: Any
    head: Any
    lens_norm: Any
    n_layers: int
    layers: list[int | None]  # which states the sides need: None = last_hidden_state


_plain_head_checked: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> its head passed the check


def _check_plain_head(model: Any, name: str) -> None:
    """Refuse a model whose logits are more than this computation applies to its last hidden state.

    The exact KL takes the output embedding of the last hidden state, then the logit post-processing
    the config names (:func:`~loglik_map.scoring._unembed.postprocess_logits`). A head that does more
    (BERT-style transforms, Granite's ``logits_scaling``, Falcon-H1's multiplier, a scaled hidden
    state) would give a wrong KL without a word, so the head is traced on a few tokens first.
    """
    torch = torch_module()
    from ._head import trace_head
    from ._unembed import has_postprocessing

    if _plain_head_checked.get(model):
        return
    device = next(model.parameters()).device
    vocab = int(model.get_output_embeddings().weight.shape[0])
    plan = trace_head(model, (torch.arange(8, device=device) % vocab)[None])
    transform_ok = plan.transform.kind == "identity" or has_postprocessing(model.config)
    if plan.problem or not plan.linear_head or plan.hidden_scale != 1.0 or not transform_ok:
        raise LoglikMapError(
            f"{name}: exact_kl does not reproduce the head of {type(model).__name__} ({plan.problem or plan.describe()}); "
            "its numbers would not be this model's. Compare such models on the map (ModelMap.kl), whose scorer "
            "uses the model's own forward")
    _plain_head_checked[model] = True


def _models(sides: Sequence[PairSide]) -> tuple[list[_Model], list[tuple[int, int]]]:
    """Distinct models and, for each side, (model index, slot in that model's states)."""
    from ._architectures import find_final_norm
    from ._unembed import Head

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
            _check_plain_head(loaded.model, side.name)
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
                m.lens_norm = find_final_norm(m.loaded.model, getattr(side.scorer, "final_norm", None))  # LogitLensScorer only
        if layer not in m.layers:
            m.layers.append(layer)
        where.append((owners[key], m.layers.index(layer)))
    heads = {models[i].head.vocab for i, _ in where}
    if len(heads) > 1:
        raise VocabularyMismatch(f"the output layers have {' vs '.join(map(str, sorted(heads)))} rows (vocabulary "
                             "padding differs): exact KL needs one output vocabulary")
    return models, where


def _states(model: _Model, ids: Any, rows: Any, positions: Any) -> list[Any]:
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


def _rowdot(x: Any, y: Any) -> Any:
    """Row-wise dot products of two (S, V) tensors, without an (S, V) temporary."""
    return torch_module().bmm(x.unsqueeze(1), y.unsqueeze(2)).view(-1)


def pair_chunk(za: Any, zb: Any, targets: Any, work: Any = None) -> tuple[Any, ...]:
    """Per-position KL(a‖b), KL(b‖a), log p_a(target), log p_b(target), same top token (float32).

    ``za`` and ``zb`` (float32 logits, S × V) are overwritten; ``work`` (4 × S' × V float32, S' ≥ S),
    if given, holds the log-probabilities and probabilities instead of fresh allocations — a CPU
    heap that keeps getting chunk-sized blocks between small ones fragments. With Δ = z_a − z_b and
    c = E_pa[Δ], KL(a‖b) = E_pa[Δ] − (lse_a − lse_b) = log E_pa[exp(−(Δ − c))], computed as
    ``log1p(E_pa[expm1(−(Δ − c))])``: no log-normaliser is subtracted, so a KL of 1e-5 nats keeps
    ~4 significant digits in float32 (the textbook Σ p_a (log p_a − log p_b) loses everything
    below ~1e-6, the rounding of log p at the scale of the logits). Δ is first centred on its
    value at p_a's most likely token, so every float32 reduction runs over the spread of Δ, not
    its level: two heads that differ by a bias common to the vocabulary (Δ ≈ 30 nats everywhere)
    give KL 0 to ~1e-12, not the rounding of E_pa[Δ] at 30 nats (~1e-4). A per-position KL below
    0 (rounding of a KL ≈ 0) is set to 0. The reverse direction likewise with p_b. Rows where the
    exponential overflows (logit differences beyond ~88 nats, i.e. a huge KL) use the textbook
    form, which is accurate there.
    """
    torch = torch_module()
    top_a, top_b = za.argmax(dim=-1, keepdim=True), zb.argmax(dim=-1, keepdim=True)
    same = (top_a == top_b).view(-1)
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
    # KL(a‖b): x = Δ − Δ[top_a] (exact in float32 where Δ is nearly constant), c = E_pa[x]
    torch.sub(dz, dz.gather(-1, top_a), out=work)
    c_ab = _rowdot(pa, work)
    torch.sub(c_ab[:, None], work, out=work).expm1_()
    kl_ab = torch.log1p(_rowdot(pa, work))
    torch.sub(dz, dz.gather(-1, top_b), out=work)
    c_ba = _rowdot(pb, work)
    torch.sub(work, c_ba[:, None], out=work).expm1_()
    kl_ba = torch.log1p(_rowdot(pb, work))
    # the textbook form for rows whose exponentials overflowed (on a GPU always computed: no host sync)
    if za.device.type != "cpu" or not bool((torch.isfinite(kl_ab) & torch.isfinite(kl_ba)).all()):
        diff = la.sub_(lb)
        kl_ab = torch.where(torch.isfinite(kl_ab), kl_ab, _rowdot(pa, diff))
        kl_ba = torch.where(torch.isfinite(kl_ba), kl_ba, -_rowdot(pb, diff))
    return kl_ab.clamp_(min=0), kl_ba.clamp_(min=0), ta, tb, same


def run_pair(sides: Sequence[PairSide], windows: list[Any], batch_tokens: int,
             progress: ProgressArg) -> dict[str, np.ndarray]:
    """Per-token arrays in window order, for the pair ``sides``."""
    torch = torch_module()
    from ._batching import pad_batch, run_batches
    from ._unembed import logit_rows, postprocess_logits

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
        ids, rows, positions = pad_batch(windows, batch)
        states = [_states(m, ids, rows, positions) for m in models]
        ha, hb = states[ma][sa], states[mb][sb]
        targets = ids[rows, positions + 1].to(device)
        starts = np.asarray([windows[w].score_from - 1 for w in batch])
        index = torch.from_numpy(offsets[np.asarray(batch)][rows.numpy()] + positions.numpy()
                                 - starts[rows.numpy()]).to(device)
        for p0 in range(0, ha.shape[0], rows_per_chunk):
            p1 = min(p0 + rows_per_chunk, ha.shape[0])
            za = postprocess_logits(config_a, head_a.logits(ha[p0:p1]))
            zb = postprocess_logits(config_b, head_b.logits(hb[p0:p1])).to(za.device)
            for n, value in zip(names, pair_chunk(za, zb, targets[p0:p1], work)):
                result[n][index[p0:p1]] = value

    run_batches(windows, batch_tokens, run_batch, what=f"exact KL {sides[0].name} vs {sides[1].name}",
                desc=f"exact KL {sides[0].name} vs {sides[1].name}", progress=progress)
    return {n: v.cpu().numpy() for n, v in result.items()}  # the only wait for the device


def batch_budget(sides: Sequence[PairSide]) -> int:
    from ._batching import auto_batch_tokens

    budgets = []
    for side in sides:
        bt = side.scorer.execution.batch_tokens
        if bt == "auto":
            model = side.scorer._load().model
            lens = side.layer is not None
            bt = auto_batch_tokens(model, n_states=int(getattr(model.config, "num_hidden_layers", 0)) + 1 if lens else 1)
        budgets.append(int(bt))
    return min(budgets)
