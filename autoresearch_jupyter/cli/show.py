"""`autoresearch show`: a run's report, or one node in full."""

from __future__ import annotations

import argparse
import sys

from ..report import export
from ..report.lessons import read_or_write, render_lessons_text
from ..core.errors import NodeNotFoundError
from ._common import open_run, print_json, run_ref_argument

NAME = "show"
HELP = "Show a run's report (or one node with --node); --json for every node's record."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_ref_argument(parser)
    parser.add_argument("--node", type=int, default=None, help="show this node: plan, metric, diff, output tail")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(args: argparse.Namespace) -> int:
    run_dir = open_run(args)
    replay = run_dir.load()
    tree, protocol = replay.tree, run_dir.protocol
    for warning in replay.warnings:  # stderr: --json output stays JSON
        print(f"warning: {warning}", file=sys.stderr)
    if not replay.verified and replay.events_count:
        print(f"note: run {run_dir.id} is unverified: written before run records were hash-chained",
              file=sys.stderr)
    if args.node is not None:
        if args.node not in tree:
            raise NodeNotFoundError(f"run {run_dir.id} has no node {args.node} (nodes 0-{len(tree) - 1})")
        node = tree[args.node]
        if args.json:
            print_json(node.to_dict())
            return 0
        print(export.render_node_text(node, tree, protocol))
        return 0
    best = tree.best(protocol)
    if args.json:
        print_json({
            "show_result_version": 1,
            "run": {"id": run_dir.id, "name": run_dir.name, "state": replay.state, "settings": run_dir.settings},
            "protocol": protocol.to_dict(),
            "best": best.id if best else None,
            "nodes": [n.to_dict() for n in tree],
        })
        return 0
    report = export.build_report(tree, protocol, run_id=run_dir.id, run_name=run_dir.name or "", state=replay.state)
    print(export.render_report_text(report))
    lessons = read_or_write(run_dir, state=replay.state)
    if lessons is not None and replay.tree.root is not None:
        print("\n" + render_lessons_text(lessons))
    return 0
