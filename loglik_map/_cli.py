"""Command-line interface: ``loglik-map`` (also ``python -m loglik_map``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence

from ._cli_output import terminal_safe
from ._cli_read import COMMANDS, add_read_commands
from ._cli_tree import TREE_COMMANDS, add_tree_command
from ._labels import unknown_labels_error
from .errors import LoglikMapError

__all__ = ["main"]


def _integer(low: int) -> Callable[[str], int]:
    """An argparse type: an integer ≥ ``low`` (the error names the flag and the bad value)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value
    return parse


def _existing_file(text: str) -> str:
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError(f"no such file: {text!r}")
    return text


def _texts_source(text: str) -> str:
    """A built-in text set's name (``mini``, ``train``) or an existing file."""
    from .texts._builtin import _SPLITS

    return text if text in _SPLITS else _existing_file(text)


def _load_texts(source: str):
    from .texts import TextSet, load_texts
    from .texts._builtin import _SPLITS

    return load_texts(source) if source in _SPLITS else TextSet.load(source)


def _device(text: str) -> str:
    from .scoring import Loading

    try:
        Loading(device=text)
    except LoglikMapError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _build_parser() -> argparse.ArgumentParser:
    from ._version import __version__

    parser = argparse.ArgumentParser(prog="loglik-map", description="Compare language models as probability distributions.")
    parser.add_argument("--version", action="version", version=f"loglik_map {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train (or reuse) a miniature model suite, score it, map it, print and plot",
                          description="The whole method on a fresh machine: trains the miniature zoo (cached), "
                          "scores it on the built-in texts, and prints the KL scale, consecutive KL, diffusion "
                          "exponents and the Hölder estimate; figures go to --out.")
    demo.add_argument("--out", default="loglik-map-demo", help="output folder (default ./loglik-map-demo)")
    demo.add_argument("--fast", action="store_true", help="tiny zoo and few texts (seconds; for tests)")
    demo.add_argument("--n-texts", type=_integer(2),
                      help="texts sampled from the built-in set (default 800, 200 with --fast)")
    demo.add_argument("--zoo-dir", help="zoo cache (default $LOGLIK_MAP_ZOO or ~/.cache/loglik_map/zoo)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bars")
    score = sub.add_parser(
        "score",
        help="score models on texts into a resumable run store",
        description="Score every model of --models on --texts into the run store --store. A rerun skips "
        "finished models; failures are recorded and the exit status is 1 if any model failed.",
    )
    score.add_argument("--models", required=True,
                       type=_existing_file,
                       help="file with one model per line: 'hub-id-or-folder [revision=R] [quantization=8bit] "
                       "[name=N] [logit_lens=true] [dtype=D] [step=S] [KEY=VALUE ...]', KEY any field of "
                       "loglik_map.scoring.Loading, Windowing or Execution (max_length=512, device=cpu, ...), "
                       "overriding the options below for that model; '#' starts a comment")
    score.add_argument("--texts", required=True, type=_texts_source,
                       help="'mini' or 'train' (the built-in texts), or a file: .jsonl (reference format) or .json "
                       "(list of strings); write ./mini for a file of that name")
    score.add_argument("--store", required=True, help="run-store directory (created if missing)")
    score.add_argument("--revision", help="default revision for every model")
    score.add_argument("--quantization", choices=["8bit", "4bit", "4bit-fp4"], help="default quantization")
    score.add_argument("--logit-lens", action="store_true", help="score every layer (logit lens)")
    score.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    score.add_argument("--convention", default="reference", choices=["reference", "bos"])
    score.add_argument("--long-texts", default="rolling", choices=["rolling", "truncate", "error"],
                       help="texts longer than the context: scored in rolling windows (default), truncated "
                       "(as the reference scripts; recorded and warned) or refused")
    score.add_argument("--max-length", type=_integer(2), help="context length (default: the model's)")
    score.add_argument("--batch-tokens", type=_integer(1), default=8192, help="padded tokens per forward pass")
    score.add_argument("--device", default="auto", type=_device, help="auto, cpu, cuda, cuda:N, mps")
    score.add_argument("--cache-dir", help="Hugging Face cache directory")
    score.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_read_commands(sub)
    add_tree_command(sub)
    return parser


_BOOLEANS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}


def _file_keys() -> dict[str, str]:
    """The models file's one table: key → where it goes (a ModelSpec field, or the settings group that has it)."""
    from .scoring._settings import SETTING_GROUPS

    spec = {k: "ModelSpec" for k in ("name", "revision", "step", "logit_lens", "final_norm")}
    return {**spec, **{k: group.__name__ for k, group in SETTING_GROUPS.items() if k != "progress"}}


def read_model_specs(path: str, settings: Mapping[str, object] | None = None):
    """Parse a models file into :class:`~loglik_map.ModelSpec` objects (see ``loglik-map score --help``).

    ``settings`` are the command line's defaults for every model (``revision``, ``logit_lens`` and
    fields of the settings groups, flat); a line's ``key=value`` fields override them for its model.
    Each key goes to its place through one table (:func:`_file_keys`).
    """
    from .scoring import ModelSpec
    from .scoring._settings import settings_from_keys

    keys = _file_keys()
    specs = []
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.readlines()
    except UnicodeDecodeError as err:
        raise LoglikMapError(f"{path} is not a text file of models (not UTF-8 text: {err.reason} at byte "
                             f"{err.start}); list one model per line") from None
    for lineno, line in enumerate(lines, start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        where = f"{path}:{lineno}"
        given = {k: v for k, v in (settings or {}).items() if v is not None}
        for item in fields[1:]:
            key, sep, value = item.partition("=")
            if not sep:
                raise LoglikMapError(f"{where}: cannot read {item!r}; use key=value with keys {', '.join(keys)}")
            if key not in keys:
                unknown = unknown_labels_error([key], list(keys), "models-file key", "a ModelSpec field or a field "
                                               "of Loading, Windowing or Execution")
                raise LoglikMapError(f"{where}: cannot read {item!r}: {unknown}")
            given[key] = _spec_value(key, value, where)
        spec_fields = {k: v for k, v in given.items() if keys.get(k) == "ModelSpec"}
        try:
            groups = settings_from_keys({k: v for k, v in given.items() if keys.get(k) != "ModelSpec"},
                                        what="models-file key")
            specs.append(ModelSpec(fields[0], **spec_fields, **groups))  # type: ignore[arg-type]
        except LoglikMapError as err:
            raise LoglikMapError(f"{where}: {err}") from None
    if not specs:
        raise LoglikMapError(f"{path}: no models listed")
    return specs


_INTEGERS = {"step", "max_length", "stride"}


def _spec_value(key: str, value: str, where: str) -> object:
    """A models-file value as its field wants it (booleans and whole numbers parsed strictly)."""
    if key in ("logit_lens", "trust_remote_code"):
        if value.lower() not in _BOOLEANS:
            raise LoglikMapError(f"{where}: {key}={value!r}; use true or false")
        return _BOOLEANS[value.lower()]
    if key in _INTEGERS or (key == "batch_tokens" and value != "auto"):
        if not value.isdigit():
            what = "a whole number of training steps" if key == "step" else "a whole number"
            raise LoglikMapError(f"{where}: {key}={value!r}; use {what}")
        return int(value)
    return value


def _score(args: argparse.Namespace) -> int:
    from .scoring import score_models

    settings = dict(revision=args.revision, logit_lens=args.logit_lens, quantization=args.quantization,
                    dtype=args.dtype, device=args.device, cache_dir=args.cache_dir, convention=args.convention,
                    long_texts=args.long_texts, max_length=args.max_length, batch_tokens=args.batch_tokens)
    specs = read_model_specs(args.models, settings)
    texts = _load_texts(args.texts)
    summary = score_models(specs, texts, args.store, progress=not args.no_progress)
    print(summary)
    return 0 if summary.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from .demo import run_demo

            run_demo(args.out, fast=args.fast, n_texts=args.n_texts, zoo_dir=args.zoo_dir,
                     progress=not args.no_progress)
        elif args.command == "score":
            return _score(args)
        else:
            return {**COMMANDS, **TREE_COMMANDS}[args.command](args)
    except LoglikMapError as err:
        print(f"loglik-map: error: {terminal_safe(str(err))}")
        return 2
    except OSError as err:  # a file or folder the OS refused: name it, no traceback
        where = f" {err.filename!r}" if err.filename else ""
        print(f"loglik-map: error: cannot use{where}: {terminal_safe(err.strerror or str(err))}")
        return 2
    return 0
