"""The self-check at load: the fast path proves, per model, that it gives the model's own numbers.

The model's own forward pass defines log p: ``log_softmax(model(ids).logits)`` of one text at a
time, with no padding, in float64. Every faster way of computing it — the base model's hidden
states at the scored positions through the traced head (:mod:`._head`) and the chunked or fused
unembedding, batches padded on the right without an attention mask — is an optimisation that
must give the same numbers. :func:`choose_path` tries them, fastest first, on a short probe (a
few short texts and two windows of the data, at most 128 tokens, batched with right padding,
against the reference one at a time) and keeps the first that agrees within rounding:

1. ``fast``: traced head, right padding, no mask;
2. ``fast_masked``: the same with an attention mask (models that are not causal without one);
3. ``fast_one_text_per_pass``;
4. ``model_forward``, ``model_forward_masked``, ``model_forward_one_text_per_pass``: the
   model's own logits (batches kept small enough to hold them).

The tolerance per probe text is ``Σ_t (2e-5 + 2·eps·max_v |logit_tv|)`` nats over its scored
tokens, ``eps`` being the machine epsilon of the dtype of the model's own logits: the rounding of
half-precision logits alone can move a log-softmax that much, so a bfloat16 model is held to what
its own forward can tell apart, and a float32 one to 2e-5 nats per token.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import LoglikMapError, LoglikMapWarning
from ._batching import ScoringPath, score_windows
from ._head import HeadPlan, trace_head
from ._torch import torch_module
from ._windows import Window, encode_texts

__all__ = ["PROBE_TEXTS", "CheckResult", "choose_path", "data_probe", "probe_windows"]

#: The probe: short texts of different lengths (so a batch of them is padded), ASCII and not.
PROBE_TEXTS = (
    "The quick brown fox jumps over the lazy dog, then rests in the warm afternoon sun.",
    "In 1905, Einstein published four papers that changed physics.",
    "def f(x):\n    return x * 2  # naïve café ✓",
)
_PROBE_TOKENS = (24, 13, 5)  # at most this many tokens of each text: long padding in a batch of them
_PER_TOKEN_TOL = 2e-5
_PADDING_TOL = 1e-6  # nats per token: other filler tokens change nothing where the model is causal


@dataclass(frozen=True)
class CheckResult:
    """What the self-check chose, and why.

    Attributes
    ----------
    path : ScoringPath
        The path used for scoring.
    plan : HeadPlan
        The traced head.
    fast_gap : float
        Largest difference, nats per probe text, between the fast path (``fast``) and the model's
        own forward (NaN if the fast path could not be built).
    reason : str
        Empty if the fast path was kept; otherwise what failed.
    """

    path: ScoringPath
    plan: HeadPlan
    fast_gap: float
    reason: str


def probe_windows(tokenizer: Any, *, convention: str, max_length: int) -> list[Window]:
    """The probe's windows: the start of each :data:`PROBE_TEXTS` under the scorer's convention.

    Parameters
    ----------
    tokenizer : transformers tokenizer
    convention : str
    max_length : int

    Returns
    -------
    list of Window
        Of different lengths where the tokenizer allows.
    """
    encoded = encode_texts(tokenizer, list(PROBE_TEXTS), convention=convention, max_length=max_length,
                           long_texts="truncate")
    out = []
    for i, (e, cap) in enumerate(zip(encoded, _PROBE_TOKENS)):
        w = e.windows[0]
        ids = w.ids[:max(cap, w.score_from + 2)]
        if len(ids) > w.score_from:
            out.append(Window(i, tuple(int(t) for t in ids), w.score_from))
    if not out:
        raise LoglikMapError("the tokenizer gives fewer than two tokens for every probe text of the self-check")
    return out


def data_probe(windows: list[Window], max_tokens: int = 128) -> list[Window]:
    """Two windows of the data being scored, for the probe: the longest (its first ``max_tokens``
    tokens) and one about 60 % as long, so that the probe also sees the lengths and padding the
    real batches have (some models are only sensitive to them beyond the fixed probe's lengths).

    Parameters
    ----------
    windows : list of Window
    max_tokens : int

    Returns
    -------
    list of Window
        Empty if there are fewer than two windows.
    """
    if len(windows) < 2:
        return []
    longest = max(windows, key=lambda w: len(w.ids))
    cap = min(len(longest.ids), max_tokens)
    rest = [w for w in windows if w is not longest]
    other = min(rest, key=lambda w: abs(min(len(w.ids), cap) - 0.6 * cap))
    out: list[Window] = []
    for w in (longest, other):
        ids = w.ids[:cap]
        if len(ids) > w.score_from:
            out.append(Window(len(PROBE_TEXTS) + len(out), ids, w.score_from))
    return out


def _reference(model: Any, windows: list[Window]) -> tuple[np.ndarray, np.ndarray]:
    """Per window: the model's own log-likelihood (float64 log-softmax of its logits) and the tolerance."""
    torch = torch_module()
    device = model.get_input_embeddings().weight.device
    sums, tols = [], []
    with torch.inference_mode():
        for w in windows:
            ids = torch.tensor([w.ids], device=device)
            try:
                out = model(input_ids=ids, use_cache=False)
            except TypeError:
                out = model(input_ids=ids)
            logits = out.logits[0, w.score_from - 1:len(w.ids) - 1]
            eps = torch.finfo(logits.dtype).eps if logits.dtype.is_floating_point else 0.0
            lp = torch.log_softmax(logits.double(), dim=-1)
            targets = ids[0, w.score_from:].to(lp.device)
            sums.append(float(lp.gather(-1, targets[:, None]).sum()))
            big = logits.double().abs().amax(dim=-1)
            tols.append(float((_PER_TOKEN_TOL + 2 * eps * big).sum()) if eps > 1e-6 else _PER_TOKEN_TOL * len(targets))
    return np.array(sums), np.array(tols)


def _other_filler(windows: list[Window]) -> int:
    """A token id of the probe other than every window's last token (padding made of something else)."""
    used = {w.ids[-1] for w in windows}
    return next(t for t in sorted({t for w in windows for t in w.ids}) if t not in used) if len(
        {t for w in windows for t in w.ids} - used) else 0


def _candidates(plan: HeadPlan, lens: bool) -> list[ScoringPath]:
    fast = [ScoringPath("fast"), ScoringPath("fast", mask=True), ScoringPath("fast", one_text_per_pass=True)]
    slow = [ScoringPath("model_forward"), ScoringPath("model_forward", mask=True),
            ScoringPath("model_forward", one_text_per_pass=True)]
    if plan.problem is not None:
        fast = []
    return fast if lens else fast + slow


def choose_path(loaded: Any, windows: list[Window], *, name: str, lens: bool = False, fallback: str = "warn",
                unembed: str = "auto") -> CheckResult:
    """Trace the model's head and keep the fastest scoring path that agrees with the model's own forward.

    Parameters
    ----------
    loaded : Loaded
        The model and its device.
    windows : list of Window
        The probe (:func:`probe_windows`).
    name : str
        The model's row label, for messages.
    lens : bool
        For the logit lens: only the fast head can score the layers below the last.
    fallback : {"warn", "error"}
        What to do when only a slower path agrees: warn once and use it, or raise.
    unembed : str
        Passed to the fast path.

    Returns
    -------
    CheckResult

    Raises
    ------
    LoglikMapError
        With ``fallback="error"`` when the fast path disagrees; for the lens when no fast path
        agrees; when not even the model's own forward one text at a time reproduces itself.
    """
    torch = torch_module()
    model = loaded.model
    arch = type(model).__name__
    device = model.get_input_embeddings().weight.device
    longest = max(windows, key=lambda w: len(w.ids))
    try:
        plan = trace_head(model, torch.tensor([longest.ids], device=device))
        ref, tol = _reference(model, windows)
    except torch.OutOfMemoryError:
        raise LoglikMapError(f"model {name!r}: out of memory on a single text window of {len(longest.ids)} tokens "
                             "(the self-check's probe); use a smaller dtype or more devices") from None
    fast_gap, reason = float("nan"), plan.problem or ""
    for path in _candidates(plan, lens):
        try:
            got = score_windows(loaded, windows, 1 << 20, 1, plan=plan, path=path, unembed=unembed)[0]
            padded = not path.one_text_per_pass and not path.mask
            other = score_windows(loaded, windows, 1 << 20, 1, plan=plan, path=path, unembed=unembed,
                                  filler=_other_filler(windows))[0] if padded else got
        except torch.OutOfMemoryError:
            raise
        except Exception as err:  # a path the model does not support is a path not taken
            reason = reason or f"{path.label} failed: {type(err).__name__}: {str(err)[:120]}"
            continue
        with np.errstate(invalid="ignore"):
            gap = np.where((got == ref) | (np.isnan(got) & np.isnan(ref)), 0.0, np.abs(got - ref))  # NaN: the same number
        gap = np.nan_to_num(gap, nan=np.inf)
        if path.label == "fast":
            fast_gap = float(gap.max())
        n_scored = np.array([w.n_scored for w in windows])
        sees_padding = not np.all(np.abs(other - got) <= _PADDING_TOL * n_scored) and np.isfinite(got).all()
        if np.all(gap <= tol) and not sees_padding:
            break
        if sees_padding and np.all(gap <= tol):
            reason = reason or (f"{path.label}: the scores depend on the padding (by {float(np.abs(other - got).max()):.3g} "
                                "nats per probe text): the model is not causal without an attention mask")
            continue
        reason = reason or (f"{path.label} differs from the model's own forward by up to {float(gap.max()):.3g} nats "
                            "per probe text")
    else:
        if lens:
            raise LoglikMapError(
                f"{name!r} ({arch}): the logit lens is not defined for this model: its head cannot be applied to "
                f"the hidden states of its layers ({reason or 'no fast path agrees with its own forward'}); score "
                "its final layer with HFScorer")
        raise LoglikMapError(f"{name!r} ({arch}): its own forward does not reproduce itself one text at a time "
                             f"({reason}); it cannot be scored reliably")
    result = CheckResult(path, plan, fast_gap, "" if path.label == "fast" else reason)
    if path.label != "fast":
        slow = path.head == "model_forward" or path.one_text_per_pass
        advice = ("scoring is slower but right" if slow else "scoring is as fast")
        message = (f"{name!r} ({arch}): the fast scoring path does not reproduce the model's own forward "
                   f"({result.reason}); scoring with the '{path.label}' path instead, checked against it on a probe "
                   f"({advice}; recorded as the row attribute scoring_path)")
        if fallback == "error" and slow:
            raise LoglikMapError(message.replace("scoring with", "fallback='error' refuses to score with")
                                 + "; use fallback='warn' to accept it")
        warnings.warn(message, LoglikMapWarning, stacklevel=4)
    return result
