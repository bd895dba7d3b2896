"""The model's own head, found by tracing one short forward pass (no per-architecture lists).

What a causal LM applies between its last hidden state and its logits differs between
architectures: a plain output embedding (most), a head module with a dense layer, activation and
LayerNorm before the output embedding (BERT-style decoders), a width projection (ELECTRA), a
scaled hidden state (MiniCPM3), logits multiplied (Granite, Falcon-H1, Cohere) or soft-capped
(Gemma 2/3/4, RecurrentGemma, …) in the causal LM's ``forward``. :func:`trace_head` finds it
from the model itself, with forward hooks on one forward pass of a few tokens:

* the **chain**: the modules of the causal LM (outside its base model) that its forward calls
  after the base model, each on the previous one's output;
* a **scale of the last hidden state** before the chain, if the forward applies one;
* the **logit transform** after the chain: the forward is run again with the chain's output
  replaced by known values spanning 1e-2 … 1e4 in magnitude, and what comes out is matched
  to ``x``, ``a·x`` or ``A·tanh(B·x)`` (soft-caps and scales, whatever the config calls them);
* for the logit lens, the **final norm**: the first module of the base model (outside its
  numbered blocks) whose output *is* the last hidden state; none for post-LN models.

Whatever is found is only a candidate: :mod:`._selfcheck` compares the scores it gives with
the model's own ``forward(...).logits`` before it is used, and falls back to the latter.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

from ._torch import torch_module

__all__ = ["HeadPlan", "LogitTransform", "trace_head"]

_LINEAR_TOL = 1e-5  # relative: the same product, possibly in another order


@dataclass(frozen=True)
class LogitTransform:
    """What the model's forward does to the chain's output: ``x``, ``scale·x`` or ``cap·tanh(x·inner)``."""

    kind: str = "identity"  # "identity", "scale" or "tanh"
    scale: float = 1.0  # "scale": the factor; "tanh": the cap A of A·tanh(B·x)
    inner: float = 1.0  # "tanh": B

    def __call__(self, logits: Any) -> Any:
        if self.kind == "scale":
            return logits * self.scale
        if self.kind == "tanh":
            return self.scale * (logits * self.inner).tanh()
        return logits

    def describe(self) -> str:
        """Short text for row attributes and the docs ("soft cap 30", "× 0.125", "none")."""
        if self.kind == "scale":
            return f"x{self.scale:.6g}"
        if self.kind == "tanh":
            return f"{self.scale:.6g}*tanh(x*{self.inner:.6g})"
        return "none"


@dataclass
class HeadPlan:
    """How the final hidden states of one model become its logits, as traced.

    Attributes
    ----------
    body : torch.nn.Module or None
        The module giving the last hidden state: the base model, or the decoder it wraps when
        the causal LM's forward calls that directly (OPT, BART-style decoders).
    body_name : str
        Its dotted name in the causal LM.
    chain : list of torch.nn.Module
        Applied in order to the (scaled) last hidden state; empty if none was found.
    chain_names : list of str
        Their attribute names in the causal LM (e.g. ``["lm_head"]``, ``["cls"]``).
    hidden_scale : float
        Factor applied to the last hidden state before the chain (1 for most models).
    transform : LogitTransform
        Applied to the chain's output.
    linear_head : bool
        The chain is exactly the output embedding (a linear layer): the unembedding's chunked
        float32 and fused kernels apply.
    problem : str or None
        Why the fast path cannot reproduce the head (then the model's own forward is used).
    final_norm : torch.nn.Module or None
        The final norm for the logit lens (None: the model has none, or it is in ``chain``).
    final_norm_name : str
        Its dotted name in the base model, or ``"none"``.
    norm_last_state : bool
        The last hidden state of ``hidden_states`` is *not* final-normed (normed by the lens too).
    n_states : int
        Hidden states per token returned with ``output_hidden_states=True`` (layers + 1).
    lens_problem : str or None
        Why the logit lens is not defined for this model.
    """

    body: Any = None
    body_name: str = ""
    chain: list[Any] = field(default_factory=list)
    chain_names: list[str] = field(default_factory=list)
    hidden_scale: float = 1.0
    transform: LogitTransform = field(default_factory=LogitTransform)
    linear_head: bool = False
    problem: str | None = None
    final_norm: Any = None
    final_norm_name: str = "none"
    norm_last_state: bool = False
    n_states: int = 0
    lens_problem: str | None = None

    def head_logits(self, hidden: Any) -> Any:
        """Float32 logits of final hidden states ``hidden`` (S × d) through the traced head."""
        x = hidden * self.hidden_scale if self.hidden_scale != 1.0 else hidden
        for module in self.chain:
            x = module(x)
        return self.transform(x.float())

    def describe(self) -> str:
        """One line: chain, scale, transform (for attributes and warnings)."""
        parts = ["+".join(self.chain_names) or "?"]
        if self.hidden_scale != 1.0:
            parts.insert(0, f"hidden x{self.hidden_scale:.6g}")
        if self.transform.kind != "identity":
            parts.append(f"logits {self.transform.describe()}")
        return " -> ".join(parts)


def _first_tensor(value: Any) -> Any:
    torch = torch_module()
    if torch.is_tensor(value):
        return value
    if isinstance(value, (tuple, list)) and value and torch.is_tensor(value[0]):
        return value[0]
    for key in ("last_hidden_state", "logits"):
        inner = getattr(value, key, None)
        if torch.is_tensor(inner):
            return inner
    return None


def _same(a: Any, b: Any, rtol: float = 0.0) -> bool:
    torch = torch_module()
    if a is b:
        return True
    if a is None or b is None or a.shape != b.shape:
        return False
    if rtol == 0.0:
        return bool(torch.equal(a, b))
    scale = float(b.abs().max()) if b.numel() else 0.0
    return bool((a.float() - b.float()).abs().max() <= rtol * max(scale, 1e-30))


def _forward(model: Any, ids: Any, **kwargs: Any) -> Any:
    try:
        return model(input_ids=ids, use_cache=False, **kwargs)
    except TypeError:
        return model(input_ids=ids, **kwargs)


def _fit_scale(x: Any, y: Any) -> float | None:
    """``a`` with ``y = a·x`` elementwise (to rounding), or None."""
    x64, y64 = x.double().flatten(), y.double().flatten()
    denom = float((x64 * x64).sum())
    if denom == 0.0:
        return None
    a = float((x64 * y64).sum()) / denom
    scale = float(y64.abs().max())
    if float((y64 - a * x64).abs().max()) <= _LINEAR_TOL * max(scale, 1e-30) * 10:
        return a
    return None


def _probe_logits(shape: tuple[int, ...], dtype: Any, device: Any) -> Any:
    """Known values for the chain's output: magnitudes 1e-2 … 1e4, both signs, every entry distinct."""
    torch = torch_module()
    n = math.prod(shape)
    mags = torch.logspace(-2, 4, n, dtype=torch.float64)
    signs = torch.where(torch.arange(n) % 2 == 0, 1.0, -1.0).double()
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    return (mags * signs)[perm].reshape(shape).to(device=device, dtype=dtype)


def _fit_transform(z: Any, f: Any) -> LogitTransform | None:
    """The elementwise map taking the injected chain output ``z`` to the logits ``f``, or None."""
    torch = torch_module()
    if f.shape != z.shape:
        return None
    eps = max(torch.finfo(z.dtype).eps, torch.finfo(f.dtype).eps)
    tol = 8 * eps
    z64, f64 = z.double(), f.double()
    if _same(f64, z64, tol):
        return LogitTransform()
    a = _fit_scale(z64, f64)
    if a is not None and _same(f64, a * z64, tol):
        return LogitTransform("scale", a)
    top = int(z64.abs().flatten().argmax())
    cap = abs(float(f64.flatten()[top]))
    if cap == 0.0 or not math.isfinite(cap):
        return None
    ratio = (f64 / cap).flatten()
    usable = (ratio.abs() > 0.05) & (ratio.abs() < 0.8)
    if not bool(usable.any()):
        return None
    k = int(torch.nonzero(usable)[0])
    inner = math.atanh(float(ratio[k])) / float(z64.flatten()[k])
    guess = cap * torch.tanh(z64 * inner)
    if bool((f64 - guess).abs().max() <= tol * cap * 4):
        return LogitTransform("tanh", cap, inner)
    return None


def _hooked_forward(model: Any, ids: Any, modules: list[tuple[str, Any]]) -> tuple[Any, list[tuple[str, Any, Any]]]:
    """Run ``model`` with hooks on ``modules``; (output, [(name, first input, output)] in completion order)."""
    calls: list[tuple[str, Any, Any]] = []
    handles = []

    def make(name: str) -> Any:
        def hook(module: Any, args: Any, kwargs: Any, output: Any) -> None:
            first = args[0] if args else next(iter(kwargs.values()), None) if kwargs else None
            calls.append((name, first, output))
        return hook

    for name, module in modules:
        handles.append(module.register_forward_hook(make(name), with_kwargs=True))
    try:
        out = _forward(model, ids, output_hidden_states=True)
    finally:
        for h in handles:
            h.remove()
    return out, calls


def trace_head(model: Any, ids: Any) -> HeadPlan:
    """Trace how ``model`` turns its last hidden state into logits, on the token ids ``ids`` (1 × T).

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A causal LM in eval mode.
    ids : torch.Tensor of int64, shape (1, T)
        A few tokens on the model's input device.

    Returns
    -------
    HeadPlan
        With ``problem`` / ``lens_problem`` set to a sentence where something could not be
        reproduced (never raises for an architecture it does not understand).
    """
    torch = torch_module()
    plan = HeadPlan()
    modules = [(n, m) for n, m in model.named_modules() if n]
    with torch.inference_mode():
        try:
            out, calls = _hooked_forward(model, ids, modules)
        except Exception as err:
            plan.problem = plan.lens_problem = f"its forward with output_hidden_states=True failed ({type(err).__name__})"
            return plan
        logits = _first_tensor(out)
        # the body: the outermost module returning a last_hidden_state (the base model, or the decoder it wraps)
        bodies = [i for i, (_, _, output) in enumerate(calls)
                  if torch.is_tensor(getattr(output, "last_hidden_state", None))]
        if logits is None or not bodies:
            plan.problem = plan.lens_problem = "no module of the model returns a last hidden state"
            return plan
        at = max(bodies, key=lambda i: (-calls[i][0].count("."), i))
        body_name, _, body_out = calls[at]
        plan.body, plan.body_name = dict(modules)[body_name], body_name
        last = body_out.last_hidden_state
        states = getattr(body_out, "hidden_states", None)
        children = dict(model.named_children())
        after = [c for c in calls[at + 1:] if c[0] in children and not body_name.startswith(c[0] + ".")]
        _trace_chain(plan, model, ids, children, after, last, logits)
        inner = [(n[len(body_name) + 1:], arg, output) for n, arg, output in calls[:at]
                 if n.startswith(body_name + ".")]
        _trace_final_norm(plan, {n[len(body_name) + 1:]: m for n, m in modules if n.startswith(body_name + ".")},
                          inner, last, states)
        if plan.final_norm is not None:
            plan.final_norm_name = f"{body_name}.{plan.final_norm_name}"
    return plan


def _trace_chain(plan: HeadPlan, model: Any, ids: Any, children: dict[str, Any], after: list, last: Any,
                 logits: Any) -> None:
    torch = torch_module()
    if last is None or not after:
        plan.problem = "no module of the causal LM turns the base model's output into logits"
        return
    names = [c[0] for c in after]
    if len(set(names)) != len(names):
        plan.problem = f"its head modules are called more than once ({', '.join(names)})"
        return
    for (_, _, prev_out), (name, arg, _) in itertools.pairwise(after):
        if not _same(arg, _first_tensor(prev_out)):
            plan.problem = f"its head module {name!r} does not take the previous one's output"
            return
    first_in = after[0][1]
    if not torch.is_tensor(first_in) or first_in.shape != last.shape:
        plan.problem = f"its head module {names[0]!r} is not given the last hidden state"
        return
    if not _same(first_in, last):
        scale = _fit_scale(last, first_in)
        if scale is None:
            plan.problem = "its forward transforms the last hidden state before the head in a way not reproduced"
            return
        plan.hidden_scale = scale
    chain_out = _first_tensor(after[-1][2])
    if chain_out is None or chain_out.shape != logits.shape:
        plan.problem = "its logits are not the output of its head modules"
        return
    plan.chain = [children[n] for n in names]
    plan.chain_names = names
    # what the forward does after the chain: inject known values in place of the chain's output
    probe = _probe_logits(tuple(chain_out.shape), chain_out.dtype, chain_out.device)
    handle = plan.chain[-1].register_forward_hook(lambda module, args, output: probe)
    try:
        injected = _first_tensor(_forward(model, ids))
    except Exception as err:
        plan.problem = f"its forward failed with replaced logits ({type(err).__name__})"
        return
    finally:
        handle.remove()
    transform = _fit_transform(probe, injected) if injected is not None else None
    if transform is None:
        plan.problem = "its forward transforms the head's output in a way not reproduced (not a scale or soft cap)"
        return
    plan.transform = transform
    out_emb = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    plan.linear_head = (len(plan.chain) == 1 and plan.chain[0] is out_emb and isinstance(out_emb, torch.nn.Linear)
                        and plan.hidden_scale == 1.0)


def _trace_final_norm(plan: HeadPlan, modules: dict[str, Any], calls: list, last: Any, states: Any) -> None:
    torch = torch_module()
    if not isinstance(states, (tuple, list)) or len(states) < 2 or not all(torch.is_tensor(s) for s in states):
        plan.lens_problem = "the base model returns no hidden states of its layers"
        return
    plan.n_states = len(states)
    if any(s.shape != last.shape for s in states):
        odd = next(s.shape for s in states if s.shape != last.shape)
        plan.lens_problem = (f"its hidden states have shape {tuple(odd)}, not that of the last hidden state "
                             f"{tuple(last.shape)} (an extra dimension, e.g. several residual streams)")
        return
    def produces(arg: Any, output: Any) -> bool:  # the last hidden state, batch-first or sequence-first (XLNet)
        out = _first_tensor(output)
        if out is None or not torch.is_tensor(arg) or arg.shape != out.shape or out.dim() < 2:
            return False
        for view in (out, out.transpose(0, 1)):
            if view.shape == last.shape and _same(view, last):
                return not _same(arg if view is out else arg.transpose(0, 1), last)  # not an identity after it
        return False

    found = next(((name, arg) for name, arg, output in calls if produces(arg, output)), None)  # the first one
    if found is None:
        plan.lens_problem = ("no module of its base model produces its last hidden state as it is (it is computed "
                             "outside a module, or from a longer sequence), so its final norm cannot be found; pass "
                             "final_norm='dotted.path' if it has one")
        return
    if any(part.isdigit() for part in found[0].split(".")):
        # no final norm: the last hidden state comes out of the last block itself (post-LN blocks end in a norm)
        if not _same(states[-1], last, 1e-6):
            plan.lens_problem = "its last hidden state is not the one its head is applied to"
        return
    name, arg = found
    norm = modules[name]
    try:
        again = norm(arg)
    except Exception as err:
        plan.lens_problem = f"its final norm {name!r} cannot be called on a hidden state alone ({type(err).__name__})"
        return
    if not _same(_first_tensor(again), last, 1e-6):
        plan.lens_problem = f"its final norm {name!r} gives another result when called again"
        return
    plan.final_norm, plan.final_norm_name = norm, name
    if _same(states[-1], last, 1e-6):
        plan.norm_last_state = False
    elif _same(states[-1], arg, 1e-6):
        plan.norm_last_state = True
    else:
        plan.lens_problem = "its last hidden state is neither the final norm's input nor its output"
