"""What a search hands back: its outcome, and the one-line reason of a failed script."""

from __future__ import annotations

import dataclasses
import re
import signal
from pathlib import Path
from typing import Any

from ..core.node import Node
from ..core.protocol import Protocol
from ..core.tree import Tree

_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning))\b:?(.*)$")


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a search ended; ``tree`` is the final tree (safe to read, not to change)."""

    run_id: str
    run_dir: Path
    state: str  # finished | stopped | failed
    reason: str | None
    protocol: Protocol
    tree: Tree

    @property
    def best(self) -> Node | None:
        return self.tree.best(self.protocol)

    @property
    def baseline(self) -> Node | None:
        return self.tree.root


def failure_reason(tail: str, exit_code: int | None) -> str:
    """One line saying why a script failed: its last exception line, or how it exited."""
    for line in reversed(tail.splitlines()):
        match = _ERROR_LINE.match(line)
        if match:
            return line.strip()[:300]
    if exit_code is not None and exit_code < 0:
        try:
            return f"killed by signal {signal.Signals(-exit_code).name}"
        except ValueError:
            return f"killed by signal {-exit_code}"
    return f"exit code {exit_code}"


def default_settings(**overrides: Any) -> dict[str, Any]:
    """The run settings stored in run.json; resume rebuilds the parts from them."""
    settings: dict[str, Any] = {
        "steps": 20,
        "max_time": None,
        "smoke": False,
        "goal": "",
        "proposer": {"name": "mutate"},
        "executor": {"name": "local", "workers": 1},
        "policy": {},
        "source_dir": None,  # the baseline's folder: on nodes' PYTHONPATH, so local modules import
        "cwd": None,  # where nodes run; None: each in its own node folder
        "ablate": True,  # at the end, find which changes on the path to the best matter
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    return settings


def read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
