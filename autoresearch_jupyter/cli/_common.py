"""Options and helpers that several subcommands share."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..core.argtypes import non_negative_int, positive_float, positive_int  # noqa: F401 - re-exported for commands
from ..core.errors import AutoResearchError
from ..core.settings import default_runs_dir
from ..store.runs import RunDir, resolve_run


def runs_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--runs-dir",
        default=default_runs_dir(),
        type=Path,
        help="where runs live (default: ./.autoresearch, or $AUTORESEARCH_RUNS_DIR)",
    )


def run_ref_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="run id, name, unique id prefix, or 'latest'")
    runs_dir_option(parser)


def open_run(args: argparse.Namespace) -> RunDir:
    return resolve_run(args.runs_dir, args.run)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def write_output(path: Path, text: str) -> None:
    """Atomically (a full disk leaves no half file), with one line naming the path on failure."""
    from ..core.errors import StorageError
    from ..store.runs import atomic_write

    try:
        atomic_write(path, text)
    except OSError as err:
        raise StorageError.from_os_error(err, path) from None
