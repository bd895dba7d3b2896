"""Tiny random-weight models of every causal-LM architecture of the installed transformers.

Generated, not hand-listed: every entry of ``MODEL_FOR_CAUSAL_LM_MAPPING_NAMES`` gets its own config
class with the size fields it has (found by name among the dataclass fields of the config, in nested
sub-configs too) set to tiny values, then is built with ``from_config`` and saved with a tokenizer,
so that the real ``from_pretrained`` path loads it. An architecture that transformers cannot build
or run from ``input_ids`` is reported with the reason (:class:`Unbuildable`), never skipped in silence.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
import traceback
from pathlib import Path
from typing import Any

#: Tiny values of the size fields, by field name (whichever a config class has).
TINY = {
    # widths
    **dict.fromkeys(("hidden_size", "d_model", "n_embd", "dim", "model_dim", "hidden_dim", "embed_dim",
                     "d_embed", "emb_dim", "n_embed"), 64),
    **dict.fromkeys(("intermediate_size", "ffn_dim", "decoder_ffn_dim", "encoder_ffn_dim", "n_inner", "d_ff",
                     "ffn_hidden_size", "moe_intermediate_size", "shared_expert_intermediate_size",
                     "expert_intermediate_size", "dense_intermediate_size", "d_inner", "intermediate_dim",
                     "moe_ffn_hidden_size", "shared_intermediate_size", "feed_forward_proj_size"), 96),
    # depth
    **dict.fromkeys(("num_hidden_layers", "n_layer", "n_layers", "num_layers", "decoder_layers",
                     "encoder_layers", "num_decoder_layers"), 2),
    # heads
    **dict.fromkeys(("num_attention_heads", "n_head", "n_heads", "decoder_attention_heads",
                     "encoder_attention_heads", "num_heads"), 4),
    **dict.fromkeys(("num_key_value_heads", "n_kv_heads", "num_kv_heads", "multi_query_group_num",
                     "num_key_value_groups"), 2),
    "head_dim": 16, "attention_head_size": 16, "kv_channels": 16, "dim_head": 16,
    # experts
    **dict.fromkeys(("num_experts", "n_routed_experts", "num_local_experts", "moe_num_experts", "n_experts"), 4),
    **dict.fromkeys(("num_experts_per_tok", "moe_topk", "top_k", "num_experts_per_token", "moe_k"), 2),
    "n_group": 1, "topk_group": 1, "n_shared_experts": 1, "first_k_dense_replace": 1,
    # latent attention
    "kv_lora_rank": 16, "q_lora_rank": 16, "qk_rope_head_dim": 8, "qk_nope_head_dim": 8, "v_head_dim": 16,
    "qk_head_dim": 16,
    # state-space / recurrent
    "state_size": 8, "mamba_d_state": 8, "ssm_state_size": 8, "mamba_n_heads": 4, "mamba_d_head": 32,
    "mamba_headdim": 16, "mamba_expand": 2, "n_groups": 1, "mamba_n_groups": 1, "time_step_rank": 8,
    "lru_width": 64, "conv1d_width": 4, "attention_window_size": 16,
    # positions (texts in the tests are short)
    **dict.fromkeys(("max_position_embeddings", "n_positions", "n_ctx", "max_sequence_length", "seq_length",
                     "max_seq_len", "context_length"), 128),
    # sub-vocabularies and other widths some architectures keep
    "embedding_size": 48, "output_embedding_size": 48, "input_embedding_size": 48,
    "vision_feature_layer": -1, "rotary_dim": 8, "index_n_heads": 4, "index_head_dim": 16, "index_topk": 8,
    "index_num_heads": 2, "vocab_size_per_layer_input": None, "hidden_size_per_layer_input": 8,
    "num_kv_shared_layers": 0, "laurel_rank": 8, "expert_ffn_hidden_size": 96, "zero_expert_num": 2,
    "mamba_d_ssm": 128, "attention_hidden_size": 64, "n_mamba_heads": 2, "adapter_rank": 8,
    "num_dense_layers": 1, "mlp_only_intermediate_size": 96, "index_pool_size": 64,
    # logit transforms at values that show in a tiny model (the scorers must trace them, not know them)
    "logits_scaling": 8.0, "lm_head_multiplier": 0.25, "final_logit_softcapping": 3.0, "logits_soft_cap": 3.0,
}
#: Per-architecture adjustments the generic sizes cannot get right (kept short; each says why).
ADJUST: dict[str, dict[str, Any]] = {
    "zamba": {"num_hidden_layers": 3},  # its layer pattern needs a multiple of the attention period
    "zaya": {"num_experts_per_tok": 1},  # "supports num_experts_per_tok=1 only"
    "dots3_note": {"num_key_value_heads": 4}, "dots3_note_text": {"num_key_value_heads": 4},  # MHA only
    "gpt_neo": {"attention_types": [[["global", "local"], 1]]},  # one entry per layer
    "mamba2": {"num_heads": 8},  # hidden_size * expand = num_heads * head_dim
    "reformer": {"is_decoder": True, "axial_pos_embds_dim": (16, 48), "axial_pos_shape": (8, 16),
                 "attn_layers": ["local", "local"]},  # decoder LM head; axial sizes sum to the width
    **{a: {"num_key_value_heads": 4} for a in ("axk2", "deepseek_v32", "glm_moe_dsa")},  # MLA: as many as queries
    "longcat_flash": {"num_key_value_heads": 4},
}

DEFAULT_VOCAB = 384


@dataclasses.dataclass
class Unbuildable(Exception):
    """transformers itself cannot build this architecture tiny, or cannot run it from ``input_ids`` alone."""

    arch: str
    reason: str

    def __str__(self) -> str:
        return f"{self.arch}: {self.reason}"


def architectures() -> list[tuple[str, str]]:
    """(model type, class name) of every entry of the installed transformers' causal-LM mapping."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return sorted(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.items())


def _field_names(cls: Any) -> set[str]:
    if dataclasses.is_dataclass(cls):
        return {f.name for f in dataclasses.fields(cls)}
    import inspect

    return set(inspect.signature(cls.__init__).parameters)


def tiny_kwargs(config_cls: Any, vocab_size: int, depth: int = 0) -> dict[str, Any]:
    """Keyword arguments making ``config_cls`` tiny; sub-configs (``text_config`` …) are made tiny too."""
    names = _field_names(config_cls)
    out: dict[str, Any] = {k: v for k, v in TINY.items() if k in names}
    for k in ("vocab_size", "n_vocab", "text_vocab_size", "vocab_size_per_layer_input"):
        if k in names:
            out[k] = vocab_size
    defaults = {f.name: f.default for f in dataclasses.fields(config_cls)} if dataclasses.is_dataclass(config_cls) else {}
    for k, v in defaults.items():  # special token ids of the real vocabulary would lie outside the tiny one
        if k.endswith("token_id") and isinstance(v, int) and v >= vocab_size:
            out[k] = min(vocab_size - 1, {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2}.get(k, 3))
    sub = dict(getattr(config_cls, "sub_configs", {}) or {})
    default = None
    for key, sub_cls in sub.items():
        if key not in names or depth >= 2 or not isinstance(sub_cls, type):
            continue
        if sub_cls.__name__ == "AutoConfig":  # the default's own class (the config is cheap to make)
            default = default if default is not None else config_cls()
            sub_cls = type(getattr(default, key, None))
            if not hasattr(sub_cls, "model_type") or sub_cls.__name__ == "NoneType":
                continue
        out[key] = {**sub_cls(**tiny_kwargs(sub_cls, vocab_size, depth + 1)).to_dict(), "model_type": sub_cls.model_type}
    return out


def build(arch: str, tokenizer: Any, seed: int = 0) -> Any:
    """A tiny float32 random model of ``arch`` (a model type of the causal-LM mapping), in eval mode.

    Raises
    ------
    Unbuildable
        With transformers' own error when the config or the model cannot be made.
    """
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    try:
        config_cls = CONFIG_MAPPING[arch]
        kwargs = tiny_kwargs(config_cls, len(tokenizer))
        kwargs.update(ADJUST.get(arch, {}))
        config = config_cls(**kwargs)
    except Exception as err:
        raise Unbuildable(arch, f"config: {type(err).__name__}: {_first_line(err)}") from None
    try:
        with torch.device("meta"):  # count first: a part left at its real size is not built
            n = sum(p.numel() for p in AutoModelForCausalLM.from_config(config).parameters())
        if n > 40_000_000:
            raise Unbuildable(arch, f"model: not tiny ({n / 1e6:.0f}M parameters with the generic tiny sizes)")
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    except Unbuildable:
        raise
    except Exception as err:
        raise Unbuildable(arch, f"model: {type(err).__name__}: {_first_line(err)}") from None
    _randomise_norms(model, seed)
    return model.eval()


def _randomise_norms(model: Any, seed: int) -> None:
    """Norm weights away from 1 and biases away from 0, so a skipped or misplaced norm shows."""
    import torch

    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, module in model.named_modules():
            if "norm" in type(module).__name__.lower() or name.endswith(("norm", "ln_f", "LayerNorm")):
                w = getattr(module, "weight", None)
                if isinstance(w, torch.nn.Parameter) and w.dim() == 1:
                    w.copy_(torch.rand(w.shape, generator=g) * 1.5 + 0.25)
                b = getattr(module, "bias", None)
                if isinstance(b, torch.nn.Parameter) and b.dim() == 1:
                    b.copy_(torch.randn(b.shape, generator=g) * 0.3)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return (text[0] if text else "")[:200]


def runs_from_input_ids(model: Any, ids: Any) -> Any:
    """The model's own ``model(ids).logits``, or :class:`Unbuildable` if it cannot run from ids alone."""
    import torch

    try:
        with torch.no_grad():
            out = model(input_ids=ids, use_cache=False)
        logits = out.logits if hasattr(out, "logits") else out[0]
    except Exception as err:
        where = traceback.extract_tb(err.__traceback__)[-1]
        raise Unbuildable(type(model).__name__, f"forward: {type(err).__name__}: {_first_line(err)} "
                          f"({Path(where.filename).name}:{where.lineno})") from None
    if not torch.is_tensor(logits) or logits.dim() != 3:
        raise Unbuildable(type(model).__name__, f"forward: logits of shape {getattr(logits, 'shape', None)}")
    return logits


def save(model: Any, tokenizer: Any, folder: Path) -> Path:
    """Save a model with its tokenizer where ``from_pretrained`` finds them."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def cache_root() -> Path:
    """Where the tiny models are cached between test sessions (keyed by the transformers version)."""
    import tempfile

    import transformers

    base = os.environ.get("LOGLIK_MAP_ZOO_CACHE") or os.path.join(tempfile.gettempdir(), "loglik_map_zoo")
    digest = hashlib.sha256(repr((TINY, ADJUST, SURVEY_TEXTS)).encode()).hexdigest()[:12]  # new sizes, new models
    return Path(base) / f"transformers-{transformers.__version__}-{digest}"


#: Short texts scored in the architecture survey (different lengths: batches are padded).
SURVEY_TEXTS = (
    "The cat sat on the mat while the rain kept falling outside.",
    "Numbers: 1, 2, 3 and 42.",
    "import os\nprint(os.getcwd())  # where am I",
    "A longer sentence about the history of science, the printing press and the spread of new ideas.",
)
AGREE_NATS = 1e-3  # per text, float32
SLOW_FORWARD_SECONDS = 2.0  # tiny models slower than this (pure-PyTorch fallback kernels) are left to a full run


def _worker_init() -> None:
    import warnings

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(1)


def _check_many(archs: list[str], root: str) -> list[dict[str, Any]]:
    from . import tiny

    tokenizer = tiny.train_tokenizer("neox")
    out = []
    for arch in archs:
        start = time.perf_counter()
        try:
            rec = check_architecture(arch, tokenizer, Path(root))
        except Exception as err:  # a raw traceback: a failure of this architecture's case, not of the survey
            rec = {"arch": arch, "scorer": "TRACEBACK", "notes": "".join(traceback.format_exception(err))[-2000:]}
        rec["seconds"] = time.perf_counter() - start
        out.append(rec)
    return out


def survey(archs: list[str], root: Path, workers: int | None = None) -> dict[str, dict[str, Any]]:
    """:func:`check_architecture` of every architecture, in ``workers`` processes (default: the CPUs, at most 4).

    Each process takes every ``workers``-th architecture (the slow ones spread evenly), loads torch
    once and trains the shared tokenizer once.
    """
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    workers = workers or max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2))
    if workers == 1:
        _worker_init()
        return {r["arch"]: r for r in _check_many(archs, str(root))}
    parts = [archs[i::workers] for i in range(workers)]
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_worker_init) as pool:
        results = list(pool.map(_check_many, parts, [str(root)] * workers))
    return {r["arch"]: r for part in results for r in part}


def materialise(arch: str, tokenizer: Any, root: Path) -> Path:
    """The folder of ``arch``'s tiny model under ``root`` (built and saved once, then reused).

    Raises
    ------
    Unbuildable
        Also when a previous session found it unbuildable (the reason is cached with it).
    """
    import torch

    folder = root / arch
    if (folder / "unbuildable.txt").exists():
        raise Unbuildable(arch, (folder / "unbuildable.txt").read_text())
    if (folder / "config.json").exists() and (folder / "ok").exists():
        return folder
    try:
        model = build(arch, tokenizer)
        ids = torch.tensor([tokenizer.encode(SURVEY_TEXTS[0])])
        runs_from_input_ids(model, ids)
        start = time.perf_counter()
        runs_from_input_ids(model, ids)
        seconds = time.perf_counter() - start
        save(model, tokenizer, folder)
        try:
            from transformers import AutoModelForCausalLM

            AutoModelForCausalLM.from_pretrained(folder)
        except Exception as err:
            raise Unbuildable(arch, f"load: from_pretrained cannot load what save_pretrained wrote: "
                              f"{type(err).__name__}: {_first_line(err)}") from None
        (folder / "ok").write_text(f"{seconds:.4f}")  # one forward pass, seconds
    except Unbuildable as err:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "unbuildable.txt").write_text(err.reason)
        raise Unbuildable(arch, err.reason) from None
    except Exception as err:
        folder.mkdir(parents=True, exist_ok=True)
        reason = f"save: {type(err).__name__}: {_first_line(err)}"
        (folder / "unbuildable.txt").write_text(reason)
        raise Unbuildable(arch, reason) from None
    return folder


def _reference(model: Any, tokenizer: Any, texts: tuple[str, ...]) -> list[float]:
    """The model's own forward, one text at a time, float64 log-softmax (the "reference" convention)."""
    import torch

    out = []
    for text in texts:
        ids = torch.tensor([tokenizer(text)["input_ids"]])
        with torch.no_grad():
            logits = runs_from_input_ids(model, ids)[0].double()
        lp = torch.log_softmax(logits, dim=-1)[:-1].gather(-1, ids[0, 1:, None])
        out.append(float(lp.sum()))
    return out


def check_architecture(arch: str, tokenizer: Any, root: Path) -> dict[str, Any]:
    """Score ``arch``'s tiny model with HFScorer and LogitLensScorer against its own forward.

    Returns
    -------
    dict
        ``arch``, ``model_class``, ``scorer`` ("agrees", "refused", "DISAGREES", "cannot build"),
        ``path`` (the scoring path taken), ``diff`` (nats per text), ``lens`` ("agrees",
        "refused", "DISAGREES", "n/a"), ``lens_diff``, ``final_norm``, ``head``, ``notes``.
    """
    import warnings

    import numpy as np

    import loglik_map as lm
    from loglik_map.scoring import Execution, Loading

    classes = dict(architectures())
    rec: dict[str, Any] = {"arch": arch, "model_class": classes.get(arch, "?"), "scorer": "", "path": "",
                           "diff": float("nan"), "lens": "n/a", "lens_diff": float("nan"), "final_norm": "",
                           "head": "", "notes": ""}
    try:
        folder = materialise(arch, tokenizer, root)
    except Unbuildable as err:
        rec.update(scorer="cannot build", notes=err.reason)
        return rec
    seconds = float((folder / "ok").read_text() or 0)
    if seconds > SLOW_FORWARD_SECONDS and not os.environ.get("LOGLIK_MAP_ALL_ARCHITECTURES"):
        rec.update(scorer="slow", notes=f"one forward pass of the tiny model takes {seconds:.1f} s on this CPU "
                   "(transformers' reference kernels); checked with LOGLIK_MAP_ALL_ARCHITECTURES=1")
        return rec
    on_cpu, quiet = Loading(dtype="float32", device="cpu"), Execution(progress=False)
    scorer = lm.HFScorer(folder, name=arch, loading=on_cpu, execution=quiet)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            final = scorer.score(list(SURVEY_TEXTS))
        except lm.LoglikMapError as err:
            rec.update(scorer="refused", notes=str(err))
            return rec
        loaded = scorer._load()
        ref = np.array(_reference(loaded.model, loaded.tokenizer, SURVEY_TEXTS))
        got = final.values[0]
        check = scorer.self_check()
        rec.update(path=check.path.label, diff=float(np.abs(got - ref).max()), head=check.plan.describe())
        rec["scorer"] = "agrees" if rec["diff"] <= AGREE_NATS else "DISAGREES"
        if check.reason:
            rec["notes"] = check.reason
        lens = lm.LogitLensScorer(loaded.model, tokenizer=loaded.tokenizer, name=arch, loading=on_cpu, execution=quiet)
        try:
            layers = lens.score(list(SURVEY_TEXTS))
        except lm.LoglikMapError as err:
            rec.update(lens="refused", notes=(rec["notes"] + "; " if rec["notes"] else "") + "lens: " + str(err))
            return rec
    rec["lens_diff"] = float(np.abs(layers.values[-1] - got).max())
    rec["lens"] = "agrees" if rec["lens_diff"] <= AGREE_NATS else "DISAGREES"
    rec["final_norm"] = str(layers.data.coords["final_norm"].values[0]) if "final_norm" in layers.data.coords else ""
    return rec
