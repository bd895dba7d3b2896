"""Batches of token windows through a model: padding, device memory, asynchronous copies.

Texts are cut into windows (:mod:`.windows`), all windows of a scoring call are sorted by length
and grouped under a padded-token budget (:func:`.windows.plan_batches`), and each batch runs
through the model body once; :mod:`.unembed` turns the hidden states at the scored positions
into log-probabilities. Everything here is torch code, imported when a model is scored.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._progress import ProgressArg, progress_reporter
from ..errors import LoglikMapError
from ._head import HeadPlan
from ._torch import torch_module
from ._unembed import Head, chunked_logprobs, logit_rows, target_logprobs
from ._windows import Window, plan_batches

__all__ = ["CPU_BATCH_TOKENS", "MAX_BATCH_TOKENS", "MODEL_FORWARD_LOGIT_BYTES", "ScoringPath", "auto_batch_tokens",
           "pad_batch", "run_batches", "score_windows"]

#: Padded tokens per batch on a CPU (``batch_tokens="auto"``): larger batches gain nothing there.
CPU_BATCH_TOKENS = 8192
#: Upper bound of the automatic GPU budget: beyond it the matrix products are already large.
MAX_BATCH_TOKENS = 65536
_MIN_GPU_BATCH_TOKENS = 2048
_RESERVED_BYTES = 2 * 2**30  # left free for the allocator, cuBLAS workspaces and the logit chunks


def auto_batch_tokens(model: Any, *, n_states: int = 1, free_bytes: int | None = None) -> int:
    """Padded tokens per batch for ``model`` on its device: a budget from free memory on a GPU.

    During an inference forward pass a token holds, at the widest point of a block, a few
    residual-width vectors and the MLP's hidden layer (twice, for the activation's input and
    output); the logit lens also keeps every layer's hidden state until it is scored. With ``b``
    bytes per weight that is about ``b · (10 d + 3 d_ff + n_states · d)`` bytes per token. Half of
    the free device memory, less a reserve of 2 GiB, is given to the batch; the result is
    clipped to [2,048, :data:`MAX_BATCH_TOKENS`]. If the estimate is too high anyway, the scorer
    splits the batch that runs out of memory and goes on (nothing is lost).

    Parameters
    ----------
    model : transformers.PreTrainedModel
    n_states : int
        Hidden states kept per token: 1, or the number of layers + 1 for the logit lens.
    free_bytes : int, optional
        Free device memory; default ``torch.cuda.mem_get_info`` of the model's input device.

    Returns
    -------
    int
        :data:`CPU_BATCH_TOKENS` on a CPU.
    """
    torch = torch_module()
    weight = model.get_input_embeddings().weight
    if weight.device.type != "cuda" and free_bytes is None:
        return CPU_BATCH_TOKENS
    if free_bytes is None:
        free_bytes = torch.cuda.mem_get_info(weight.device)[0]
    config = model.config
    d = int(getattr(config, "hidden_size", weight.shape[1]))
    d_ff = int(getattr(config, "intermediate_size", None) or 4 * d)
    per_token = weight.element_size() * (10 * d + 3 * d_ff + n_states * d) + 64  # + ids, indices, sums
    budget = int(0.5 * max(free_bytes - _RESERVED_BYTES, 0) / per_token)
    return int(min(max(budget, _MIN_GPU_BATCH_TOKENS), MAX_BATCH_TOKENS))


def pad_batch(windows: list[Window], batch: list[int], filler: int | None = None):
    """Right-padded token ids, and the (row, position) of every scored prediction.

    Position ``p`` of a row predicts token ``p + 1``. Padding comes after a window's tokens, so
    under causal attention no real token can see it and no attention mask is needed: the model
    runs with ``attention_mask=None`` (the fast causal kernels) and position ids 0, 1, … are those
    of the unpadded window. The filler repeats each window's last token, so it is never mistaken
    for a pad token (``filler``: another token id, used by the self-check to find models that
    are not causal under right padding).
    """
    torch = torch_module()
    lengths = [len(windows[w].ids) for w in batch]
    ids = np.empty((len(batch), max(lengths)), dtype=np.int64)
    rows, positions = [], []
    for b, w in enumerate(batch):
        win = windows[w]
        n = len(win.ids)
        ids[b, :n] = win.ids
        ids[b, n:] = win.ids[-1] if filler is None else filler
        positions.append(np.arange(win.score_from - 1, n - 1))
        rows.append(np.full(n - win.score_from, b))
    return (torch.from_numpy(ids), torch.from_numpy(np.concatenate(rows)),
            torch.from_numpy(np.concatenate(positions)))


@dataclass(frozen=True)
class ScoringPath:
    """How batches of windows go through a model: which head, padding with or without a mask.

    Attributes
    ----------
    head : {"fast", "model_forward"}
        ``"fast"``: the base model's hidden states at the scored positions only, through the
        traced head (:mod:`._head`; the chunked or fused unembedding of :mod:`.unembed`).
        ``"model_forward"``: the model's own ``forward(...).logits`` (every position's logits
        of a batch at once; batches are kept small enough for them).
    mask : bool
        Pass an attention mask with right-padded batches (padding-sensitive models).
    one_text_per_pass : bool
        One window per forward pass (no padding at all).
    """

    head: str = "fast"
    mask: bool = False
    one_text_per_pass: bool = False

    @property
    def label(self) -> str:
        """``"fast"``, ``"fast_masked"``, ``"fast_one_text_per_pass"``, ``"model_forward"``, … (row attribute)."""
        if self.one_text_per_pass:
            return f"{self.head}_one_text_per_pass"
        return f"{self.head}_masked" if self.mask else self.head


#: Bytes of the logits of one batch on the ``"model_forward"`` path (every position's logits at once).
MODEL_FORWARD_LOGIT_BYTES = 512 * 2**20


def score_windows(loaded: Any, windows: list[Window], batch_tokens: int, n_rows: int, *, plan: HeadPlan,
                  path: ScoringPath = ScoringPath(), lens: bool = False, progress: ProgressArg = False, desc: str = "",
                  unembed: str = "auto", filler: int | None = None) -> np.ndarray:
    """Sum of scored target log-probabilities per window (float64), shape (n_rows, n_windows).

    For every batch, on the ``"fast"`` path (:class:`ScoringPath`): one forward pass of the base
    model; then, for each hidden state that is scored (the last one, or all of them for the
    logit lens, ``lens=True``), only the scored positions are gathered, final-normed (lens layers
    below the last) and put through the model's head as traced by :mod:`._head` (``plan``): the
    output embedding alone through :func:`loglik_map.scoring._unembed.target_logprobs`, or the
    whole head chain a chunk of positions at a time. On the ``"model_forward"`` path, the
    model's own ``forward(...).logits``. The per-window sums stay on the device until every
    batch has been queued, so the host never waits for the device between batches: token ids go
    through pinned memory with asynchronous copies, and the host pads the next batch while the
    device computes. A batch that runs out of device memory is split in two and later batches
    are kept under half its padded size (with a warning), so a too-large ``batch_tokens`` costs
    time, not the model's results.
    """
    torch = torch_module()
    model = loaded.model
    base = plan.body if plan.body is not None else model.base_model
    out_emb = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    head = Head(out_emb) if plan.linear_head else None
    vocab = head.vocab if head is not None else int(getattr(out_emb, "out_features", 0) or 32768)
    out_device = head.device if head is not None else _output_device(model)
    rows_per_chunk = logit_rows(out_device, vocab)
    embed_device = model.get_input_embeddings().weight.device
    norm = plan.final_norm
    norm_params = list(norm.parameters()) if norm is not None else []
    norm_device = norm_params[0].device if norm_params else out_device
    transform = plan.transform if plan.transform.kind != "identity" else None
    asynchronous = embed_device.type == "cuda"
    if path.one_text_per_pass:
        batch_tokens = 1  # every window in a batch of its own
    elif path.head == "model_forward":
        batch_tokens = min(batch_tokens, max(1, MODEL_FORWARD_LOGIT_BYTES // (4 * vocab)))

    def to_device(t: Any, device: Any) -> Any:
        return t.pin_memory().to(device, non_blocking=True) if asynchronous else t.to(device)

    sums = torch.zeros((n_rows, len(windows)), dtype=torch.float64, device=out_device)

    def logprobs(picked: Any, targets: Any) -> Any:
        if head is not None:
            if plan.hidden_scale != 1.0:
                picked = picked * plan.hidden_scale
            return target_logprobs(transform, head, picked, targets, rows_per_chunk=rows_per_chunk, method=unembed)
        return chunked_logprobs(plan.head_logits, picked, targets, rows_per_chunk)

    def score_batch(batch: list[int]) -> None:
        ids, rows, positions = pad_batch(windows, batch, filler)
        ids_d = to_device(ids, embed_device)
        mask = None
        if path.mask:
            lengths = torch.tensor([len(windows[w].ids) for w in batch])
            mask = to_device((torch.arange(ids.shape[1])[None, :] < lengths[:, None]).long(), embed_device)
        rows_h, positions_h = to_device(rows, out_device), to_device(positions, out_device)
        where = to_device(torch.as_tensor(batch), out_device)
        targets = ids_d.to(out_device)[rows_h, positions_h + 1]
        extra = {"attention_mask": mask} if mask is not None else {}
        if path.head == "model_forward":
            logits = _call(model, ids_d, extra).logits
            picked = logits[rows_h.to(logits.device), positions_h.to(logits.device)]
            states_logp = [chunked_logprobs(lambda x: x, picked, targets, rows_per_chunk)]
        else:
            result = _call(base, ids_d, {**extra, "output_hidden_states": lens})
            states = result.hidden_states if lens else (result.last_hidden_state,)
            if len(states) != n_rows:
                raise LoglikMapError(f"expected {n_rows} hidden states, the model returned {len(states)}")
            states_logp = []
            for r, h in enumerate(states):
                same = h.device == out_device
                picked = h[rows_h if same else rows_h.to(h.device), positions_h if same else positions_h.to(h.device)]
                if lens and norm is not None and (r < n_rows - 1 or plan.norm_last_state):
                    picked = norm(picked.to(norm_device))
                states_logp.append(logprobs(picked, targets))
        for r, logp in enumerate(states_logp):
            per_position = torch.zeros(ids.shape, dtype=torch.float64, device=out_device)
            per_position[rows_h, positions_h] = logp.to(torch.float64)  # deterministic, unlike index_add_ on GPUs
            sums[r, where] = per_position.sum(dim=1)

    run_batches(windows, batch_tokens, score_batch, what=f"model {desc!r}", desc=desc, progress=progress)
    out = sums.cpu().numpy()  # the only wait for the device
    return out


def _call(module: Any, ids: Any, extra: dict[str, Any]) -> Any:
    try:
        return module(input_ids=ids, use_cache=False, **extra)
    except TypeError as err:
        if "use_cache" not in str(err):
            raise
        return module(input_ids=ids, **extra)


def _output_device(model: Any) -> Any:
    out_emb = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    params = list(out_emb.parameters()) if out_emb is not None else []
    return params[0].device if params else next(model.parameters()).device


def run_batches(windows: list[Window], batch_tokens: int, run_batch: Callable[[list[int]], None], *,
                what: str, desc: str = "", progress: ProgressArg = False) -> None:
    """Call ``run_batch(batch)`` for every batch of :func:`plan_batches`, under ``torch.inference_mode``.

    ``run_batch`` gets the indices of the windows of one batch and must leave its results where
    they belong whatever the batching (results must not depend on how windows are batched). A
    batch that runs out of device memory is split in two and later batches are kept under half
    its padded size (with a warning), so a too-large ``batch_tokens`` costs time, not results;
    out of memory on a single window is an error. ``what`` names the job in those messages
    (e.g. ``"model 'pythia-70m'"``); ``desc`` labels the progress report over batches
    (``progress``: see :func:`loglik_map._progress.progress_reporter`).
    """
    torch = torch_module()
    pending = plan_batches(windows, batch_tokens)[::-1]  # a stack: the next batch is last
    limit: int | None = None  # padded tokens per batch known to fit, once memory ran out
    with progress_reporter(progress, len(pending), desc=desc, unit="batch", leave=False) as bar, \
            torch.inference_mode():
        while pending:
            batch = pending.pop()
            padded = len(batch) * max(len(windows[w].ids) for w in batch)
            if limit is None or padded <= limit or len(batch) == 1:
                ran_out = False
                try:
                    run_batch(batch)
                except torch.OutOfMemoryError:
                    ran_out = True  # handled below, outside the except block, so the pass's tensors are freed
                if not ran_out:
                    bar.update(1)
                    continue
                if len(batch) == 1:
                    raise LoglikMapError(
                        f"{what}: out of memory on a single text window of {padded} tokens; "
                        "use a smaller max_length (with long_texts='rolling'), a smaller dtype or more devices")
                limit = padded // 2
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                warnings.warn(f"{what}: out of memory at {padded} padded tokens per batch; going on "
                              f"with at most {limit} (batch_tokens={batch_tokens} is too large for this device)",
                              stacklevel=3)
            half = len(batch) // 2  # results do not depend on how texts are batched
            pending += [batch[half:], batch[:half]]
            bar.add_total(1)
