"""Runs as the extension shows them: the widget's node records and header, built in Python.

The JupyterLab extension never replays a journal itself: the server does, with the package's own
replay (``store.journal``) and the widget's own records (``report.views.node_record`` and
``run_meta``), so the sidebar, the run view and the notebook widget cannot disagree.

``RunViews`` keeps one entry per run folder. A journal is replayed again only when its size or
modification time changed, and node records are rebuilt only for the nodes that changed (and
their children, whose delta depends on the parent). Each rebuild is a generation; the client
sends back the ``cursor`` (``epoch:generation``) of its last answer and gets only the records
of later generations. An ``epoch`` other than the entry's (the server restarted, or the journal
was replaced by a shorter one) gets every record, with ``full: true``.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import threading
from pathlib import Path
from typing import Any

from ..core.errors import AutoResearchError
from ..core.node import Node
from ..report.views import live_tails, node_record, run_meta, run_times
from ..store.journal import Replay, pid_alive
from ..store.runs import RunDir

Record = dict[str, Any]


@dataclasses.dataclass
class _Entry:
    """What is kept about one run folder between requests."""

    key: tuple[int, int] | None = None  # (size, mtime_ns) of the journal last replayed
    run: RunDir | None = None
    replay: Replay | None = None
    error: str | None = None
    epoch: str = dataclasses.field(default_factory=lambda: secrets.token_hex(4))
    generation: int = 0
    nodes: dict[int, Node] = dataclasses.field(default_factory=dict)  # as of the last records build
    records: dict[int, Record] = dataclasses.field(default_factory=dict)
    summary: tuple[Any, dict[str, Any]] | None = None  # ((journal key, state), the summary)
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


class RunViews:
    """Summaries and node records of run folders, cached per folder; safe to share between threads."""

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()

    def summary(self, run_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
        """(the run's header and facts, None) or (None, why it cannot be read)."""
        entry = self._entry(run_dir)
        with entry.lock:
            self._refresh(entry, run_dir)
            if entry.error is not None:
                return None, entry.error
            return self._summary(entry), None

    def view(self, run_dir: Path, since: str | None = None) -> dict[str, Any]:
        """The run's summary and its node records newer than the cursor ``since``.

        Returns ``{cursor, full, view, records, live, error}``; with ``full`` the records are all
        of them (drop what you had), else only those that changed since ``since``. ``live`` is
        the end of each running node's output.log (``LIVE_CAP`` bytes at most per node per read).
        """
        entry = self._entry(run_dir)
        with entry.lock:
            self._refresh(entry, run_dir)
            if entry.error is not None:
                return {"cursor": None, "full": True, "view": None, "records": [], "live": {}, "error": entry.error}
            self._build_records(entry)
            epoch, _, gen = (since or "").partition(":")
            full = epoch != entry.epoch or not gen.isdigit() or int(gen) > entry.generation
            after = -1 if full else int(gen)
            records = [r for r in entry.records.values() if r["v"] > after]
            return {
                "cursor": f"{entry.epoch}:{entry.generation}", "full": full, "view": self._summary(entry),
                "records": records, "live": live_tails(run_dir, entry.replay.tree) if entry.replay else {},
                "error": None,
            }

    # ---- internals ---------------------------------------------------------------------------

    def _entry(self, run_dir: Path) -> _Entry:
        key = os.path.abspath(run_dir)
        with self._lock:
            return self._entries.setdefault(key, _Entry())

    @staticmethod
    def _refresh(entry: _Entry, run_dir: Path) -> None:
        """Replay the journal again if it changed since the last replay."""
        try:
            st = (run_dir / "journal.jsonl").stat()
            key: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
        except OSError:
            key = None
        if entry.replay is not None and key == entry.key and entry.error is None:
            return
        try:
            run = entry.run if entry.run is not None else RunDir.open(run_dir)
            replay = run.load()
        except AutoResearchError as err:
            entry.error, entry.key = str(err).splitlines()[0], None
            return
        entry.run, entry.replay, entry.key, entry.error = run, replay, key, None

    @staticmethod
    def _build_records(entry: _Entry) -> None:
        """Rebuild the records of the nodes that changed since the last build: a new generation."""
        assert entry.replay is not None
        tree = entry.replay.tree
        if any(node_id not in tree.nodes for node_id in entry.nodes):  # a shorter journal: start over
            entry.epoch, entry.generation, entry.nodes, entry.records = secrets.token_hex(4), 0, {}, {}
        changed = {n.id for n in tree if entry.nodes.get(n.id) != n}
        if not changed and (entry.records or not len(tree)):
            return  # nothing new: the same generation, the same cursor
        entry.generation += 1
        stale = changed | {kid for node_id in changed for kid in tree.children.get(node_id, ())}
        for node_id in sorted(stale):
            entry.records[node_id] = node_record(tree[node_id], tree.nodes, v=entry.generation)
        entry.nodes = dict(tree.nodes)  # a replay's own nodes: nothing changes them afterwards

    @staticmethod
    def _summary(entry: _Entry) -> dict[str, Any]:
        assert entry.run is not None and entry.replay is not None
        run, replay = entry.run, entry.replay
        state = replay.state
        if state == "running" and not pid_alive(replay.pid, replay.host, since=replay.updated_at):
            state = "interrupted"  # its process died without a word since the journal last changed
        if entry.summary is not None and entry.summary[0] == (entry.key, state):
            return entry.summary[1]
        settings = run.settings
        steps, max_time = settings.get("steps"), settings.get("max_time")
        started, finished = run_times(replay.tree)
        meta = run_meta(
            replay.tree, run.protocol, run_id=run.id, state=state,
            reason=replay.reason if state == replay.state else None,
            steps=steps if isinstance(steps, int) else None,
            max_time=max_time if isinstance(max_time, (int, float)) else None,
            started=replay.started_at if replay.started_at is not None else started,
            finished=None if state == "running" else (replay.finished_at or finished),
        )
        summary = {
            "id": run.id, "name": run.name, "source": run.source if isinstance(run.source, str) else None,
            "created_at": run.created_at, "state": state, "live": state == "running", "meta": meta,
            "warnings": replay.warnings[:20],
        }
        if state != "running":  # a live header carries the time ("now"): build it fresh each time
            entry.summary = ((entry.key, state), summary)
        return summary
