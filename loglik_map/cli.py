"""Command-line interface: ``loglik-map`` (also ``python -m loglik_map``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .errors import LoglikMapError

__all__ = ["main"]


def _build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="loglik-map", description="Compare language models as probability distributions.")
    parser.add_argument("--version", action="version", version=f"loglik_map {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="a short worked run printing a KL table with standard errors")
    demo.add_argument("--n-texts", type=int, default=2000, help="number of generated texts (default 2000)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the generated example (default 0)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _build_parser().parse_args(argv)
    try:
        if args.command == "demo":
            from .demo import run_demo

            run_demo(n_texts=args.n_texts, random_state=args.seed)
    except LoglikMapError as err:
        print(f"loglik-map: error: {err}")
        return 2
    return 0
