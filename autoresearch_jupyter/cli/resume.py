"""`autoresearch resume`: continue an interrupted or finished run."""

from __future__ import annotations

import argparse
import sys

from ..core.errors import ExecutorError
from ..executors import Executor, get_executor
from ._common import non_negative_int, open_run, run_ref_argument
from ._search import execute

NAME = "resume"
HELP = "Continue a run: finished nodes are kept, interrupted ones run again, same protocol."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_ref_argument(parser)
    parser.add_argument("--steps", type=non_negative_int, default=None,
                        help="new total step budget (default: the run's own)")
    parser.add_argument("--ray-address", default=None, metavar="ADDRESS",
                        help="continue a --executor ray run on this cluster (default: the run's own setting)")
    parser.add_argument("--json", action="store_true", help="print the final report as JSON")


def run(args: argparse.Namespace) -> int:
    from ..engine.search import Search

    run_dir = open_run(args)
    search = Search.resume(run_dir, steps=args.steps, executor=_executor(run_dir.settings, args.ray_address))
    rc = execute(search, runs_dir=args.runs_dir, as_json=args.json)
    if search.settings.proposer.llm_report and rc != 1:
        from .run import print_llm_summary

        print_llm_summary(search, stream=sys.stderr if args.json else sys.stdout)
    return rc


def _executor(settings: dict, address: str | None) -> Executor | None:
    """The run's executor on another cluster; None: the one its settings describe."""
    if address is None:
        return None
    options = dict(settings.get("executor") or {})
    if options.get("name") != "ray":
        raise ExecutorError("--ray-address: this run does not use --executor ray")
    options.pop("name")
    options["address"] = address
    return get_executor("ray", **options)
