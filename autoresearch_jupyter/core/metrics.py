"""Reading a node's metric: the protocol's only source of truth, never the proposer.

A script either prints ``name: value`` / ``name=value`` (the last such line wins) or calls
``report(name=value)``, which writes JSON to ``$AUTORESEARCH_RESULT``; the JSON wins. A script
that failed is described by ``failure_reason`` from the tail of its output.

The name is matched as a whole token: ``train-logloss``, ``eval_val_acc`` and ``val_acc_std``
are other metrics, not ``logloss`` or ``val_acc``. Several pairs may share a line, as in
xgboost's ``[1] eval-logloss:0.13776 train-logloss:0.13654``.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any, Iterable

_NUMBER = r"[-+]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|nan|inf(?:inity)?)"


_TOKEN = r"[\w.\-/]"  # characters a metric name is made of (METRIC_NAME in protocol.py)
_ANY_PAIR = re.compile(rf"(?<!{_TOKEN})([A-Za-z_]{_TOKEN}*)\s*[:=]\s*{_NUMBER}(?![\w.])", re.IGNORECASE)


def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<!{_TOKEN}){re.escape(name)}\s*[:=]\s*({_NUMBER})(?![\w.])", re.IGNORECASE)


def similar_names(text: str, name: str) -> list[str]:
    """Metric-like names in ``text`` (``other: <number>``) that contain ``name`` but are not it,
    sorted: ``eval-logloss`` and ``train-logloss`` for ``logloss``."""
    want = name.lower()
    found = {m.group(1) for m in _ANY_PAIR.finditer(text)}
    return sorted(n for n in found if want in n.lower() and n.lower() != want)


def ambiguity(text: str, name: str) -> str | None:
    """One line when ``name`` is not printed as itself but several names containing it are."""
    if parse_metric(text, name) is not None:
        return None
    names = similar_names(text, name)
    if len(names) < 2:
        return None
    listed = ", ".join(names[:-1]) + " or " + names[-1]
    return (
        f"metric '{name}' is ambiguous: the output has {len(names)} metrics containing it; "
        f"did you mean {listed}? (give the exact name)"
    )


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
        near = similar_names(output, name)
        hint = f" (did you mean {' or '.join(near[:3])}?)" if near else ""
        return None, f"no metric: the output has no '{name}: <number>' line and report() was not called{hint}"
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


# ---- secondary metrics: everything else a node reports ------------------------------------

MAX_METRICS = 32
SCAN_HEAD, SCAN_TAIL = 64 << 10, 256 << 10  # characters of a long output scanned for any name


def _window(output: str) -> str:
    """The start and the end of a long output, cut at line ends: scanning 10 MB for every name is slow."""
    if len(output) <= SCAN_HEAD + SCAN_TAIL:
        return output
    head = output[: output.rfind("\n", 0, SCAN_HEAD) + 1 or SCAN_HEAD]
    tail_start = output.find("\n", len(output) - SCAN_TAIL) + 1 or len(output) - SCAN_TAIL
    return head + output[tail_start:]


_ANY_PAIR = re.compile(rf"(?<![\w.\-/])([A-Za-z_][\w.\-/]*)\s*[:=]\s*({_NUMBER})(?![\w.])", re.IGNORECASE)


def collect_metrics(
    output: str,
    result: dict[str, Any] | None = None,
    *,
    first: Iterable[str] = (),
    exclude: Iterable[str] = (),
    limit: int = MAX_METRICS,
) -> dict[str, float]:
    """Every ``name: value`` in ``output`` and every numeric key of ``report()``'s ``result``.

    A name's last printed value wins, and report() wins over printing (as for the objective).
    At most ``limit`` names: those in ``first`` (the objective, the constraints' names) always,
    then report()'s keys, then printed names in the order they first appear. Non-finite values
    and the names in ``exclude`` (the runner's own measurements) are left out. A long output is
    scanned in its first 64 KB and last 256 KB, except for the names in ``first``.
    """
    printed: dict[str, float] = {}
    for match in _ANY_PAIR.finditer(_window(output)):
        name = match.group(1)
        try:
            value = float(match.group(2))
        except ValueError:
            continue
        printed[name] = value  # the dict keeps each name where it first appeared, with its last value
    reported: dict[str, float] = {}
    for key, raw in (result or {}).items():
        if isinstance(key, str) and isinstance(raw, (int, float)) and not isinstance(raw, bool):
            reported[key] = float(raw)
    for name in first:  # the names that matter are read from all of the output, as the objective is
        if name not in printed and name not in reported:
            found = parse_metric(output, name)
            if found is not None:
                printed[name] = found
    values = {**printed, **reported}
    skip = set(exclude)
    names = [n for n in dict.fromkeys([*first, *reported, *printed]) if n in values]
    out: dict[str, float] = {}
    for name in names:
        if name in skip or not math.isfinite(values[name]):
            continue
        if len(out) >= limit:
            break
        out[name] = values[name]
    return out
