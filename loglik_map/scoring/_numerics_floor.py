"""The numerics floor (:func:`loglik_map.numerics_floor`): how far one model is from *itself* under other numerics.

The same weights scored in bfloat16 and float32, with SDPA and eager attention, one text at a
time and in a padded batch, give slightly different log-likelihoods. A KL between two models
that is no larger than that difference says nothing about the models. For each *variant* (one
setting changed from the float32 reference) this measures, on the same texts:

* the exact teacher-forced token KL ``KL(reference‖variant)`` (:func:`~loglik_map.exact_kl`, or,
  where the two differ in batching, the same per-position computation with each side batched
  its own way), summed per text, in bits/byte;
* the model map's estimate between the two rows, ``var(ℓ_v − ℓ_ref) / (2 B̄ ln 2)``, with its SE —
  on the scale of every KL of the map; this is what a map's pair is compared with;
* the mean shift ``mean(ℓ_v − ℓ_ref) / (B̄ ln 2)``, which the map's KL ignores (a constant per row
  cancels) but cross-entropies and :func:`~loglik_map.place_by_samples` do not.

torch is imported when :func:`numerics_floor` runs.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from os import PathLike
from typing import Any

import numpy as np
import xarray as xr

from .._progress import PROGRESS_DOC, ProgressArg
from .._units import LN2
from .._util import fill_doc
from ..core._matrix import LogLikelihoodMatrix
from ..core._modelmap import ModelMap
from ..errors import LoglikMapError, WrongTypeError
from ..texts import TextSet
from ._settings import Execution, Windowing, check_group
from ._torch import torch_module

__all__ = ["DEFAULT_VARIANTS", "REFERENCE", "FloorSetting", "numerics_floor"]

_DTYPES = ("float32", "bfloat16", "float16")
_ATTENTION = ("sdpa", "eager")
_BATCHING = ("batched", "one-by-one")


@dataclass(frozen=True)
class FloorSetting:
    """How a model is run: weights' dtype, attention implementation, batching.

    Attributes
    ----------
    dtype : {"float32", "bfloat16", "float16"}
        Weights and activations (log-softmax is float32 and sums float64 whatever the dtype).
    attention : {"sdpa", "eager"}
        ``attn_implementation`` of transformers.
    batching : {"batched", "one-by-one"}
        Texts packed into padded batches (the scorer's ``batch_tokens``) or each window alone.
    """

    dtype: str = "float32"
    attention: str = "sdpa"
    batching: str = "batched"

    def __post_init__(self) -> None:
        for name, allowed in (("dtype", _DTYPES), ("attention", _ATTENTION), ("batching", _BATCHING)):
            if getattr(self, name) not in allowed:
                raise LoglikMapError(f"unknown {name} {getattr(self, name)!r}; use one of {', '.join(allowed)}")

    def __str__(self) -> str:
        return f"{self.dtype}, {self.attention}, {self.batching}"


#: The reference every variant is compared with: the library's float32 scoring.
REFERENCE = FloorSetting()
#: Variant names: each changes one setting of :data:`REFERENCE` (the ones equal to it measure
#: whether a second identical run gives the same numbers).
KNOWN_VARIANTS: dict[str, dict[str, str]] = {
    "float32": {"dtype": "float32"}, "bfloat16": {"dtype": "bfloat16"}, "float16": {"dtype": "float16"},
    "sdpa": {"attention": "sdpa"}, "eager": {"attention": "eager"},
    "batched": {"batching": "batched"}, "one-by-one": {"batching": "one-by-one"},
}
DEFAULT_VARIANTS = ("float32", "bfloat16", "float16", "sdpa", "eager", "batched", "one-by-one")


def _settings(variants: Sequence[str] | Mapping[str, Any]) -> dict[str, FloorSetting]:
    if isinstance(variants, str):
        variants = (variants,)
    out: dict[str, FloorSetting] = {}
    if isinstance(variants, Mapping):
        for name, spec in variants.items():
            if isinstance(spec, FloorSetting):
                out[str(name)] = spec
            elif isinstance(spec, Mapping):
                out[str(name)] = replace(REFERENCE, **dict(spec))
            else:
                raise WrongTypeError(f"variant {name!r}: give a FloorSetting or a dict of dtype/attention/batching, "
                                     f"got {type(spec).__name__}")
    else:
        for name in variants:
            if name not in KNOWN_VARIANTS:
                raise LoglikMapError(f"unknown variant {name!r}; use {', '.join(KNOWN_VARIANTS)}, or a mapping "
                                     "{name: {'dtype': ..., 'attention': ..., 'batching': ...}}")
            out[name] = replace(REFERENCE, **KNOWN_VARIANTS[name])
    if not out:
        raise LoglikMapError("no variants: name at least one, e.g. variants=('bfloat16',)")
    return out


class _Models:
    """Models loaded once per (dtype, attention); scorers made per setting."""

    def __init__(self, model: str | PathLike[str], device: str, batch_tokens: int, windowing: Windowing | None):
        self.model, self.device, self.batch_tokens, self.windowing = model, device, batch_tokens, windowing
        self._loaded: dict[tuple[str, str], Any] = {}
        self._tokenizer: Any = None

    def _load(self, dtype: str, attention: str) -> Any:
        key = (dtype, attention)
        if key not in self._loaded:
            torch = torch_module()
            from transformers import AutoModelForCausalLM, AutoTokenizer

            from ._loading import loading_errors, quiet_transformers

            with loading_errors(str(self.model), None):
                if self._tokenizer is None:
                    self._tokenizer = AutoTokenizer.from_pretrained(self.model)
                with quiet_transformers():
                    try:
                        loaded = AutoModelForCausalLM.from_pretrained(self.model, dtype=getattr(torch, dtype),
                                                                      attn_implementation=attention)
                    except (ValueError, ImportError) as err:
                        raise LoglikMapError(f"{self.model}: cannot load with attn_implementation={attention!r} "
                                             f"({err}); leave that variant out") from None
            self._loaded[key] = loaded.to(self.device).eval()  # type: ignore[arg-type]
        return self._loaded[key]

    def scorer(self, setting: FloorSetting, name: str) -> Any:
        from ._hf import HFScorer

        model = self._load(setting.dtype, setting.attention)
        batch_tokens = 1 if setting.batching == "one-by-one" else self.batch_tokens
        return HFScorer(model, tokenizer=self._tokenizer, name=name, windowing=self.windowing,
                        execution=Execution(batch_tokens=batch_tokens, progress=False))


def _pair_batched_differently(ref: Any, var: Any, texts: TextSet, progress: ProgressArg) -> xr.Dataset:
    """:func:`exact_kl`'s per-position computation where the two sides are batched differently.

    Every batch of the reference is run as such; the variant runs the same windows under its own
    budget (one window per pass for ``"one-by-one"``); the hidden states at the scored positions
    are then unembedded and compared as :func:`exact_kl` does (``pair_chunk``).
    """
    torch = torch_module()
    from ._batching import pad_batch, run_batches
    from ._exact_kl_run import _check_plain_head, pair_chunk
    from ._kl_summary import exact_kl_dataset
    from ._unembed import Head, logit_rows, postprocess_logits
    from ._windows import plan_batches

    encoded = ref.encode(texts)
    windows = [w for e in encoded for w in e.windows]
    sides = [(s._load(), Head(s._load().model.get_output_embeddings()), int(s.execution.batch_tokens)) for s in (ref, var)]
    for s in (ref, var):
        _check_plain_head(s._load().model, s.name)
    device = sides[0][1].device
    offsets = np.concatenate([[0], np.cumsum([w.n_scored for w in windows])])
    names = ("kl_ab", "kl_ba", "logp_a", "logp_b", "same_top")
    result = {n: np.empty(int(offsets[-1]), dtype=bool if n == "same_top" else np.float32) for n in names}

    def states(loaded: Any, batch: list[int]) -> tuple[Any, Any, Any, Any]:
        ids, rows, positions = pad_batch(windows, batch)
        dev = loaded.model.get_input_embeddings().weight.device
        h = loaded.model.base_model(input_ids=ids.to(dev), use_cache=False).last_hidden_state
        return h[rows.to(dev), positions.to(dev)], ids, rows, positions

    def run_batch(batch: list[int]) -> None:
        (la, head_a, _), (lb, head_b, budget_b) = sides
        ha, ids, rows, positions = states(la, batch)
        parts: dict[int, Any] = {}
        for sub in plan_batches([windows[w] for w in batch], budget_b):
            members = [batch[i] for i in sub]
            hb, _, rows_b, _ = states(lb, members)
            for j, w in enumerate(members):
                parts[w] = hb[(rows_b == j).to(hb.device)]
        hb_all = torch.cat([parts[w].to(ha.device) for w in batch])
        targets = ids[rows, positions + 1].to(device)
        starts = np.asarray([windows[w].score_from - 1 for w in batch])
        index = offsets[np.asarray(batch)][rows.numpy()] + positions.numpy() - starts[rows.numpy()]
        step = logit_rows(device, head_a.vocab)
        for p0 in range(0, ha.shape[0], step):
            p1 = min(p0 + step, ha.shape[0])
            za = postprocess_logits(la.model.config, head_a.logits(ha[p0:p1]))
            zb = postprocess_logits(lb.model.config, head_b.logits(hb_all[p0:p1])).to(za.device)
            for n, value in zip(names, pair_chunk(za, zb, targets[p0:p1])):
                result[n][index[p0:p1]] = value.cpu().numpy()

    run_batches(windows, int(ref.execution.batch_tokens), run_batch, what=f"numerics floor {ref.name} vs {var.name}",
                desc=f"{ref.name} vs {var.name}", progress=progress)
    owner = np.repeat([w.text_index for w in windows], [w.n_scored for w in windows])
    done = np.zeros(len(texts), dtype=np.int64)
    target = np.empty(owner.size, dtype=np.int64)
    start = 0
    for w in windows:
        target[start:start + w.n_scored] = done[w.text_index] + 1 + np.arange(w.n_scored)
        done[w.text_index] += w.n_scored
        start += w.n_scored
    return exact_kl_dataset(texts=texts, token_text=owner, token_target=target, kl_ab=result["kl_ab"],
                            kl_ba=result["kl_ba"], logp_a=result["logp_a"], logp_b=result["logp_b"],
                            same_top=result["same_top"], attrs={"model_a": ref.name, "model_b": var.name})


@fill_doc(progress=PROGRESS_DOC)
def numerics_floor(model: str | PathLike[str], texts: TextSet | Sequence[str],
                   variants: Sequence[str] | Mapping[str, Any] = DEFAULT_VARIANTS, *, device: str = "cpu",
                   batch_tokens: int = 8192, progress: ProgressArg = False,
                   windowing: Windowing | None = None) -> xr.Dataset:
    """How far a model is from itself under other numerics: the floor under every KL of a map.

    The default variants are ``("float32", "bfloat16", "float16", "sdpa", "eager", "batched",
    "one-by-one")``. Each changes one setting of the reference (float32 weights, SDPA attention, padded
    batches) and is compared with it on ``texts``: by the exact token KL and by the model map's
    own estimate. Variants equal to the reference (``"float32"``, ``"sdpa"``, ``"batched"``)
    measure whether a second run repeats the first (exactly 0 on a deterministic CPU).

    Parameters
    ----------
    model : str or path
        A hub id or a local folder (loaded once per dtype and attention implementation).
    texts : TextSet or sequence of str
        The texts (the map's texts, or a sample of them; at least 32 for the SEs).
    variants : sequence of str or mapping, default :data:`DEFAULT_VARIANTS`
        Names of one-setting changes, or ``{name: {"dtype": ..., "attention": ..., "batching": ...}}``
        (or :class:`FloorSetting`) for combinations. Half precision on a CPU is slow (bfloat16
        was ~100× float32 on the reference machine): measure it on a few texts there.
    device : str, default "cpu"
        Where the models run (``"cuda"`` for a GPU).
    batch_tokens : int, default 8192
        Padded tokens per batch of the ``"batched"`` setting.
    progress : bool, callable or None, default False
        Progress over the exact-KL batches, one variant after another.
        {progress}
    windowing : Windowing, optional
        Which tokens are scored (:class:`~loglik_map.scoring.Windowing`); default ``Windowing()``.

    Returns
    -------
    xarray.Dataset
        Along ``variant`` (with coordinates ``dtype``, ``attention``, ``batching``):

        ``exact_kl``, ``exact_kl_se``
            Teacher-forced ``KL(reference‖variant)`` summed over each text's positions, mean over
            texts / (B̄ ln 2), in bits/byte, and its SE over texts.
        ``map_kl``, ``map_kl_se``
            The model map's estimate between the variant's and the reference's rows, bits/byte.
        ``loglik_shift``, ``loglik_shift_se``
            ``mean(ℓ_variant − ℓ_reference) / (B̄ ln 2)``, bits/byte.
        ``max_abs_loglik_diff``
            Largest ``|ℓ_variant − ℓ_reference|`` over texts, nats per text.
        ``same_top``
            Fraction of positions where both give the same most likely token.
        ``seconds``
            Wall time of scoring the texts with the variant.

        Attributes: ``model``, ``reference`` (its settings), ``device``, ``n_texts``,
        ``mean_bytes``, library versions, and ``floor`` — the largest ``map_kl`` over the
        variants, in bits/byte, which :meth:`ModelMap.summary <loglik_map.ModelMap.summary>` and
        :func:`~loglik_map.kl_scale` take as ``floor=``.

    Examples
    --------
    ::

        floor = lm.numerics_floor("EleutherAI/pythia-160m", texts[:200], variants=("bfloat16", "eager"))
        mm.summary(floor=floor)          # flags pairs whose KL + 2 SE lies below the floor
    """
    from ._torch import require_torch

    require_torch()
    torch = torch_module()
    import transformers

    from ._exact_kl import exact_kl

    if not isinstance(model, (str, PathLike)):
        raise WrongTypeError(f"numerics_floor loads the model itself in each dtype: give a hub id or a folder, got "
                             f"{type(model).__name__}")
    texts = TextSet.coerce(texts)
    settings = _settings(variants)
    models = _Models(model, device, int(batch_tokens), check_group(windowing, Windowing, "numerics_floor"))
    reference = models.scorer(REFERENCE, "reference")
    started = time.perf_counter()
    ref_row = reference.score(texts)
    ref_seconds = time.perf_counter() - started
    rows: dict[str, list[float]] = {k: [] for k in ("exact_kl", "exact_kl_se", "map_kl", "map_kl_se", "loglik_shift",
                                                    "loglik_shift_se", "max_abs_loglik_diff", "same_top", "seconds")}
    scale = float(texts.n_bytes.mean()) * LN2
    for name, setting in settings.items():
        scorer = models.scorer(setting, name)
        started = time.perf_counter()
        row = scorer.score(texts)
        rows["seconds"].append(time.perf_counter() - started)
        if setting.batching == REFERENCE.batching:
            exact = exact_kl(reference, scorer, texts, progress=progress)
        else:
            exact = _pair_batched_differently(reference, scorer, texts, progress)
        rows["exact_kl"].append(float(exact["kl_ab_bits_per_byte"]))
        rows["exact_kl_se"].append(float(exact["kl_ab_bits_per_byte_se"]))
        rows["same_top"].append(float(exact["same_top"]))
        pair = LogLikelihoodMatrix.concat([ref_row, row])
        estimate = ModelMap(pair).compare("reference", name)
        rows["map_kl"].append(estimate.kl)
        rows["map_kl_se"].append(estimate.se)
        diff = row.values[0] - ref_row.values[0]
        rows["loglik_shift"].append(float(diff.mean()) / scale)
        rows["loglik_shift_se"].append(float(diff.std(ddof=1) / np.sqrt(diff.size)) / scale if diff.size > 1
                                       else float("nan"))
        rows["max_abs_loglik_diff"].append(float(np.abs(diff).max()))
    units = {"exact_kl": "bits/byte", "exact_kl_se": "bits/byte", "map_kl": "bits/byte", "map_kl_se": "bits/byte",
             "loglik_shift": "bits/byte", "loglik_shift_se": "bits/byte", "max_abs_loglik_diff": "nats per text",
             "same_top": "fraction", "seconds": "s"}
    names = list(settings)
    return xr.Dataset(
        {k: ("variant", np.asarray(v, dtype=np.float64), {"units": units[k]}) for k, v in rows.items()},
        coords={"variant": names, "dtype": ("variant", [settings[n].dtype for n in names]),
                "attention": ("variant", [settings[n].attention for n in names]),
                "batching": ("variant", [settings[n].batching for n in names])},
        attrs={"model": str(model), "reference": str(REFERENCE), "reference_seconds": ref_seconds,
               "device": str(device), "n_texts": len(texts), "mean_bytes": float(texts.n_bytes.mean()),
               "batch_tokens": int(batch_tokens), "floor": float(np.max(rows["map_kl"])), "floor_units": "bits/byte",
               "floor_rule": "largest map_kl over the variants",
               "exact_kl_direction": "KL(reference || variant), teacher-forced, summed per text",
               "torch_version": torch.__version__, "transformers_version": transformers.__version__},
    )
