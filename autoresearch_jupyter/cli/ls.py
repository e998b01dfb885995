"""`autoresearch ls`: the runs under the runs directory."""

from __future__ import annotations

import argparse
import dataclasses
import time

from pathlib import Path

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
    where = "  FOLDER" if args.all else ""
    print(f"{'RUN':<28} {'NAME':<16} {'STATE':<12} {'NODES':>5}  {'METRIC':<18} {'BASELINE':>10} {'BEST':>10}  "
          f"{'CREATED':<16}{where}")
    for r in runs:
        metric = f"{r.metric or ''} {'max' if r.maximize else 'min'}" if r.metric else ""
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at)) if r.created_at else ""
        print(
            f"{r.id:<28} {(r.name or '')[:16]:<16} {r.state:<12} {r.nodes:>5}  {metric[:18]:<18} "
            f"{_fmt(r.baseline_metric):>10} {_fmt(r.best_metric):>10}  {created:<16}"
            + (f"  {Path(r.path).parent.parent}" if args.all else "")
        )
    return 0


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"
