"""`autoresearch export`: a node (the best by default) as a self-contained script."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..report import export
from ._common import open_run, run_ref_argument, write_output

NAME = "export"
HELP = "Write the best node (or --node ID) as a clean script with a provenance header."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_ref_argument(parser)
    parser.add_argument("--node", type=int, default=None, help="the node to export (default: the best)")
    parser.add_argument("-o", "--to", "--output", dest="output", type=Path, required=True, metavar="FILE",
                        help="where to write it")


def run(args: argparse.Namespace) -> int:
    run_dir = open_run(args)
    tree = run_dir.load().tree
    script = export.export_script(tree, run_dir.protocol, args.node, run_id=run_dir.id)
    write_output(args.output, script)
    print(f"wrote {args.output}")
    return 0
