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
