"""The commands of the ``%autoresearch`` line magic: one parser, one small function each.

Loaded on the first ``%autoresearch`` line, not with the extension. Each command takes the magics
object (for its config, its live runs and its shell) and the parsed options; it either returns
a value for Out[] (a run, a report) or prints, and turns library errors into one-line
UsageErrors.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser

from ..core.argtypes import non_negative_int, positive_float
from ..core.errors import AutoResearchError
from .shell import split_options, user_error
from .run import NotebookRun



class AutoResearch(Protocol):
    """What the commands use of the magics object (``magics.AutoResearch``), named here so that
    this module does not import the magics module, which imports it."""

    runs: dict[str, NotebookRun]
    runs_dir: str
    shell: Any
    setup: Any

    def live_run(self, ref: str | None) -> NotebookRun | None: ...

    def launch(self, search: Any, *, background: bool, loaded: Any = None) -> NotebookRun: ...

    def wait_for(self, run: NotebookRun, timeout: float | None = None, *, stop: bool = True) -> NotebookRun: ...

    def widget_module(self) -> Any: ...

    def make_view(self, widget: Any, run: NotebookRun, search: Any, *, loaded: Any = None) -> Any: ...

    def display_view(self, view: Any) -> None: ...

PROG = "%autoresearch"
_CELL_OPTIONS = ("--metric", "--maximize", "--minimize", "--steps", "--use", "--background")


def _runs_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--runs-dir", default=None, help="where runs live (default: AutoResearch.runs_dir)")


def _run_ref(p: argparse.ArgumentParser) -> None:
    p.add_argument("run", nargs="?", default=None, metavar="RUN",
                   help="run id, name, unique id prefix, or 'latest' (the default)")
    _runs_dir(p)


def _node_id(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a node id (an integer), got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    """The ``%autoresearch`` parser; ``-h`` works on it and on every command."""
    parser = MagicArgumentParser(prog=PROG, add_help=True, description="Inspect, control and export runs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=MagicArgumentParser)

    def add(name: str, text: str, aliases: list[str] | None = None) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, add_help=True, prog=f"{PROG} {name}",
                              aliases=aliases or [])

    _runs_dir(add("list", "List the runs: state, nodes, baseline and best metric.", aliases=["ls"]))
    p = add("show", "Show a run's tree view (its report without the widget), or one node in full.")
    _run_ref(p)
    p.add_argument("--node", type=_node_id, default=None, help="show this node: plan, metric, diff, output tail")
    p = add("tree", "Draw a run's tree as SVG (needs Graphviz's dot; text otherwise).")
    _run_ref(p)
    p.add_argument("--text", action="store_true", help="the text tree, even where dot is installed")
    p = add("wait", "Wait for a background run of this kernel to end (default: the latest); "
                    "interrupting stops the waiting, not the run.")
    p.add_argument("run", nargs="?", default=None, metavar="RUN", help="run id, name or prefix")
    p.add_argument("--timeout", type=positive_float, default=None, help="give up waiting after this many seconds")
    p = add("stop", "Stop a run of this kernel: running nodes are cancelled, the journal is kept.")
    p.add_argument("run", nargs="?", default=None, metavar="RUN", help="run id, name or prefix")
    p = add("resume", "Continue a run: finished nodes are kept, interrupted ones run again, same protocol.")
    _run_ref(p)
    p.add_argument("--steps", type=non_negative_int, default=None, help="new total step budget (default: the run's own)")
    p.add_argument("--background", action="store_true", help="return at once and keep searching in a thread")
    p = add("export", "The best node (or --node ID) as a clean script, written --to FILE or put in a new --cell.")
    _run_ref(p)
    p.add_argument("--node", type=_node_id, default=None, help="the node to export (default: the best)")
    p.add_argument("-o", "--to", default=None, metavar="FILE", help="write the script here")
    p.add_argument("--cell", action="store_true",
                   help="put the node's training cell (without the notebook's setup) in a new cell below")
    p = add("apply", "Run the best node's (or --node ID's) cell in this kernel, so its model and variables "
                     "are here; refuses, changing nothing, when its setup cells or files are missing.")
    _run_ref(p)
    p.add_argument("--node", type=_node_id, default=None, help="the node to apply (default: the best)")
    p.add_argument("--with-setup", action="store_true",
                   help="also run the node's own setup cells (a kernel that has not run them)")
    p = add("report", "A run's summary, or with --notebook FILE a lineage notebook: baseline, each kept step, best.")
    _run_ref(p)
    p.add_argument("--notebook", default=None, metavar="FILE", help="write the lineage notebook here (.ipynb)")
    p = add("setup", "Show the code registered by %%autoresearch_setup cells, or forget it with --clear.")
    p.add_argument("--clear", action="store_true", help="forget every registered setup cell")
    return parser


_PARSER: argparse.ArgumentParser | None = None


def dispatch(magics: AutoResearch, line: str) -> Any:
    """Parse ``line`` and run its command; UsageError (one line) for anything the user can fix."""
    global _PARSER
    if _PARSER is None:
        _PARSER = build_parser()
    words = line.split()
    if not words:
        print(_PARSER.format_help())
        return None
    if words[0] in _CELL_OPTIONS:
        raise UsageError(
            f"{PROG} takes a command (list, show, tree, wait, stop, resume, export, apply, report, setup); "
            "to search a training cell put %%autoresearch (two %) on its first line"
        )
    command = words[0] if not words[0].startswith("-") else ""
    where = f"{PROG} {command}".strip()
    try:
        args = _PARSER.parse_args(split_options(line))
    except SystemExit:  # -h / --help printed the help
        return None
    except UsageError as err:
        raise UsageError(f"{where}: {err} (see {where} --help)") from None
    except ValueError as err:  # shlex: an unclosed quote
        raise UsageError(f"{where}: cannot read the options: {err}") from None
    if args.command is None:
        print(_PARSER.format_help())
        return None
    try:
        return COMMANDS[ALIASES.get(args.command, args.command)](magics, args)
    except AutoResearchError as err:
        raise user_error(err, f"{where}: ") from None


# ---- resolving runs ----------------------------------------------------------------------


def _runs_dir_of(magics: AutoResearch, args: argparse.Namespace) -> str:
    return getattr(args, "runs_dir", None) or magics.runs_dir


def open_run(magics: AutoResearch, args: argparse.Namespace) -> NotebookRun:
    """The run ``args.run`` names: the live object when it runs in this kernel, else from disk."""
    from ..store.runs import resolve_run

    ref = args.run or "latest"
    run_dir = resolve_run(_runs_dir_of(magics, args), ref)
    live = magics.runs.get(run_dir.id)
    return live if live is not None else NotebookRun.open(run_dir)


def _live(magics: AutoResearch, args: argparse.Namespace, verb: str) -> NotebookRun:
    run = magics.live_run(args.run)
    if run is not None:
        return run
    if not magics.runs:
        raise UsageError(f"{PROG} {verb}: no run was started in this kernel")
    known = ", ".join(magics.runs)
    raise UsageError(f"{PROG} {verb}: no run {args.run!r} was started in this kernel (runs here: {known})")


# ---- the commands ------------------------------------------------------------------------


def cmd_list(magics: AutoResearch, args: argparse.Namespace) -> None:
    from ..report.render import runs_table
    from ..store.runs import list_runs

    runs_dir = _runs_dir_of(magics, args)
    runs = list_runs(runs_dir)
    if not runs:
        print(f"no runs in {runs_dir}")
        return
    live = {run_id for run_id, run in magics.runs.items() if run.running}
    print(runs_table(runs, running=live))


def cmd_apply(magics: AutoResearch, args: argparse.Namespace) -> None:
    from .apply import apply_node

    run = open_run(magics, args)
    apply_node(magics.shell, run, args.node, setup_code=magics.setup.code, with_setup=args.with_setup)


def cmd_show(magics: AutoResearch, args: argparse.Namespace) -> None:
    from ..report import export
    from ..core.errors import NodeNotFoundError

    run = open_run(magics, args)
    tree = run.tree
    if args.node is not None:
        if args.node not in tree:
            raise NodeNotFoundError(f"run {run.id} has no node {args.node} (nodes 0-{len(tree) - 1})")
        print(export.render_node_text(tree[args.node], tree, run.protocol))
        return
    widget = magics.widget_module()
    if widget is None:
        print(run.report().text)
        return
    search = run.search if run.running else None  # a live run gets a live view
    magics.display_view(magics.make_view(widget, run, search, loaded=tree))


def cmd_tree(magics: AutoResearch, args: argparse.Namespace) -> None:
    from ..report import render

    run = open_run(magics, args)
    if args.text:
        print(render.render_text_tree(run.tree, run.protocol))
        return
    content, warning = render.render_tree(run.tree, run.protocol, fmt="svg")
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
        print(content)
        return
    from IPython.display import SVG, display

    display(SVG(content))


def cmd_wait(magics: AutoResearch, args: argparse.Namespace) -> None:
    run = _live(magics, args, "wait")
    magics.wait_for(run, args.timeout, stop=False)  # the run is a background one: it keeps going
    print(_summary(run))


def cmd_stop(magics: AutoResearch, args: argparse.Namespace) -> None:
    run = _live(magics, args, "stop")
    if not run.running:
        print(f"run {run.id} is not running ({run.state})")
        return
    run.stop()
    magics.wait_for(run)
    print(f"{_summary(run)}; continue it with: %autoresearch resume {run.id}")


def _summary(run: NotebookRun) -> str:
    best = run.best
    text = f"run {run.id}: {run.state}, {len(run.tree)} nodes"
    if best is not None:
        text += f", best {run.protocol.metric} {best.metric:.6g} (node {best.id})"
    if run.reason and run.state != "running":
        text += f" - {run.reason}"
    return text


def cmd_resume(magics: AutoResearch, args: argparse.Namespace) -> NotebookRun:
    from ..store.runs import resolve_run
    from ..engine.search import Search

    run_dir = resolve_run(_runs_dir_of(magics, args), args.run or "latest")
    live = magics.runs.get(run_dir.id)
    if live is not None and live.running:
        raise UsageError(f"{PROG} resume: run {run_dir.id} is still running here; %autoresearch stop it first")
    search = Search.resume(run_dir, steps=args.steps)  # refuses a run another process is searching
    return magics.launch(search, background=args.background, loaded=search.tree)


def cmd_export(magics: AutoResearch, args: argparse.Namespace) -> None:
    run = open_run(magics, args)
    if args.to is None and not args.cell:
        print(run.script(args.node))
        return
    if args.to is not None:
        path = Path(args.to)
        try:
            run.export(path, args.node)
        except OSError as err:
            raise UsageError(f"{PROG} export: cannot write {path}: {err.strerror}") from None
        print(f"wrote {path}")
    if args.cell:
        code = run.cell(args.node)
        magics.shell.set_next_input(code, replace=False)
        # a front end without set_next_input (nbclient, a console) drops the cell without a word
        which = f"node {args.node}" if args.node is not None else "the best node"
        print(f"{which}'s cell ({len(code.splitlines())} lines) goes in a new cell below; where none "
              f"appears (nbclient, a console), use --to FILE or print(autoresearch_run.cell())")


def cmd_report(magics: AutoResearch, args: argparse.Namespace) -> Any:
    run = open_run(magics, args)
    if args.notebook is None:
        return run.report()
    from .lineage import write_lineage_notebook

    path = Path(args.notebook)
    try:
        write_lineage_notebook(run, path)
    except OSError as err:
        raise UsageError(f"{PROG} report: cannot write {path}: {err.strerror}") from None
    print(f"wrote {path}")
    return None


def cmd_setup(magics: AutoResearch, args: argparse.Namespace) -> None:
    if args.clear:
        magics.setup.clear()
        print("forgot the registered setup; new runs start from their cell alone")
        return
    if not len(magics.setup):
        print("no setup registered (mark a cell with %%autoresearch_setup)")
        return
    print(f"# {len(magics.setup)} setup cell(s), frozen at the top of every new run's scripts\n")
    print(magics.setup.code)


COMMANDS: dict[str, Callable[[Any, argparse.Namespace], Any]] = {
    "list": cmd_list, "show": cmd_show, "tree": cmd_tree, "wait": cmd_wait, "stop": cmd_stop,
    "resume": cmd_resume, "export": cmd_export, "apply": cmd_apply, "report": cmd_report, "setup": cmd_setup,
}
ALIASES = {"ls": "list"}  # the name `autoresearch` uses
