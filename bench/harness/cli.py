"""The command-line options that the harnesses which write a Markdown section share."""

import argparse
import os

from harness import DEFAULT_SLIPWAY


def add_run_arguments(parser: argparse.ArgumentParser, kept: str) -> None:
    """--slipway, --out, --append and --keep (kept: what the kept temporary folder holds)."""
    parser.add_argument("--slipway", default=DEFAULT_SLIPWAY, help=f"the slipway binary (default {DEFAULT_SLIPWAY})")
    parser.add_argument("--out", help="write a Markdown section for bench/RESULTS.md to this file")
    parser.add_argument("--append", action="store_true", help="append to --out instead of replacing it")
    parser.add_argument("--keep", action="store_true", help=f"keep the temp dir ({kept})")


def check_binary(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Stops with a usage error (exit status 2) when --slipway is not an executable file."""
    if not (os.path.isfile(args.slipway) and os.access(args.slipway, os.X_OK)):
        parser.error(f"no slipway binary at {args.slipway}")
