"""The `autoresearch` command: one module per subcommand, one handler for domain errors.

Each subcommand module has ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``
(and optionally ``ALIASES``, other names it answers to).
Errors the user can fix come out as one line on stderr and exit code 1 (2 for bad usage);
tracebacks go to the debug log only (``--debug`` shows them).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from ..core.errors import AutoResearchError, with_options

logger = logging.getLogger("autoresearch_jupyter.cli")

COMMANDS = ("run", "ls", "show", "tree", "export", "resume", "ablate", "import_aide")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that points at --help."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[name-defined]  # noqa: F821
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="autoresearch",
        description="Tree search over a training script: propose a change, run it under a fixed "
        "budget, keep it if the metric improves, revert it if not.",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        module = importlib.import_module(f".{name}", __name__)
        cmd = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP,
                             aliases=getattr(module, "ALIASES", ()))
        module.add_arguments(cmd)
        cmd.set_defaults(handler=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="%(message)s")
    try:
        return int(args.handler(args) or 0)
    except AutoResearchError as err:
        logger.debug("error", exc_info=True)
        print(f"autoresearch: error: {with_options(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("autoresearch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
