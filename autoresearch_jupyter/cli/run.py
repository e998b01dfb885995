"""`autoresearch run`: start a search on a script."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import ScriptError
from ..protocol import Protocol
from ._common import non_negative_int, positive_float, runs_dir_option
from ._search import execute

NAME = "run"
HELP = "Run a tree search on a training script that prints its metric."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("script", type=Path, metavar="SCRIPT", help="the baseline training script")
    parser.add_argument("--metric", required=True, help="the metric the script prints as 'NAME: value'")
    direction = parser.add_mutually_exclusive_group(required=True)
    direction.add_argument("--maximize", dest="maximize", action="store_true", help="higher is better")
    direction.add_argument("--minimize", dest="minimize", action="store_true", help="lower is better")
    parser.add_argument("--steps", type=non_negative_int, default=20, help="nodes to try after the baseline (20)")
    parser.add_argument("--timeout", type=positive_float, default=60.0, help="seconds per node, enforced (60)")
    parser.add_argument("--max-time", type=positive_float, default=None, help="seconds for the whole run")
    parser.add_argument("--workers", type=non_negative_int, default=1, help="nodes run at once (1)")
    parser.add_argument("--gpus", default=None, help="GPU ids for nodes, round-robin, e.g. 0,1")
    parser.add_argument("--proposer", default="auto", help="mutate (offline literal mutations) or auto")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="the seed every node gets (0)")
    parser.add_argument("--min-delta", type=float, default=0.0, help="smallest improvement that counts (0)")
    parser.add_argument("--smoke", action="store_true", help="run each node first with AUTORESEARCH_SMOKE=1")
    parser.add_argument("--smoke-timeout", type=positive_float, default=10.0, help="seconds per smoke run (10)")
    parser.add_argument("--memory-limit", default=None, help="address-space limit per node, e.g. 4G")
    parser.add_argument("--warm", choices=("auto", "on", "off"), default="auto",
                        help="pre-import the script's imports in a warm interpreter (auto)")
    parser.add_argument("--patience", type=non_negative_int, default=3,
                        help="children in a row without improvement before backtracking (3)")
    parser.add_argument("--debug-prob", type=float, default=0.3, help="chance of debugging a failed leaf (0.3)")
    parser.add_argument("--cwd", type=Path, default=None,
                        help="run nodes in this folder (default: each in its own node folder)")
    parser.add_argument("--name", default=None, help="a unique name for the run")
    runs_dir_option(parser)
    parser.add_argument("--json", action="store_true", help="print the final report as JSON")


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
    code = read_script(args.script)
    protocol = Protocol.for_script(
        code, metric=args.metric, maximize=args.maximize, time_budget=args.timeout, seed=args.seed,
        min_delta=args.min_delta, smoke_budget=args.smoke_timeout,
    )
    executor = {"name": "local", "workers": max(1, args.workers), "warm": args.warm}
    if args.memory_limit:
        from ..executors.local import parse_size

        executor["memory_limit"] = parse_size(args.memory_limit)
    if args.gpus:
        executor["gpus"] = [g.strip() for g in args.gpus.split(",") if g.strip()]
    if not 0 <= args.debug_prob <= 1:
        raise ScriptError(f"--debug-prob must be between 0 and 1, got {args.debug_prob}")
    settings = {
        "steps": args.steps, "max_time": args.max_time, "smoke": args.smoke,
        "proposer": {"name": args.proposer}, "executor": executor,
        "policy": {"patience": max(1, args.patience), "debug_prob": args.debug_prob},
        "source_dir": str(args.script.resolve().parent),
        "cwd": str(args.cwd.resolve()) if args.cwd else None,
    }
    if args.cwd and not args.cwd.is_dir():
        raise ScriptError(f"--cwd {args.cwd}: no such folder")
    from ..search import Search

    search = Search(
        code=code, protocol=protocol, runs_dir=args.runs_dir, name=args.name, settings=settings,
        source=str(args.script),
    )
    return execute(search, runs_dir=args.runs_dir, as_json=args.json)
