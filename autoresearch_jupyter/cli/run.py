"""`autoresearch run`: start a search on a script."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from ..core.errors import ScriptError
from ..engine.options import build_protocol, build_settings
from ..core.argtypes import non_negative_float
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
    add_executor_arguments(parser)
    parser.add_argument("--proposer", default="auto", choices=("auto", "mutate", "llm"),
                        help="mutate (offline literal mutations), llm (any OpenAI-compatible model), or auto: "
                        "llm when a model or base URL is configured, mutate otherwise (auto)")
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
    add_llm_arguments(parser)


def add_executor_arguments(parser: argparse.ArgumentParser) -> None:
    """Where nodes run: this machine, or a Ray cluster (the ``ray`` extra)."""
    group = parser.add_argument_group("executor (--executor ray runs nodes on a Ray cluster)")
    group.add_argument("--executor", choices=("local", "ray"), default="local",
                       help="local: subprocesses here; ray: tasks on a Ray cluster (local)")
    group.add_argument("--ray-address", default=None, metavar="ADDRESS",
                       help="HOST:PORT, ray://HOST:PORT or auto (default: $RAY_ADDRESS, else a cluster running "
                       "here, else a Ray instance started for the run)")
    group.add_argument("--cpus-per-node", type=non_negative_float, default=None,
                       help="CPUs each node asks Ray for, fractions allowed (1)")
    group.add_argument("--gpus-per-node", type=non_negative_float, default=None,
                       help="GPUs each node asks Ray for, e.g. 1 or 0.5; Ray sets CUDA_VISIBLE_DEVICES (0)")


def add_llm_arguments(parser: argparse.ArgumentParser) -> None:
    """The LLM proposer's flags; each dest is a key of settings["proposer"] (see LLMSettings)."""
    llm = parser.add_argument_group("LLM proposer (--proposer llm or auto)")
    llm.add_argument("--model", default=None, help="model name, sent as given (default: $OPENAI_MODEL)")
    llm.add_argument("--base-url", default=None,
                     help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1 (default: $OPENAI_BASE_URL)")
    llm.add_argument("--temperature", type=float, default=None, help="sampling temperature (the model's default)")
    llm.add_argument("--goal", default="", help="what you are after, in words; goes into every prompt")
    llm.add_argument("--api-key-env", default=None, metavar="NAME",
                     help="environment variable holding the API key (OPENAI_API_KEY); the key is never stored")
    llm.add_argument("--max-prompt-tokens", type=non_negative_int, default=None,
                     help="cap on each prompt's estimated tokens; the memory is cut to fit (6000)")
    llm.add_argument("--max-tokens", type=non_negative_int, default=None,
                     help="token budget of the run (prompt + completion); the run ends when it is spent")
    llm.add_argument("--max-cost", type=float, default=None, help="cost budget of the run (needs --price-in/out)")
    llm.add_argument("--price-in", type=float, default=None, help="price per 1M prompt tokens")
    llm.add_argument("--price-out", type=float, default=None, help="price per 1M completion tokens")
    llm.add_argument("--llm-timeout", type=positive_float, default=None, help="seconds to wait for an answer (120)")
    llm.add_argument("--llm-retries", type=non_negative_int, default=None,
                     help="retries with backoff on timeouts, 429 and 5xx before the run stops (3)")
    llm.add_argument("--hybrid-after", type=float, default=None, metavar="FRACTION",
                     help="after this fraction of the budget, fine-tuning of literals goes to mutate (off)")
    llm.add_argument("--llm-report", action="store_true",
                     help="at the end, print an LLM-written summary of what worked and what did not")


LLM_KEYS = ("model", "base_url", "temperature", "api_key_env", "max_prompt_tokens", "max_tokens", "max_cost",
            "price_in", "price_out", "llm_timeout", "llm_retries", "hybrid_after")


def proposer_settings(args: argparse.Namespace) -> dict[str, Any]:
    """settings["proposer"]: the name and the LLM flags that were given (defaults live in LLMSettings)."""
    out: dict[str, Any] = {"name": args.proposer}
    if args.proposer == "mutate":
        return out
    out.update({k: getattr(args, k) for k in LLM_KEYS if getattr(args, k) is not None})
    if args.llm_report:
        out["llm_report"] = True
    from ..proposers._config import LLMSettings

    LLMSettings.from_settings(out)  # bad values fail here, before a run folder exists
    return out


def print_llm_summary(search: Any, *, stream: TextIO) -> None:
    """The LLM's notes on the finished run; a failure is a warning, never an error of the run."""
    from ..proposers import write_llm_summary

    try:
        text = write_llm_summary(search.tree, search.protocol, search.settings)
    except Exception as err:  # noqa: BLE001 - optional output must not fail the run
        print(f"autoresearch: warning: no LLM summary: {err}", file=sys.stderr)
        return
    if text:
        print(f"\n## What worked and what did not (written by the model)\n{text}", file=stream)


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
    protocol = build_protocol(
        code, metric=args.metric, maximize=args.maximize, timeout=args.timeout, seed=args.seed,
        min_delta=args.min_delta, smoke_timeout=args.smoke_timeout,
    )
    settings = build_settings(  # shared with the notebook magics, so both start the same search
        steps=args.steps, max_time=args.max_time, smoke=args.smoke, proposer=proposer_settings(args),
        goal=args.goal, workers=args.workers, warm=args.warm, memory_limit=args.memory_limit, gpus=args.gpus,
        patience=args.patience, debug_prob=args.debug_prob, source_dir=args.script.resolve().parent, cwd=args.cwd,
        executor=args.executor, ray_address=args.ray_address, cpus_per_node=args.cpus_per_node,
        gpus_per_node=args.gpus_per_node,
    )
    from ..engine.search import Search

    search = Search(
        code=code, protocol=protocol, runs_dir=args.runs_dir, name=args.name, settings=settings,
        source=str(args.script),
    )
    rc = execute(search, runs_dir=args.runs_dir, as_json=args.json)
    if args.llm_report and rc != 1:  # a failed run's endpoint is likely still down
        print_llm_summary(search, stream=sys.stderr if args.json else sys.stdout)
    return rc
