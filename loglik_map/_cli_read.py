"""The command-line subcommands that read results back: ``info``, ``kl``, ``map``, ``scale``, ``atlas``.

Each reads a run store (``loglik-map score``, :func:`loglik_map.score_models`) or a saved matrix
(``.nc``/``.zarr``) with :func:`loglik_map.open_matrix`, clips it as the paper does (``--clip``)
and calls the API: ``kl`` prints :meth:`ModelMap.summary`, ``scale`` :func:`kl_scale`, ``map``
saves :func:`~loglik_map.plotting.plot_map` (or :func:`~loglik_map.plotting.plot_kl_matrix`), ``atlas``
writes :func:`~loglik_map.plotting.atlas` as one self-contained HTML file (or
:func:`~loglik_map.plotting.atlas_table` as Parquet).
Tables are printed as text, CSV or JSON (``--format``); CSV and JSON keep every digit.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._cli_output import check_out, csv_safe, json_safe, table_safe, terminal_safe, write_output
from ._labels import unknown_labels_error
from .core import LogLikelihoodMatrix, ModelMap
from .errors import LoglikMapError
from .io import is_store, open_matrix, store_failures

__all__ = ["COMMANDS", "add_read_commands", "cli_settings", "load_map"]

FORMATS = ("table", "csv", "json")
#: Largest --clip: clipping a larger share of the entries flattens the differences between models
#: (at 0.5 half of every row is one value; near 1 every KL is 0). The paper clips at 0.02.
MAX_CLIP = 0.25


def _clip_quantile(text: str) -> float:
    """An argparse type: the --clip quantile, a number in [0, MAX_CLIP]."""
    try:
        q = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number (a quantile such as 0.02), got {text!r}") from None
    if not math.isfinite(q) or q < 0:
        raise argparse.ArgumentTypeError(f"must be a quantile between 0 (no clip) and {MAX_CLIP}, got {text!r}")
    if q > MAX_CLIP:
        raise argparse.ArgumentTypeError(
            f"{text} would clip {q:.0%} of all entries to one value, which erases most differences between models "
            f"(near 1 every KL becomes 0); the paper clips at 0.02. Use a quantile of at most {MAX_CLIP}")
    return q


# ---------------------------------------------------------------------- arguments
def _source(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("source", help="a run store (loglik-map score --store) or a saved matrix (.nc, .zarr)")


def _map_options(sub: argparse.ArgumentParser) -> None:
    _source(sub)
    sub.add_argument("--clip", type=_clip_quantile, default=0.02, metavar="Q",
                     help="clip every entry below the Q quantile first, as the paper does (default 0.02; 0: no clip; "
                     "a matrix saved clipped is used as it is)")
    sub.add_argument("--models", nargs="+", metavar="NAME",
                     help="only these models (selected after clipping the whole matrix)")
    sub.add_argument("--unit", default="bits/byte", choices=["bits/byte", "nats"], help="unit of KL (default bits/byte)")
    sub.add_argument("--allow-truncated", action="store_true",
                     help="map rows whose texts lost tokens to truncation anyway (their KLs are biased)")


def _table_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--format", default="table", choices=FORMATS, help="table (default), csv or json")
    sub.add_argument("--out", metavar="FILE", help="write the table to FILE instead of printing it (never the input)")
    sub.add_argument("--overwrite", action="store_true", help="replace --out if it exists")


def add_read_commands(sub: Any) -> None:
    """Add ``info``, ``kl``, ``map``, ``scale`` and ``atlas`` to the ``loglik-map`` subparsers."""
    info = sub.add_parser("info", help="what a run store or saved matrix holds",
                          description="Sizes, models, coordinates and provenance of a matrix; for a run store "
                          "also which models finished, failed (with their errors) or are still to score.")
    _source(info)
    info.add_argument("--format", default="table", choices=("table", "json"), help="table (default) or json")
    kl = sub.add_parser("kl", help="KL ± SE and a confidence interval for model pairs",
                        description="A row per model pair (all pairs by default): KL, SE, confidence interval "
                        "and unit, as ModelMap.summary() gives them.")
    _map_options(kl)
    kl.add_argument("--pair", nargs=2, action="append", metavar=("A", "B"), help="a pair to report (repeatable)")
    kl.add_argument("--confidence-level", type=float, default=0.95, help="interval coverage (default 0.95)")
    _table_options(kl)
    mp = sub.add_parser("map", help="save a figure of the model map (or its KL matrix)",
                        description="PCA (or t-SNE) scatter of the models, or with --heatmap the KL matrix in "
                        "clustering order, saved to --out.")
    _map_options(mp)
    mp.add_argument("--out", required=True, metavar="FILE", help="figure file (.png, .pdf, .svg)")
    mp.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    mp.add_argument("--heatmap", action="store_true", help="draw the KL matrix instead of the scatter")
    mp.add_argument("--method", default="pca", choices=["pca", "tsne"], help="embedding of the scatter")
    mp.add_argument("--color", metavar="COORD", help="model coordinate to colour by (e.g. step, quantization)")
    mp.add_argument("--labels", action="store_true", help="write every model's name beside its point")
    mp.add_argument("--label", action="append", metavar="NAME", help="label this model (repeatable)")
    sc = sub.add_parser("scale", help="the KL scale of the settings the store's coordinates define",
                        description="Median, mean and SD of KL per setting, beside the paper's Table 1a where the "
                        "setting is the paper's. Settings are made from the model coordinates the scorers record: "
                        + "; ".join(f"{name} (needs {', '.join(needs) or 'nothing'})" for name, needs, _ in _SETTINGS)
                        + " — BY is the --by coordinate.")
    _map_options(sc)
    sc.add_argument("--by", metavar="COORD",
                    help="coordinate whose equal values form one training run or model (default source_model; "
                    "a coordinate given here must exist)")
    sc.add_argument("--random-pairs", type=int, default=200, metavar="N", help="pairs of the random setting (default 200)")
    _table_options(sc)
    at = sub.add_parser("atlas", help="write an interactive atlas of the map (one HTML file, works offline)",
                        description="One self-contained HTML file (plotly.js included): hover a model for its "
                        "coordinates and KL ± SE to --pin, find it by name, click it for its exact k nearest models "
                        "on the full map (grey where a paired test cannot tell them from the nearest); lines for "
                        "checkpoint paths, logit-lens threads and lineage. An --out ending in .parquet writes the "
                        "same numbers as a table instead (for maps beyond a browser: Embedding Atlas, datamapplot).")
    _map_options(at)
    at.add_argument("--out", required=True, metavar="FILE", help="atlas.html, or a .parquet table")
    at.add_argument("--k", type=int, default=10, help="nearest models shown per model (default 10)")
    at.add_argument("--pin", metavar="NAME", help="model whose KL ± SE to every model the hover shows")
    at.add_argument("--color", metavar="COORD", help="initial colour: a model coordinate (the page has a menu)")
    at.add_argument("--method", default="pca", choices=["pca", "tsne"], help="2-D embedding (default pca)")
    at.add_argument("--edges", nargs="+", default=["auto"], choices=["auto", "none", "checkpoints", "layers", "lineage"],
                    help="lines to draw (default auto: every kind the coordinates allow)")
    at.add_argument("--run", metavar="COORD", help="coordinate grouping checkpoints into runs (default run, else "
                    "source_model)")


# ---------------------------------------------------------------------- shared steps
def load_map(args: argparse.Namespace) -> ModelMap:
    """The map a ``kl``/``map``/``scale`` command works on: opened, restricted to ``--models``, clipped."""
    matrix = open_matrix(args.source)
    done = matrix.attrs.get("clip_lower_quantile")
    if done is None and args.clip > 0:
        matrix = matrix.clip(args.clip)
    elif done is not None and args.clip > 0 and not math.isclose(float(done), args.clip):
        raise LoglikMapError(f"{args.source} was saved clipped at the {float(done):g} quantile; pass --clip {float(done):g} "
                             "(or --clip 0) to use it as it is")
    if args.models:  # after clipping: a pair's numbers do not depend on which other models are listed
        matrix = matrix.sel(model=list(args.models))
    return ModelMap(matrix, allow_truncated=args.allow_truncated)


def out_path(args: argparse.Namespace) -> Path | None:
    """``--out`` checked before any work: not the input, not an existing file without --overwrite."""
    return None if args.out is None else check_out(args.out, args.source, args.overwrite)


def write_table(df: pd.DataFrame, fmt: str, out: Path | None) -> None:
    """Print (or write to ``out``) a table as aligned text, CSV or JSON records (every digit kept).

    Control characters in labels are escaped; CSV cells that a spreadsheet would run as a formula
    get a leading ``'``.
    """
    if fmt == "table":
        with pd.option_context("display.width", 200, "display.max_columns", None, "display.max_colwidth", 60):
            text = table_safe(df).to_string(index=False) + "\n"
    elif fmt == "csv":
        text = csv_safe(df).to_csv(index=False)
    else:
        records = [{k: _plain(v) for k, v in row.items()} for row in df.to_dict(orient="records")]
        text = json_safe(json.dumps(records, indent=1, ensure_ascii=False)) + "\n"
    if out is not None:
        write_output(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    else:
        sys.stdout.write(text)


def _plain(value: Any) -> Any:
    """A JSON value: numpy scalars as Python ones, NaN as null."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ---------------------------------------------------------------------- the KL-scale settings
def _has(mm: ModelMap, *names: str) -> bool:
    coords = mm.points.coords
    return all(n in coords and coords[n].dims == ("model",) for n in names)


def _finite(mm: ModelMap, name: str) -> bool:
    values = mm.points[name].values
    return values.dtype.kind in "iuf" and bool(np.isfinite(values.astype(float)).any())


#: (setting, model coordinates it needs — "BY" is the --by coordinate —, rule maker(args)). Settings named
#: like a row of the paper's Table 1a measure what that row measures; the others are named differently, so
#: no paper value is set beside them.
_SETTINGS: list[tuple[str, tuple[str, ...], Callable[[argparse.Namespace], Any]]] = [
    ("consecutive checkpoints", ("step", "BY"), lambda a: _scale().consecutive_checkpoints("step", by=a.by)),
    ("random seeds", ("seed", "size", "step"), lambda a: _scale().differing_only_in("seed", by=("size", "step"))),
    ("8-bit quantization", ("quantization", "revision", "BY"),
     lambda a: _scale().original_vs("quantization", "none", "8bit", by=(a.by, "revision"))),
    ("4-bit quantization", ("quantization", "revision", "BY"),
     lambda a: _scale().original_vs("quantization", "none", "4bit-nf4", by=(a.by, "revision"))),
    ("fine-tuned vs base", ("base_model",), lambda a: _scale().child_vs_parent("base_model")),
    ("adjacent layers", ("layer", "BY"), lambda a: _scale().adjacent_layers("layer", by=a.by)),
    ("random pairs of all models", (), lambda a: _scale().random_pairs(a.random_pairs)),
]


def _scale():
    from . import scale

    return scale


def cli_settings(mm: ModelMap, args: argparse.Namespace) -> dict[str, Any]:
    """The settings of ``loglik-map scale`` whose coordinates the map has (checkpoints and layers: finite ones)."""
    out = {}
    for name, needs, make in _SETTINGS:
        coords = [args.by if n == "BY" else n for n in needs]
        if _has(mm, *coords) and all(_finite(mm, n) for n in coords if n in ("step", "layer")):
            out[name] = make(args)
    return out


# ---------------------------------------------------------------------- the commands
def _info(args: argparse.Namespace) -> int:
    facts: dict[str, Any] = {"source": args.source}
    store = is_store(args.source)
    matrix: LogLikelihoodMatrix | None = None
    try:
        matrix = open_matrix(args.source)
    except LoglikMapError as err:
        if not store:
            raise
        facts["matrix"] = str(err)
    if store:
        from .io._runstore.layout import read_manifest, row_path

        failures = store_failures(args.source)
        finished = [str(m) for m in matrix.models] if matrix is not None else []
        planned = [str(m) for m in read_manifest(Path(args.source))["models"]]
        damaged = set(matrix.attrs.get("damaged_models_skipped", [])) if matrix is not None else set()
        # a planned label is done when its rows are stored: a logit-lens spec's rows are named by layer
        done = {m for m in planned if row_path(Path(args.source), m).exists() and m not in damaged}
        facts.update(kind="run store", finished=finished,
                     failed={m: str(rec.get("error", ""))[:300] for m, rec in failures.items()},
                     pending=[m for m in planned if m not in done and m not in failures])
    else:
        facts["kind"] = "saved matrix"
    if matrix is not None:
        facts.update(shape=list(matrix.shape), units="nats", attrs={k: _plain(v) for k, v in matrix.attrs.items()
                                                                     if not isinstance(v, (list, dict))})
    if args.format == "json":
        print(json_safe(json.dumps(facts, indent=1, ensure_ascii=False, default=str)))
        return 0
    lines = [f"{args.source}: {facts['kind']}"]
    if matrix is not None:
        lines.append(repr(matrix))
    if store:
        lines.append(f"finished: {len(facts['finished'])}, failed: {len(facts['failed'])}, "
                     f"pending: {len(facts['pending'])}")
        lines += [f"  failed {model}: {error}" for model, error in facts["failed"].items()]
        if facts["pending"]:
            lines.append(f"  pending: {', '.join(facts['pending'][:10])}" + (" …" if len(facts["pending"]) > 10 else ""))
    print(terminal_safe("\n".join(lines)))
    return 0


def _kl(args: argparse.Namespace) -> int:
    out = out_path(args)
    mm = load_map(args)
    table = mm.summary([tuple(p) for p in args.pair] if args.pair else None, unit=args.unit,
                       confidence_level=args.confidence_level)
    write_table(table, args.format, out)
    return 0


def _figure_format(out: Path) -> str:
    """The figure format of ``--out``'s suffix, or an error listing those matplotlib can write."""
    from matplotlib.figure import Figure

    supported = Figure().canvas.get_supported_filetypes()
    fmt = out.suffix.lower().lstrip(".")
    if fmt not in supported:
        raise LoglikMapError(f"--out {str(out)!r}: cannot save a figure as {out.suffix or 'a file without a suffix'!r}; "
                             f"use one of {', '.join('.' + f for f in sorted(supported))}")
    return fmt


def _map(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    from . import plotting

    out = out_path(args)
    assert out is not None  # --out is required
    fmt = _figure_format(out)
    mm = load_map(args)
    if args.heatmap:
        ax = plotting.plot_kl_matrix(mm, unit=args.unit)
    else:
        labels = True if args.labels else (args.label or None)
        ax = plotting.plot_map(mm, method=args.method, color=args.color, labels=labels)
    write_output(out, lambda tmp: ax.figure.savefig(tmp, dpi=150, format=fmt))
    print(terminal_safe(f"saved {args.out} ({len(mm)} models, {mm.n_texts} texts)"))
    return 0


def _scale_command(args: argparse.Namespace) -> int:
    out = out_path(args)
    mm = load_map(args)
    model_coords = [str(n) for n, c in mm.points.coords.items() if c.dims == ("model",) and n != "model"]
    if args.by is None:  # the default: settings that need it are left out if the map lacks it
        args.by = "source_model"
    elif args.by not in model_coords:
        raise unknown_labels_error([args.by], model_coords, "model coordinate", "on the map (--by)")
    settings = cli_settings(mm, args)
    table = _scale().kl_scale(mm, settings, unit=args.unit).reset_index()
    empty = table.setting[table["count"] == 0].tolist()
    table = table[table["count"] > 0]
    if args.format == "table":
        table = table[[c for c in ("setting", "count", "median", "mean", "sd", "median_se", "paper_median")
                       if c in table]]
    write_table(table, args.format, out)
    if empty and args.format == "table" and out is None:
        print(f"(no pairs: {', '.join(map(str, empty))})")
    return 0


def _atlas(args: argparse.Namespace) -> int:
    from . import plotting

    mm = load_map(args)
    options = {"k": args.k, "pin": args.pin, "embedding": args.method, "unit": args.unit, "run": args.run}
    if args.out.endswith(".parquet"):
        path = plotting.atlas_table(mm, args.out, **options)
    else:
        edges = "auto" if args.edges == ["auto"] else None if args.edges == ["none"] else args.edges
        fig = plotting.atlas(mm, color=args.color, edges=edges, **options)
        fig.write_html(args.out)
        path = Path(args.out)
    print(f"saved {path} ({len(mm)} models, {mm.n_texts} texts, {path.stat().st_size / 2**20:.1f} MiB)")
    return 0


#: Subcommand → function; each returns the exit status.
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"info": _info, "kl": _kl, "map": _map,
                                                           "scale": _scale_command, "atlas": _atlas}
