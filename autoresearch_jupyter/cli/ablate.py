"""`autoresearch ablate`: find which changes on the path to a run's best node mattered."""

from __future__ import annotations

import argparse

from ._common import open_run, run_ref_argument
from ._search import execute

NAME = "ablate"
HELP = ("Leave each change on the path to the best out in turn; changes that do not matter are "
        "dropped from best.py, and the report shows change -> effect on the metric.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_ref_argument(parser)
    parser.add_argument("--json", action="store_true", help="print the final report as JSON")


def run(args: argparse.Namespace) -> int:
    from ..engine.search import Search

    search = Search.resume(open_run(args), ablate_only=True)  # AblationError: no best to ablate
    return execute(search, runs_dir=args.runs_dir, as_json=args.json)
