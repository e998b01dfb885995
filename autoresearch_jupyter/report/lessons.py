"""Writes a run's ``lessons.json`` when it ends: a subscriber, like ``best.py``'s writer.

The format and its derivation live in ``core/lessons.py``; this adds what only the end of a run
knows (the runs it learned from, the proposals their lessons skipped, the node at which it
reached their best) and writes the file atomically. ``write_lessons(run_dir)`` does the same for
a run from its journal (an interrupted run, ``autoresearch report``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from ..core import lessons as L
from ..core.protocol import Protocol
from ..core.tree import Tree
from ..engine.callbacks import Callback
from ..engine.guard import code_hash
from ..store.runs import RunDir, atomic_write

logger = logging.getLogger(__name__)


def reached_at(tree: Tree, protocol: Protocol, target: float | None) -> int | None:
    """The first search node (by id) whose metric is at least as good as ``target``."""
    if target is None:
        return None
    for node in sorted(tree, key=lambda n: n.id):
        if node.id and node.metric is not None and node.is_good and not protocol.better(target, node.metric):
            return node.id
    return None


def build(tree: Tree, protocol: Protocol, run_dir: RunDir, *, learned: dict[str, Any] | None = None,
          complete: bool = True) -> dict[str, Any]:
    """The lessons of the run in ``run_dir`` (with what it learned, when it learned)."""
    data = L.derive(tree, protocol, run_id=run_dir.id, name=run_dir.name, source=run_dir.source,
                    code_hash=_hash, complete=complete)
    if learned:
        informed = [n.id for n in tree if isinstance(n.meta, Mapping) and n.meta.get("learned_from")]
        data["learned"] = {**learned, "reached_target_at": reached_at(tree, protocol, learned.get("target")),
                           "informed_nodes": informed}
    return data


def write_lessons(run_dir: RunDir) -> dict[str, Any]:
    """Derive and write ``lessons.json`` for a run from its journal; returns the lessons."""
    replay = run_dir.load()
    data = build(replay.tree, run_dir.protocol, run_dir, complete=replay.state != "running")
    atomic_write(run_dir.path / L.LESSONS_FILE, _dumps(data))
    return data


def _hash(code: str) -> str | None:
    try:
        return code_hash(code)
    except SyntaxError:
        return None


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


class LessonsWriter(Callback):
    """Writes ``lessons.json`` into the run folder when the run ends (whatever the state)."""

    def __init__(self) -> None:
        self._run_dir: RunDir | None = None

    def on_run_started(self, *, run_id: str, run_dir: str, resumed: bool, **info: Any) -> None:
        self._run_dir = RunDir.open(run_dir)

    def on_run_finished(self, *, state: str, reason: str | None, **info: Any) -> None:
        tree, protocol = info.get("tree"), info.get("protocol")
        if self._run_dir is None or tree is None or protocol is None or tree.root is None:
            return
        try:
            data = build(tree, protocol, self._run_dir, learned=info.get("learned"))
            atomic_write(self._run_dir.path / L.LESSONS_FILE, _dumps(data))
        except OSError as err:  # a full disk must not turn a finished run into a crash
            logger.warning("could not write %s: %s", L.LESSONS_FILE, err)


def saved_line(data: dict[str, Any]) -> str | None:
    """What the lessons of earlier runs saved this run, in one line (None if it learned nothing)."""
    learned = data.get("learned")
    if not learned or not learned.get("from"):
        return None
    at = learned.get("reached_target_at")
    reach = (f"reached the earlier best at node {at}" if at is not None
             else "did not reach the earlier best" if learned.get("target") is not None
             else "no earlier best to reach (protocol differs)")
    return (f"lessons from {', '.join(learned['from'])}: {learned.get('skipped', 0)} proposal(s) skipped as "
            f"known failures; {reach}")


def read_or_write(run_dir: RunDir, *, state: str) -> dict[str, Any] | None:
    """The run's lessons: its ``lessons.json``, else derived from its journal and written (a run
    interrupted before its end, or recorded before lessons existed). None while it is running or
    when the file cannot be written; a lessons file of another version is derived anew."""
    path = run_dir.path / L.LESSONS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict) and data.get("lessons_version") == L.LESSONS_VERSION:
            return data
    except (OSError, ValueError):
        pass
    if state == "running":
        return None
    try:
        return write_lessons(run_dir)
    except OSError as err:
        logger.warning("could not write %s: %s", path, err)
        return None


def render_lessons_text(data: dict[str, Any]) -> str:
    """A short text section: what the lessons file holds, and what earlier lessons saved."""
    lines = ["## Lessons for the next run (lessons.json)"]
    failed, domains = data.get("failed", []), data.get("domains", {})
    lines.append(f"- {len(data.get('helped', []))} change(s) helped, {len(failed)} failed, "
                 f"{len(domains)} value domain(s) learned")
    for dom in list(domains.values())[:5]:
        if dom.get("fails_at_or_above") is not None:
            lines.append(f"- {dom.get('name')}: fails from {dom['fails_at_or_above']:g} up")
        if dom.get("fails_at_or_below") is not None:
            lines.append(f"- {dom.get('name')}: fails up to {dom['fails_at_or_below']:g}")
    values = (data.get("best") or {}).get("values") or []
    if values:
        lines.append("- best values: " + ", ".join(f"{v.get('name')} = {v.get('new')}" for v in values[:8]))
    if line := saved_line(data):
        lines.append(f"- {line}")
    lines.append("- a new run uses them with --learn-from " + str(data.get("run_name") or data.get("run_id")))
    return "\n".join(lines)
