"""Text progress for any face without a widget: one line per finished node, a bar on a TTY."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from ..engine.callbacks import Callback
from ..core.node import Node, Status
from ..core.protocol import Protocol


class ProgressPrinter(Callback):
    """Prints each finished node; the bar is redrawn in place only when stdout is a terminal."""

    def __init__(self, *, protocol: Protocol, steps: int, stream: TextIO | None = None) -> None:
        self.protocol = protocol
        self.steps = steps
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.start = time.monotonic()
        self.done = 0
        self.best: float | None = None
        self.running = 0

    def on_run_started(self, *, run_id: str, run_dir: str, resumed: bool, **info: Any) -> None:
        verb = "resuming" if resumed else "run"
        tree = info.get("tree")
        self.done = max(0, len(tree) - 1) if tree is not None else 0
        self._line(f"{verb} {run_id}  ({self.protocol.direction} {self.protocol.metric}, "
                   f"{self.protocol.time_budget:g} s per node, {self.steps} steps, "
                   f"proposer {info.get('proposer', '?')})  -> {run_dir}")
        executor = info.get("executor") or {}
        if executor.get("name") == "ray":
            self._line(executor_line(executor))

    def on_node_started(self, *, node: Node, **info: Any) -> None:
        self.running += 1
        self._bar()

    def on_node_finished(self, *, node: Node, **info: Any) -> None:
        if node.status is not Status.REJECTED:
            self.running = max(0, self.running - 1)
        if node.id > 0:
            self.done += 1
        metric = f"{self.protocol.metric}={node.metric:.6g}" if node.metric is not None else ""
        delta = ""
        tree = info.get("tree")
        if node.metric is not None and tree is not None and node.parent is not None:
            parent = tree[node.parent]
            if parent.metric is not None:
                delta = f" ({node.metric - parent.metric:+.4g})"
        verdict = {True: "kept", False: "reverted"}.get(node.kept, "") if node.status is Status.OK else ""
        why = node.reason or ""
        label = f"[{node.id:>3}]" if node.id else "[base]"
        self._line(
            f"{label} {node.operator.value:<8} {node.status.value:<9} {metric}{delta} {verdict}"
            f"  {node.plan[:60]}{'  - ' + why[:80] if why else ''}{where_text(node.where)}".rstrip()
        )
        if node.status is Status.OK and node.kept and node.metric is not None:
            if self.best is None or self.protocol.better(node.metric, self.best):
                self.best = node.metric
        self._bar()

    def on_run_finished(self, *, state: str, reason: str | None, **info: Any) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self._line(f"{state}: {reason}" if reason else state)

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()

    def _bar(self) -> None:
        if not self.tty:
            return
        width = 30
        frac = min(1.0, self.done / self.steps) if self.steps else 1.0
        filled = int(frac * width)
        best = f"best {self.best:.6g}" if self.best is not None else ""
        elapsed = time.monotonic() - self.start
        self.stream.write(
            f"\r\033[K[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.steps} "
            f"running {self.running}  {best}  {elapsed:.0f}s"
        )
        self.stream.flush()


def executor_line(executor: dict[str, Any]) -> str:
    """``executor ray at ADDRESS: 2 nodes, 16 CPU, 8 GPU; each node 1 CPU 0.5 GPU; dashboard URL``."""
    cluster = executor.get("cluster") or {}
    address = executor.get("address")
    where = f"at {address}" if address and address != "local" else "on a Ray instance started here"
    text = (f"executor ray {where}: {cluster.get('nodes', 0):g} node(s), "
            f"{cluster.get('CPU', 0):g} CPU, {cluster.get('GPU', 0):g} GPU; each search node asks "
            f"{executor.get('cpus_per_node', 1):g} CPU, {executor.get('gpus_per_node', 0):g} GPU; "
            f"{executor.get('workers', 1)} in flight")
    if executor.get("dashboard"):
        text += f"; dashboard {executor['dashboard']}"
    return text


def where_text(where: dict[str, Any] | None) -> str:
    """``  @host gpu 0`` for a node that ran elsewhere; empty for one that ran here."""
    if not where:
        return ""
    gpus = where.get("gpus") or []
    return f"  @{where.get('host', '?')}" + (f" gpu {','.join(map(str, gpus))}" if gpus else "")
