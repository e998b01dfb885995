"""`autoresearch ls`: the runs under the runs directory."""

from __future__ import annotations

import argparse
import dataclasses

from pathlib import Path

from ..report.render import runs_table
from ..store.runs import find_runs_dirs, list_runs
from ._common import print_json, runs_dir_option

NAME = "ls"
ALIASES = ("list",)  # the name %autoresearch uses
HELP = "List runs: state, nodes, best metric and improvement."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    runs_dir_option(parser)
    parser.add_argument("--all", action="store_true",
                        help="also the runs of notebooks and scripts in folders below this one")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    folders = [Path(args.runs_dir)]
    if args.all:
        folders += [f for f in find_runs_dirs(".") if f.resolve() != Path(args.runs_dir).resolve()]
    runs = [r for folder in folders for r in list_runs(folder)]
    if args.json:
        print_json([dataclasses.asdict(r) for r in runs])
        return 0
    if not runs:
        print(f"no runs in {args.runs_dir}" + (" or below ." if args.all else " (--all: also below this folder)"))
        return 0
    print(runs_table(runs, folders=args.all))
    return 0

