"""`autoresearch import-aide`: turn an AIDE journal.json into a run our tools can show."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import runs_dir_option

NAME = "import-aide"
HELP = "Import an AIDE journal.json as a run (inspect it with show, tree and export)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("journal", type=Path, metavar="JOURNAL", help="AIDE's journal.json")
    parser.add_argument("--metric", default="metric", help="the metric's name (AIDE does not record it)")
    parser.add_argument("--name", default=None, help="a unique name for the imported run")
    runs_dir_option(parser)


def run(args: argparse.Namespace) -> int:
    from ..importers.aide import import_aide

    run_dir = import_aide(args.journal, args.runs_dir, name=args.name, metric=args.metric)
    print(f"imported {args.journal} as run {run_dir.id} ({run_dir.path})")
    return 0
