"""`autoresearch resume`: continue an interrupted or finished run."""

from __future__ import annotations

import argparse
import sys

from ._common import non_negative_int, open_run, run_ref_argument
from ._search import execute

NAME = "resume"
HELP = "Continue a run: finished nodes are kept, interrupted ones run again, same protocol."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_ref_argument(parser)
    parser.add_argument("--steps", type=non_negative_int, default=None,
                        help="new total step budget (default: the run's own)")
    parser.add_argument("--json", action="store_true", help="print the final report as JSON")


def run(args: argparse.Namespace) -> int:
    from ..engine.search import Search

    search = Search.resume(open_run(args), steps=args.steps)
    rc = execute(search, runs_dir=args.runs_dir, as_json=args.json)
    if search.settings.proposer.llm_report and rc != 1:
        from .run import print_llm_summary

        print_llm_summary(search, stream=sys.stderr if args.json else sys.stdout)
    return rc
