"""`autoresearch tree`: the search tree as text, or as SVG with Graphviz."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..report import render
from ._common import open_run, run_ref_argument, write_output

NAME = "tree"
HELP = "Print the search tree as text, or write it as SVG with --svg FILE (needs Graphviz's dot)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_ref_argument(parser)
    parser.add_argument("--svg", type=Path, default=None, metavar="FILE", help="write an SVG picture here")
    parser.add_argument("--max-nodes", type=int, default=None, help="collapse the text tree beyond this many")


def run(args: argparse.Namespace) -> int:
    run_dir = open_run(args)
    tree, protocol = run_dir.load().tree, run_dir.protocol
    if args.svg is None:
        print(render.render_text_tree(tree, protocol, max_nodes=args.max_nodes, color=sys.stdout.isatty()))
        return 0
    content, warning = render.render_tree(tree, protocol, fmt="svg")
    if warning:  # no picture without dot: the text tree is the answer, and that is not a failure
        dot_file = args.svg.with_suffix(".dot")
        write_output(dot_file, render.tree_to_dot(tree, protocol))
        print(f"warning: {warning}; printed the text tree and wrote {dot_file} (render it with dot later)",
              file=sys.stderr)
        print(content)
        return 0
    write_output(args.svg, content)
    print(f"wrote {args.svg}")
    return 0
