"""`autoresearch run`: start a search on a script."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from ..core.argtypes import add_run_options, option_values
from ..core.errors import ScriptError
from ..core.settings import RunSettings
from ._common import runs_dir_option
from ._search import execute

NAME = "run"
HELP = "Run a tree search on a training script that prints its metric."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The script, the run options of RunSettings (the same as ``%%autoresearch``'s), and the
    CLI's own: ``--name`` and ``--runs-dir`` (also on the magics), ``--json`` (headless only)."""
    parser.add_argument("script", type=Path, metavar="SCRIPT", help="the baseline training script")
    parser.add_argument("--name", default=None, help="a unique name for the run")
    runs_dir_option(parser)
    parser.add_argument("--json", action="store_true", help="print the final report as JSON")
    add_run_options(parser)


def build_settings(args: argparse.Namespace) -> RunSettings:
    """The run's settings from the parsed flags (checked: a bad value fails before anything runs)."""
    settings = RunSettings.from_options(option_values(args))
    settings.protocol.require()
    return settings.for_new_run(source_dir=str(args.script.resolve().parent))


def print_llm_summary(search: Any, *, stream: TextIO) -> None:
    """The LLM's notes on the finished run (``--llm-report``); a failure is only a warning."""
    from ..proposers import print_llm_summary as show

    show(search.tree, search.protocol, search.settings.to_dict(), stream=stream)


def read_script(path: Path) -> str:
    try:
        code = path.read_text()
    except FileNotFoundError:
        raise ScriptError(f"no such script: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ScriptError(f"cannot read {path}: {err}") from None
    try:
        compile(code, str(path), "exec")
    except SyntaxError as err:
        raise ScriptError(f"{path} is not valid Python: line {err.lineno}: {err.msg}") from None
    if not code.strip():
        raise ScriptError(f"{path} is empty")
    return code


def run(args: argparse.Namespace) -> int:
    settings = build_settings(args)
    code = read_script(args.script)
    protocol = settings.protocol_for(code)
    from ..engine.search import Search

    from ..store.runs import default_run_name

    name = args.name if args.name is not None else default_run_name(args.runs_dir, str(args.script))
    search = Search(
        code=code, protocol=protocol, runs_dir=args.runs_dir, name=name, settings=settings,
        source=str(args.script),
    )
    rc = execute(search, runs_dir=args.runs_dir, as_json=args.json)
    if settings.proposer.llm_report and rc != 1:  # a failed run's endpoint is likely still down
        print_llm_summary(search, stream=sys.stderr if args.json else sys.stdout)
    return rc
