"""Reading a node's metric: the protocol's only source of truth, never the proposer.

A script either prints ``name: value`` / ``name=value`` (the last such line wins) or calls
``report(name=value)``, which writes JSON to ``$AUTORESEARCH_RESULT``; the JSON wins. A script
that failed is described by ``failure_reason`` from the tail of its output.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

_NUMBER = r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf(?:inity)?)"


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w.]){re.escape(name)}\s*[:=]\s*({_NUMBER})(?![\w.])", re.IGNORECASE)


def parse_metric(text: str, name: str) -> float | None:
    """The value of the last ``name: value`` or ``name=value`` in ``text``; None if there is none."""
    last = None
    for last in _pattern(name).finditer(text):
        pass
    return float(last.group(1)) if last else None


def read_result(path: Path) -> dict[str, Any]:
    """The metrics a script passed to ``report()``; empty if it never called it or wrote junk."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_metric(*, name: str, output: str, result_path: Path | None = None) -> tuple[float | None, str | None]:
    """The node's metric and, when it has none usable, the reason in one line."""
    value: Any = None
    if result_path is not None:
        value = read_result(result_path).get(name)
    if value is None:
        value = parse_metric(output, name)
    if value is None:
        return None, f"no metric: the output has no '{name}: <number>' line and report() was not called"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None, f"metric {name} is not a number: {value!r}"
    if not math.isfinite(number):
        return number, f"metric {name} is {number} (not finite)"
    return number, None


def report(**metrics: float) -> None:
    """Report metrics from a node script; the values win over anything printed.

    Also prints each one as ``name: value`` so the log shows it, and works outside a search.
    """
    clean: dict[str, float] = {}
    for key, value in metrics.items():
        clean[key] = float(value)
        print(f"{key}: {clean[key]!r}", flush=True)
    target = os.environ.get("AUTORESEARCH_RESULT")
    if not target:
        return
    path = Path(target)
    merged = read_result(path)
    merged.update(clean)
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(merged, allow_nan=True))
        os.replace(tmp, path)
    except OSError as err:  # the printed line still carries the metric
        print(f"autoresearch: could not write {path}: {err}", file=sys.stderr)


_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning))\b:?(.*)$")


def failure_reason(tail: str, exit_code: int | None) -> str:
    """One line saying why a script failed: its last exception line, or how it exited."""
    import signal  # here: node scripts import this module for report()

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
