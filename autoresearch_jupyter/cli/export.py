"""`autoresearch export`: a node (the best by default) as a self-contained script."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..report import export
from ._common import open_run, run_ref_argument, write_output

NAME = "export"
HELP = ("Write the best node (or --node ID) as a clean script with a provenance header; a run with "
        "an evaluator also gets it, as NAME_evaluate.py beside the script or inside it with --with-eval.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_ref_argument(parser)
    parser.add_argument("--node", type=int, default=None, help="the node to export (default: the best)")
    parser.add_argument("-o", "--to", "--output", dest="output", type=Path, required=True, metavar="FILE",
                        help="where to write it")
    parser.add_argument("--with-eval", action="store_true",
                        help="one script: the node's code, then the run's evaluator on what it wrote")


def run(args: argparse.Namespace) -> int:
    run_dir = open_run(args)
    tree = run_dir.load().tree
    script = export.export_script(tree, run_dir.protocol, args.node, run_id=run_dir.id)
    evaluation = run_dir.settings.get("eval")
    if not evaluation:
        write_output(args.output, script)
        print(f"wrote {args.output}")
        return 0
    from ..evaluation import evaluator_script, with_evaluator

    best = tree.best(run_dir.protocol)
    node_id = args.node if args.node is not None else best.id if best is not None else 0  # export_script checked it
    metric = run_dir.protocol.metric
    if args.with_eval:
        write_output(args.output, with_evaluator(script, evaluation, run_dir.path, node_id=node_id, metric=metric))
        print(f"wrote {args.output} (the node's script, then the run's evaluator)")
        return 0
    second = args.output.with_name(f"{args.output.stem}_evaluate.py")
    write_output(args.output, script)
    write_output(second, evaluator_script(evaluation, run_dir.path, run_id=run_dir.id, node_id=node_id, metric=metric))
    print(f"wrote {args.output} and its evaluator {second} (run the script, then the evaluator, in one folder)")
    return 0
