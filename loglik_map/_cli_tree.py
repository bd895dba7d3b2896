"""The ``loglik-map tree`` subcommand: the clustering tree of a map with AU/BP p-values of its clades.

Reads a run store or saved matrix as ``kl``/``map`` do (:func:`loglik_map._cli_read.load_map`),
runs :meth:`ModelMap.tree` and prints the clades table (``--format``); optionally saves the
figure (:func:`loglik_map.plotting.plot_tree`), the Newick text, and checks the model cards'
lineages (``--lineage``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import pandas as pd

from ._cli_output import check_out, terminal_safe, write_output
from ._cli_read import FORMATS, load_map, out_path, write_table

__all__ = ["TREE_COMMANDS", "add_tree_command"]


def _scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def add_tree_command(sub: Any) -> None:
    """Add ``tree`` to the ``loglik-map`` subparsers."""
    tree = sub.add_parser(
        "tree", help="clustering tree of the models with AU/BP p-values (multiscale bootstrap over texts)",
        description="Hierarchical clustering of the map's models; every clade gets the approximately unbiased "
        "(AU) and bootstrap (BP) p-values of pvclust's multiscale bootstrap, with the texts resampled. A row per "
        "clade (the root last); AU ≥ 0.95 means the texts support the group.")
    tree.add_argument("source", help="a run store (loglik-map score --store) or a saved matrix (.nc, .zarr)")
    tree.add_argument("--clip", type=float, default=0.02, metavar="Q",
                      help="clip every entry below the Q quantile first, as the paper does (default 0.02; 0: no clip)")
    tree.add_argument("--models", nargs="+", metavar="NAME", help="only these models (selected after clipping)")
    tree.add_argument("--allow-truncated", action="store_true",
                      help="map rows whose texts lost tokens to truncation anyway (their KLs are biased)")
    tree.add_argument("--linkage", default="average", choices=["average", "complete", "single", "weighted", "ward"],
                      help="linkage method (default average = UPGMA)")
    tree.add_argument("--metric", default="kl", choices=["kl", "euclidean"],
                      help="cluster on KL (default) or on the map distance √KL")
    tree.add_argument("--n-boot", type=int, default=1000, metavar="B", help="replicates per scale (default 1000)")
    tree.add_argument("--scales", type=_scale, nargs="+", metavar="R",
                      help="replicate sizes as fractions of the texts (default 0.5 0.6 … 1.4)")
    tree.add_argument("--seed", type=int, help="seed of the replicates")
    tree.add_argument("--level", type=float, default=0.05, help="significance level: clades with AU ≥ 1 − level are supported")
    tree.add_argument("--significant", action="store_true", help="list only the supported clades")
    tree.add_argument("--lineage", action="store_true",
                      help="also test the lineages of the models' cards (base_model; local folders or hub ids)")
    tree.add_argument("--plot", metavar="FILE", help="save the dendrogram with AU/BP (.png, .pdf, .svg)")
    tree.add_argument("--newick", metavar="FILE", help="write the tree in Newick format with AU as node labels")
    tree.add_argument("--no-progress", action="store_true", help="no progress bar")
    tree.add_argument("--format", default="table", choices=FORMATS, help="table (default), csv or json")
    tree.add_argument("--out", metavar="FILE", help="write the table to FILE instead of printing it")
    tree.add_argument("--overwrite", action="store_true", help="replace --out, --plot and --newick if they exist")


#: Width of the members column of the text table (CSV and JSON keep every name).
_MEMBERS_WIDTH = 90


def _table(clades: pd.DataFrame, fmt: str) -> pd.DataFrame:
    out = clades.reset_index()
    out["members"] = out["members"].map(", ".join)
    if fmt == "table":  # rounded, and the names left-aligned (padded to one width), long lists cut
        out = out[["clade", "n_members", "height", "au", "bp", "au_se", "si", "members"]]
        out["height"] = out["height"].map(lambda h: f"{h:.4g}")
        out[["au", "bp", "au_se", "si"]] = out[["au", "bp", "au_se", "si"]].round(3)
        names = out["members"].map(lambda m: m if len(m) <= _MEMBERS_WIDTH else m[:_MEMBERS_WIDTH - 1] + "…")
        out["members"] = names.str.ljust(int(names.str.len().max()))
    return out


def _tree(args: argparse.Namespace) -> int:
    out = out_path(args)  # every output checked before the bootstrap runs
    plot = check_out(args.plot, args.source, args.overwrite) if args.plot else None
    newick = check_out(args.newick, args.source, args.overwrite) if args.newick else None
    mm = load_map(args)
    clades = None
    if args.lineage:
        from .io import lineage

        clades = lineage([str(m) for m in mm.models])
    options: dict[str, Any] = {"scales": tuple(args.scales)} if args.scales else {}
    tree = mm.tree(args.linkage, args.metric, n_boot=args.n_boot, seed=args.seed, clades=clades,
                   progress=False if args.no_progress else None, **options)
    table = tree.significant(args.level) if args.significant else tree.clades
    write_table(_table(table, args.format), args.format, out)
    if args.lineage:
        check = tree.check_lineage(level=args.level).reset_index()
        check["members"] = check["members"].map(", ".join)
        print()
        write_table(check, "table", None)
    if newick is not None:
        text = tree.to_newick() + "\n"
        write_output(newick, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        from .plotting import plot_tree

        figure = plot_tree(tree, level=args.level).figure
        write_output(plot, lambda tmp: figure.savefig(tmp, dpi=150, format=plot.suffix.lstrip(".") or "png"))
        print(terminal_safe(f"saved {args.plot}"))
    return 0


#: Subcommand → function; returns the exit status.
TREE_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {"tree": _tree}
