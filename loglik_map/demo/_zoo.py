"""A miniature model suite: every setting of the paper with real GPT-NeoX (and Llama) models on CPU.

:func:`build_zoo` trains, with ``transformers`` and a byte-level BPE tokenizer trained locally on
the built-in ``train`` texts, several model sizes with checkpoints on a Pythia-like schedule
(dense early, then regular), several seeds of one size, a second architecture, and fine-tuned
children on one domain; all saved with ``save_pretrained`` (safetensors) and cached, so a second
call returns at once. Quantized copies (bitsandbytes 8-bit and 4-bit) and logit-lens rows are
scoring options of the specs :meth:`Zoo.specs` returns. Deterministic for a seed on one machine.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from .._progress import PROGRESS_DOC, ProgressArg, progress_reporter
from .._repr import ReprMixin, Summary, first_labels
from .._util import fill_doc
from ..core._matrix import LogLikelihoodMatrix
from ..errors import LoglikMapError, require_extra
from ..scoring._loading import quiet_transformers
from ..scoring._runs import ModelSpec
from ..scoring._settings import Loading, Windowing
from ..texts import DOMAINS, load_texts
from ._training import model_from_config, token_stream, train_steps, train_tokenizer

__all__ = ["Zoo", "ZooConfig", "build_zoo", "default_zoo_dir"]


@dataclass(frozen=True)
class RunConfig:
    """One training run: architecture, width, depth, seed."""

    arch: str
    size: str
    hidden: int
    layers: int
    seed: int

    @property
    def name(self) -> str:
        return f"{self.arch}-{self.size}-seed{self.seed}"


def _schedule(total: int, every: int) -> tuple[int, ...]:
    dense = [0] + [2**k for k in range(int(math.log2(max(every, 1))) + 1) if 2**k < every]
    return tuple(sorted(set(dense + list(range(every, total + 1, every)))))


@dataclass(frozen=True, repr=False)
class ZooConfig(ReprMixin):
    """What the zoo trains. The defaults take a few minutes on 2 CPU cores; :meth:`fast` seconds.

    Attributes
    ----------
    runs : tuple of RunConfig
        The pretraining runs (the first one also gets fine-tuned children and the full trajectory).
    steps : int
        Optimizer steps per pretraining run.
    checkpoint_every : int
        Regular checkpoint spacing; before it, checkpoints at 0, 1, 2, 4, … (Pythia-like).
    batch_size, seq_len : int
        Sequences per step and tokens per sequence (the models are trained on every position up
        to ``seq_len``).
    learning_rate, warmup : float, int
        AdamW peak learning rate and linear warm-up steps (then cosine decay to 10 %).
    vocab_size : int
        Tokenizer vocabulary (byte-level BPE trained on the ``train`` texts).
    max_positions : int
        Context length of the models. The default (512, as ``seq_len``) holds 99 % of the built-in
        texts in one window (median ~430 tokens under the zoo's tokenizer, at most ~630); the rest
        are scored in rolling windows, so no token is ever dropped.
    finetune_domains : tuple of str
        One child per domain, fine-tuned from the first run's final checkpoint.
    finetune_steps : int
    finetune_learning_rate : float
        Peak learning rate of fine-tuning (2 warm-up steps, then cosine decay).
    seed : int
        Seed of the tokenizer data order and of fine-tuning.
    """

    runs: tuple[RunConfig, ...] = (
        RunConfig("neox", "s", 128, 2, 0),
        RunConfig("neox", "s", 128, 2, 1),
        RunConfig("neox", "xs", 64, 2, 0),
        RunConfig("neox", "m", 128, 4, 0),
        RunConfig("llama", "s", 128, 2, 0),
    )
    steps: int = 256
    checkpoint_every: int = 16
    batch_size: int = 4
    seq_len: int = 512
    learning_rate: float = 3e-3
    warmup: int = 16
    vocab_size: int = 1024
    max_positions: int = 512
    finetune_domains: tuple[str, ...] = ("python_docs", "kjv")
    finetune_steps: int = 48
    finetune_learning_rate: float = 3e-4
    seed: int = 0

    @classmethod
    def fast(cls) -> ZooConfig:
        """A seconds-long setting for tests: tiny models, few steps, the same structure.

        The context is 128 tokens, so most built-in texts are scored in rolling windows.

        Returns
        -------
        ZooConfig
            The fast configuration.
        """
        return cls(
            runs=(RunConfig("neox", "s", 32, 2, 0), RunConfig("neox", "s", 32, 2, 1), RunConfig("neox", "xs", 16, 1, 0),
                  RunConfig("llama", "s", 32, 2, 0)),
            steps=24, checkpoint_every=4, batch_size=2, seq_len=128, warmup=2, vocab_size=1024, max_positions=128,
            finetune_domains=("python_docs",), finetune_steps=6,
        )

    def __post_init__(self) -> None:
        for key in ("steps", "checkpoint_every", "batch_size", "seq_len", "warmup", "vocab_size", "max_positions",
                    "finetune_steps"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "warmup" else 1):
                raise LoglikMapError(f"ZooConfig.{key} must be a positive integer, got {value!r}")
        if self.seq_len > self.max_positions:
            raise LoglikMapError(f"ZooConfig.seq_len = {self.seq_len} exceeds max_positions = {self.max_positions}: "
                                 "the models would be trained on positions they do not have")
        if not self.runs:
            raise LoglikMapError("ZooConfig.runs is empty; the zoo needs at least one pretraining run")

    @property
    def checkpoints(self) -> tuple[int, ...]:
        """Saved steps of every pretraining run."""
        return _schedule(self.steps, self.checkpoint_every)

    def _summary(self) -> Summary:
        steps = self.checkpoints
        return Summary("ZooConfig", (("run", len(self.runs)),), "", (
            ("runs", first_labels(f"{r.name} ({r.hidden}×{r.layers})" for r in self.runs)),
            ("training", f"{self.steps} steps of {self.batch_size} × {self.seq_len} tokens, lr {self.learning_rate:g}"),
            ("checkpoints", _steps_text(steps)),
            ("tokenizer", f"byte-level BPE, {self.vocab_size} tokens; context {self.max_positions}"),
            ("fine-tuning", f"{', '.join(self.finetune_domains)} ({self.finetune_steps} steps)"
             if self.finetune_domains else "none"),
            ("fingerprint", self.fingerprint()),
        ))

    def fingerprint(self) -> str:
        """A short hash of every field: a built zoo is reused only for the same configuration.

        Returns
        -------
        str
            12 hexadecimal digits.
        """
        import hashlib

        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def _steps_text(steps: Sequence[int]) -> str:
    shown = ", ".join(map(str, steps[:5])) + (f", …, {steps[-1]}" if len(steps) > 5 else "")
    return f"{len(steps)} per run, at steps {shown}"


def default_zoo_dir() -> Path:
    """The folder the zoo is built in and reused from.

    Returns
    -------
    pathlib.Path
        ``$LOGLIK_MAP_ZOO`` or ``~/.cache/loglik_map/zoo``.
    """
    return Path(os.environ.get("LOGLIK_MAP_ZOO", Path.home() / ".cache" / "loglik_map" / "zoo"))


@dataclass(frozen=True, repr=False)
class Zoo(ReprMixin):
    """A built zoo: where its checkpoints are and how to score and label them.

    Attributes
    ----------
    root : Path
        The zoo's folder.
    config : ZooConfig
        The configuration it was built with.
    """

    root: Path
    config: ZooConfig
    _meta: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def _summary(self) -> Summary:
        cfg = self.config
        built = (Path(self.root) / "zoo.json").is_file()
        return Summary("Zoo", (("run", len(cfg.runs)),), "", (
            ("root", str(self.root)),
            ("built", "yes" if built else "no (build_zoo trains it)"),
            ("runs", first_labels(self.run_names)),
            ("checkpoints", _steps_text(cfg.checkpoints)),
            ("fine-tuned", ", ".join(f"{self.run_names[0]}-{d}" for d in cfg.finetune_domains) or "none"),
        ))

    def checkpoint(self, run: str, step: int) -> Path:
        """Folder of a saved checkpoint.

        Parameters
        ----------
        run : str
            Run name (:attr:`run_names`).
        step : int
            A saved step (:attr:`ZooConfig.checkpoints`).

        Returns
        -------
        pathlib.Path
            The checkpoint's folder.
        """
        return self.root / "runs" / run / f"step{step}"

    def final(self, run: str) -> Path:
        """Folder of a run's last checkpoint.

        Parameters
        ----------
        run : str
            Run name (:attr:`run_names`).

        Returns
        -------
        pathlib.Path
            The checkpoint's folder.
        """
        return self.checkpoint(run, self.config.steps)

    @property
    def run_names(self) -> list[str]:
        return [r.name for r in self.config.runs]

    def child(self, domain: str) -> Path:
        """Folder of the first run's final checkpoint fine-tuned on ``domain``.

        Parameters
        ----------
        domain : str
            One of :attr:`ZooConfig.finetune_domains`.

        Returns
        -------
        pathlib.Path
            The fine-tuned model's folder.
        """
        return self.root / "finetuned" / f"{self.run_names[0]}-{domain}"

    def specs(self, *, quantization: Sequence[str] = ("8bit", "4bit"), logit_lens: bool = True,
              trajectory: bool = True, loading: Loading | None = None) -> list[ModelSpec]:
        """What the demo scores, as model specs.

        Every checkpoint of the first run (``trajectory``), every run's final checkpoint, the
        fine-tuned children, quantized copies and logit-lens rows of the finals of the first and
        the deepest run.

        Parameters
        ----------
        quantization : sequence of str, default ("8bit", "4bit")
            Quantized copies of the finals.
        logit_lens : bool, default True
            Add the logit-lens rows of the finals.
        trajectory : bool, default True
            Every checkpoint of the first run (else its final only).
        loading : Loading, optional
            How every model is loaded (e.g. ``Loading(device="cpu")``); the quantized copies
            add their quantization to it. Every spec carries it, since a spec's group
            replaces the run's (:func:`~loglik_map.score_models`).

        Returns
        -------
        list of ModelSpec
            One spec per row to score.
        """
        specs: list[ModelSpec] = []
        first = self.run_names[0]
        steps = self.config.checkpoints if trajectory else (self.config.steps,)
        rolling = Windowing(long_texts="rolling")  # never drop a token, whatever the run's windowing
        for s in steps:
            specs.append(ModelSpec(str(self.checkpoint(first, s)), name=f"{first}@{s}", step=s, loading=loading,
                                   windowing=rolling))
        for run in self.run_names[1:]:
            specs.append(ModelSpec(str(self.final(run)), name=f"{run}@{self.config.steps}", step=self.config.steps,
                                   loading=loading, windowing=rolling))
        for d in self.config.finetune_domains:
            specs.append(ModelSpec(str(self.child(d)), name=f"{first}-{d}", loading=loading, windowing=rolling))
        deepest = max(self.config.runs, key=lambda r: (r.layers, r.hidden)).name
        for run in dict.fromkeys([first, deepest]):
            for q in quantization:
                quantized = replace(loading or Loading(), quantization=q)
                specs.append(ModelSpec(str(self.final(run)), name=f"{run}@{self.config.steps}[{q}]",
                                       loading=quantized, windowing=rolling))
            if logit_lens:
                specs.append(ModelSpec(str(self.final(run)), name=f"{run}@{self.config.steps}", logit_lens=True,
                                       loading=loading, windowing=rolling))
        return specs

    def annotate(self, matrix: LogLikelihoodMatrix) -> LogLikelihoodMatrix:
        """Add the zoo's model coordinates to a matrix of its models.

        The coordinates are ``arch``, ``size``, ``seed``, ``step``, ``run``, ``base_model`` (for
        children) and ``family`` (model type); quantization and layer come from scoring.

        Parameters
        ----------
        matrix : LogLikelihoodMatrix
            Rows scored from :meth:`specs`.

        Returns
        -------
        LogLikelihoodMatrix
            The matrix with the coordinates added.
        """
        cfg = {r.name: r for r in self.config.runs}
        cols: dict[str, list[Any]] = {k: [] for k in ("run", "arch", "size", "seed", "step", "family", "base_model")}
        for name in matrix.models:
            base = name.split("[")[0].split("@layer")[0]
            child_of = None
            for d in self.config.finetune_domains:
                if base == f"{self.run_names[0]}-{d}":
                    child_of = f"{self.run_names[0]}@{self.config.steps}"
                    run, step = self.run_names[0], np.nan
                    break
            else:
                run, _, step_s = base.partition("@")
                step = float(step_s) if step_s else np.nan
            r = cfg.get(run)
            if r is None:
                raise LoglikMapError(f"model {name!r} is not from this zoo")
            cols["run"].append(run)
            cols["arch"].append(r.arch)
            cols["size"].append(r.size)
            cols["seed"].append(float(r.seed))
            cols["step"].append(step if "[" not in name and "@layer" not in name else np.nan)
            cols["family"].append(r.arch if child_of is None else f"{r.arch}-finetuned")
            cols["base_model"].append(child_of or "")
        da = matrix.data.assign_coords({k: ("model", np.asarray(v, dtype=object if isinstance(v[0], str) else float))
                                        for k, v in cols.items()})
        return LogLikelihoodMatrix.from_dataarray(da)


@fill_doc(progress=PROGRESS_DOC)
def build_zoo(root: str | PathLike[str] | None = None, config: ZooConfig | None = None, *,
              progress: ProgressArg = None) -> Zoo:
    """Train (or reuse) the miniature model suite.

    Parameters
    ----------
    root : path, optional
        Cache folder (default :func:`default_zoo_dir`); a different ``config`` gets its own subfolder.
    config : ZooConfig, optional
        Default :class:`ZooConfig()`; :meth:`ZooConfig.fast` for tests.
    progress : bool, callable or None, default None
        Progress over training steps.
        {progress}

    Returns
    -------
    Zoo
        The zoo: its configuration, checkpoints and model specs.
    """
    torch = require_extra("torch", "models", "the zoo")
    require_extra("transformers", "models", "the zoo")

    cfg = config or ZooConfig()
    base = Path(root) if root is not None else default_zoo_dir()
    zroot = base / cfg.fingerprint()
    zoo = Zoo(zroot, cfg)
    done = zroot / "zoo.json"
    if done.is_file():
        return zoo
    zroot.mkdir(parents=True, exist_ok=True)
    train = load_texts("train")
    train_domains = train.domains or []  # the built-in texts always carry their domains
    tok_dir = zroot / "tokenizer"
    if (tok_dir / "tokenizer.json").is_file():
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    else:
        tokenizer = train_tokenizer(train.texts, cfg.vocab_size, tok_dir)
    stream = token_stream(tokenizer, train.texts)
    total = len(cfg.runs) * cfg.steps + len(cfg.finetune_domains) * cfg.finetune_steps
    with progress_reporter(progress, total, desc="training the zoo", unit="step") as bar:
        started = time.perf_counter()
        threads = torch.get_num_threads()
        for run in cfg.runs:
            final = zoo.final(run.name)
            if final.is_dir():
                bar.update(cfg.steps)
                continue
            torch.manual_seed(run.seed)
            model = model_from_config(run, cfg, len(tokenizer))
            save_at = {s: zoo.checkpoint(run.name, s) for s in cfg.checkpoints}
            for p in save_at.values():
                p.parent.mkdir(parents=True, exist_ok=True)
            bar.set_description(f"training {run.name}")
            train_steps(model, stream, steps=cfg.steps, cfg=cfg, seed=1000 + run.seed, save_at=save_at,
                        tokenizer=tokenizer, bar=bar)
        from transformers import AutoModelForCausalLM

        first = cfg.runs[0].name
        for d in cfg.finetune_domains:
            if d not in DOMAINS:
                raise LoglikMapError(f"unknown fine-tuning domain {d!r}; domains are {DOMAINS}")
            child = zoo.child(d)
            if child.is_dir():
                bar.update(cfg.finetune_steps)
                continue
            child.parent.mkdir(parents=True, exist_ok=True)
            torch.manual_seed(cfg.seed)
            with quiet_transformers():
                model = AutoModelForCausalLM.from_pretrained(zoo.final(first))
            domain_stream = token_stream(tokenizer, [t for t, dom in zip(train.texts, train_domains) if dom == d])
            bar.set_description(f"fine-tuning on {d}")
            train_steps(model, domain_stream, steps=cfg.finetune_steps, cfg=cfg, seed=cfg.seed + 7,
                        save_at={cfg.finetune_steps: child}, tokenizer=tokenizer, lr=cfg.finetune_learning_rate,
                        warmup=2, bar=bar)
            (child / "README.md").write_text(
                f"---\nbase_model: {zoo.final(first)}\nlicense: mit\n---\n# {child.name}\n\n"
                f"{first} fine-tuned for {cfg.finetune_steps} steps on the '{d}' domain of loglik_map's built-in texts.\n",
                encoding="utf-8")
    done.write_text(json.dumps({"config": asdict(cfg), "seconds": time.perf_counter() - started,
                                "torch_threads": threads}, indent=1), encoding="utf-8")
    return zoo
