"""`autoresearch ls`: the runs under the runs directory."""

from __future__ import annotations

import argparse
import dataclasses

from ..report.render import runs_table
from ..store.runs import list_runs
from ._common import print_json, runs_dir_option

NAME = "ls"
HELP = "List runs: state, nodes, best metric and improvement."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    runs_dir_option(parser)
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    runs = list_runs(args.runs_dir)
    if args.json:
        print_json([dataclasses.asdict(r) for r in runs])
        return 0
    if not runs:
        print(f"no runs in {args.runs_dir}")
        return 0
    print(runs_table(runs))
    return 0

