"""Text progress for any face without a widget: one aligned row per finished node, a status line
on a terminal.

Rows fit the terminal (``shutil.get_terminal_size``, which honours ``COLUMNS``): the plan is the
last column and is cut with an ellipsis, never mid-row. Plans are shortened to their first clause
(details stay in ``autoresearch show``). Markers: ``★`` a new best, ``↩`` a backtrack.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
import threading
import time
from typing import Any, TextIO

from ..core.node import Node, Status
from ..core import noise
from .trust import label as verdict_label
from ..core.protocol import Protocol
from ..engine.callbacks import Callback

NEW_BEST = "★"
BACKTRACK = "↩"
MIN_PLAN = 12  # below this the plan column is dropped rather than shown as "…"


def fit(text: str, width: int) -> str:
    """``text`` on one line in at most ``width`` characters, with an ellipsis when cut."""
    text = " ".join(text.split())
    if width <= 0:
        return ""
    return text if len(text) <= width else text[: max(0, width - 1)].rstrip() + "…"


def short_plan(plan: str) -> str:
    """The first clause of a plan: its first line, without a trailing parenthesised detail."""
    first = (plan or "").strip().split("\n", 1)[0]
    cut = first.find(" (")
    return first[:cut] if cut > 0 else first


def fmt_metric(value: float | None) -> str:
    return "-" if value is None else f"{value + 0.0:.6g}"  # + 0.0: no "-0"


def fmt_elapsed(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class ProgressPrinter(Callback):
    """Prints each finished node as a row of aligned columns; on a terminal, a status line with
    the running nodes and their elapsed time is redrawn under the rows."""

    def __init__(self, *, protocol: Protocol, steps: int, stream: TextIO | None = None,
                 width: int | None = None, name: str | None = None) -> None:
        self.protocol = protocol
        self.name = name
        self.steps = steps
        self.stream = stream or sys.stdout
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.width = width
        self.start = time.monotonic()
        self.done = 0
        self.best: float | None = None
        self.best_id: int | None = None
        self.running: dict[int, float] = {}
        self.metric_width = max(8, len(protocol.metric))
        self._lock = threading.Lock()
        self._header_done = False
        self._closed = False  # the reader went away (``| head``): stay quiet, the run goes on

    # ---- events ---------------------------------------------------------------------------------
    def on_run_started(self, *, run_id: str, run_dir: str, resumed: bool, **info: Any) -> None:
        verb = "resuming" if resumed else "run"
        tree = info.get("tree")
        self.done = max(0, len(tree) - 1) if tree is not None else 0
        if tree is not None:
            best = tree.best(self.protocol) if hasattr(tree, "best") else None
            if best is not None:
                self.best, self.best_id = best.metric, best.id
        p = self.protocol
        title = f"{self.name} ({run_id})" if self.name else run_id
        bounds = f" · subject to {', '.join(p.constraints)}" if p.constraints else ""
        head = (f"{verb} {title} · {p.direction} {p.metric}{bounds} · {p.time_budget:g} s per node · "
                f"{self.steps} steps · proposer {info.get('proposer', '?')}")
        # the header wraps rather than cuts: what runs and where is worth its lines
        for line in textwrap.wrap(head, self._cols() - 1, subsequent_indent="  ", break_on_hyphens=False):
            self._line(line)
        self._line(fit(f"  folder {run_dir}", self._cols()))

    def on_node_started(self, *, node: Node, **info: Any) -> None:
        with self._lock:
            self.running[node.id] = time.monotonic()
        self._status()

    def on_node_finished(self, *, node: Node, **info: Any) -> None:
        with self._lock:
            self.running.pop(node.id, None)
        if node.id > 0 and node.status is not Status.REJECTED and node.operator.value != "ablate":
            self.done += 1
        if not self._header_done:
            self._header_done = True
            self._line(self._row("node", "operator", "status", self.protocol.metric, "Δ parent", "", "plan"))
        tree = info.get("tree")
        delta = ""
        if node.metric is not None and tree is not None and node.parent is not None and node.parent in tree:
            parent = tree[node.parent]
            if parent.metric is not None and node.status is Status.OK:
                delta = f"{node.metric - parent.metric:+.4g}"
        marks = ""
        if self._is_new_best(node):
            marks += NEW_BEST
        if node.meta.get("backtrack"):
            marks += BACKTRACK
        if node.status is Status.OK:
            status = "baseline" if node.id == 0 else verdict_label(node, short=True)
        else:
            status = {"timeout": "timed out"}.get(node.status.value, node.status.value)
        plan = "baseline" if node.id == 0 else short_plan(node.plan)
        if node.reason and node.status is not Status.OK:
            plan = f"{plan} - {node.reason}"
        label = "base" if node.id == 0 else str(node.id)
        shown = fmt_metric(node.metric)
        if len(node.samples) > 1:  # a mean over runs (noise floor, a confirmed new best)
            shown += f" ± {noise.sd(node.samples):.2g} ({len(node.samples)} runs)"
        self._line(self._row(label, node.operator.value, status, shown, delta, marks, plan))
        self._status()

    def on_run_finished(self, *, state: str, reason: str | None, **info: Any) -> None:
        self._clear()
        self._line(fit(f"{state}: {reason}" if reason else state, self._cols()))

    # ---- layout ---------------------------------------------------------------------------------
    def _cols(self) -> int:
        return self.width or shutil.get_terminal_size((100, 24)).columns

    def _row(self, node: str, op: str, status: str, metric: str, delta: str, marks: str, plan: str) -> str:
        head = f"{node:>4}  {op:<8} {status:<9} {metric:>{self.metric_width}} {delta:>9} {marks:<2} "
        room = self._cols() - len(head) - 1
        if room < MIN_PLAN:
            return head.rstrip()
        return (head + fit(plan, room)).rstrip()

    def _is_new_best(self, node: Node) -> bool:
        if node.status is not Status.OK or node.metric is None:
            return False
        if not (node.kept or node.id == 0):
            return False
        if self.best is None or self.protocol.better(node.metric, self.best):
            first = self.best is None
            self.best, self.best_id = node.metric, node.id
            return not first  # the baseline is the first best, not a new one
        return False

    # ---- terminal -------------------------------------------------------------------------------
    def _clear(self) -> None:
        if self.tty:
            self._write("\r\033[K")

    def _write(self, text: str) -> None:
        if self._closed:
            return
        try:
            self.stream.write(text)
            self.stream.flush()
        except (BrokenPipeError, ValueError):  # a closed pipe or stream
            self._closed = True

    def _line(self, text: str) -> None:
        with self._lock:
            self._write(("\r\033[K" if self.tty else "") + text + "\n")
        self._status()

    def _status(self) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        with self._lock:
            running = sorted(self.running.items())
            parts = [f"{self.done}/{self.steps} done"]
            if running:
                shown = ", ".join(f"#{nid} {fmt_elapsed(now - t0)}" for nid, t0 in running[:4])
                more = f" +{len(running) - 4}" if len(running) > 4 else ""
                parts.append(f"running {shown}{more}")
            if self.best is not None:
                parts.append(f"best {fmt_metric(self.best)}" + (f" (#{self.best_id})" if self.best_id else ""))
            parts.append(fmt_elapsed(now - self.start))
            self._write("\r\033[K" + fit(" · ".join(parts), self._cols() - 1))


def next_steps(run_ref: str, *, has_best: bool, runs_dir: str | None = None) -> str:
    """The "next:" block printed at the end of a run: the three commands that matter for it."""
    where = f" --runs-dir {runs_dir}" if runs_dir else ""
    rows = [(f"autoresearch show {run_ref}{where}", "the report; --node ID for one node's plan, diff, output"),
            (f"autoresearch tree {run_ref}{where}", "the search tree (--svg tree.svg for a picture)")]
    if has_best:
        rows.append((f"autoresearch export {run_ref}{where} -o best.py", "the best node as a script"))
    else:
        rows.append((f"autoresearch resume {run_ref}{where}", "continue the search"))
    pad = max(len(cmd) for cmd, _ in rows)
    return "next:\n" + "\n".join(f"  {cmd:<{pad}}  {why}" for cmd, why in rows)
