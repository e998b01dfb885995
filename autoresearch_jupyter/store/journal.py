"""The journal: an append-only log of run and node events, one JSON object per line; a run's truth.

Writing: ``Journal`` appends each event as one line with one write and never rewrites the file,
so a process killed mid-write leaves at most one torn last line, which the next ``Journal`` on
the file removes before appending. Reading: ``load_journal`` replays the lines into a ``Tree``;
any prefix of a journal (cut at any byte) loads to a consistent tree. The format itself (event
types, NaN handling, how fields apply) is described in ``journal_format.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import math
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Mapping

from ..core.errors import JournalError, StorageError
from .chain import ChainCheck, last_line, line_hash
from .journal_format import (
    FINISH_FIELDS,
    JOURNAL_VERSION,
    NODE_FIELDS,
    RUN_END_STATES,
    STATES,
    UPDATE_FIELDS,
    Event,
    NodeCreatedEvent,
    NodeFinishedEvent,
    NodeStartedEvent,
    NodeUpdatedEvent,
    RunFinishedEvent,
    RunResumedEvent,
    RunStartedEvent,
    dumps,
    loads,
    node_created_event,
    node_dict,
    node_finished_event,
    node_from_dict,
    node_started_event,
    node_updated_event,
    run_finished_event,
    run_resumed_event,
    run_started_event,
    usage_from_dict,
)
from ..core.node import Node, Operator, Status
from ..core.tree import Tree

__all__ = [
    "JOURNAL_VERSION", "STATES", "RUN_END_STATES", "Event", "Journal", "Replay", "load_journal", "replay_bytes",
    "repair_tail", "pid_alive", "line_hash", "dumps", "loads", "node_dict", "node_from_dict",
    "RunStartedEvent", "RunResumedEvent", "RunFinishedEvent", "NodeCreatedEvent", "NodeStartedEvent",
    "NodeFinishedEvent", "NodeUpdatedEvent", "run_started_event", "run_resumed_event", "run_finished_event",
    "node_created_event", "node_started_event", "node_finished_event", "node_updated_event",
]

logger = logging.getLogger(__name__)

_MAX_WARNINGS = 100
_PID_REUSE_SLACK = 2.0  # seconds: /proc start times are only this precise


# ---- writing ----------------------------------------------------------------------------------


class Journal:
    """Appends events to ``journal.jsonl``: one write per event, never a rewrite; thread-safe.

    Every event is written straight to the OS (no user-space buffer), so a killed kernel loses
    nothing it appended. With ``durable=True`` (the default) events are also forced to disk
    (fsync) against power loss: ``run_*`` events and ``close()`` at once; ``node_finished``
    events at most once per ``sync_interval`` seconds, a timer syncing the rest within that
    interval (group commit: 10,000 nodes are not bound by the disk's fsync latency). Use
    ``sync_interval=0`` to fsync every ``node_finished`` at once.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, durable: bool = True, sync_interval: float = 0.1,
        anchor: str | None = None,
    ) -> None:
        """``anchor``: the hash of the run's run.json (``line_hash``), pinned by the first line and
        every run event; by default that of the run.json beside the journal, if there is one."""
        self.path = Path(path)
        self.durable = durable
        self.sync_interval = sync_interval
        if anchor is None:  # a run.json beside it is what the chain pins
            try:
                anchor = line_hash((self.path.parent / "run.json").read_bytes())
            except OSError:
                pass
        self.anchor = anchor
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.repaired = repair_tail(self.path)
        """What opening had to fix at the end of the file (a torn last line), or None."""
        if self.repaired:
            logger.warning("%s: %s", self.path, self.repaired)
        last = last_line(self.path)
        self._prev = line_hash(last) if last is not None else (anchor or line_hash(b""))
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
        self._fd = os.open(self.path, flags, 0o644)
        self._lock = threading.Lock()
        self._dirty = False  # an fsync is owed
        self._last_sync = -math.inf
        self._timer: threading.Timer | None = None

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, durable={self.durable})"

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def append(self, event: Mapping[str, Any]) -> None:
        """Write one event as one line. Raises ValueError if closed or the event has no kind."""
        kind = event.get("event")
        if not isinstance(kind, str) or not kind:
            raise ValueError(f"a journal event needs an 'event' kind, got {kind!r}")
        with self._lock:
            if self._fd < 0:
                raise ValueError(f"journal {self.path} is closed")
            chained = {**event, "prev": self._prev}
            if self.anchor is not None and kind in ("run_started", "run_resumed"):
                chained["run_json"] = self.anchor
            line = dumps(chained).encode("utf-8")
            view = memoryview(line + b"\n")
            try:
                while view:  # a regular file takes it in one write; loop for the odd short write
                    view = view[os.write(self._fd, view):]
            except OSError as err:  # a full disk: the next opening removes what part of the line got out
                raise StorageError.from_os_error(err, self.path) from None
            self._prev = line_hash(line)
            if self.durable:
                if kind.startswith("run_"):
                    self._sync_locked()
                elif kind == "node_finished":
                    self._sync_soon_locked()

    def sync(self) -> None:
        """Force everything written so far to disk."""
        with self._lock:
            if self._fd >= 0:
                self._sync_locked()

    def close(self) -> None:
        """Sync what is owed and close; closing twice is fine."""
        with self._lock:
            if self._fd < 0:
                return
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            try:
                if self._dirty:
                    self._sync_locked()
            finally:
                os.close(self._fd)
                self._fd = -1

    def _sync_locked(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as err:  # some file systems refuse fsync; the lines are written anyway
            logger.warning("%s: fsync failed (%s)", self.path, err)
        self._dirty = False
        self._last_sync = time.monotonic()

    def _sync_soon_locked(self) -> None:
        wait = self._last_sync + self.sync_interval - time.monotonic()
        if wait <= 0:
            self._sync_locked()
            return
        self._dirty = True
        if self._timer is None:
            self._timer = threading.Timer(wait, self._sync_from_timer)
            self._timer.daemon = True
            self._timer.start()

    def _sync_from_timer(self) -> None:
        with self._lock:
            self._timer = None
            if self._fd >= 0 and self._dirty:
                self._sync_locked()

    # convenience methods for the search loop; each appends one event

    def run_started(self, *, t: float | None = None) -> None:
        self.append(run_started_event(t=t))

    def run_resumed(self, *, t: float | None = None) -> None:
        self.append(run_resumed_event(t=t))

    def run_finished(
        self, state: str, reason: str | None = None, *, summary: Mapping[str, Any] | None = None, t: float | None = None
    ) -> None:
        """``summary`` is ``runs.summarize(tree, protocol)``: optional, it makes listing runs cheap."""
        self.append(run_finished_event(state, reason, summary=summary, t=t))

    def node_created(self, node: Node, *, t: float | None = None) -> None:
        self.append(node_created_event(node, t=t))

    def node_started(self, node_id: int, *, t: float | None = None) -> None:
        self.append(node_started_event(node_id, t=t))

    def node_finished(self, node_id: int, *, t: float | None = None, **fields: Any) -> None:
        self.append(node_finished_event(node_id, t=t, **fields))

    def node_updated(self, node_id: int, *, t: float | None = None, **fields: Any) -> None:
        """``meta`` is merged into the node's meta on replay; other fields replace."""
        self.append(node_updated_event(node_id, t=t, **fields))


def repair_tail(path: Path) -> str | None:
    """Make the file end at a line boundary, so the next event is not glued to a torn one.

    A last line that is a whole event missing only its newline gets the newline; anything else
    after the last newline (a write cut short by kill -9) is truncated. Returns what was done.
    """
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:
        return None
    with open(path, "r+b") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return None
        start, pos = 0, size
        while pos > 0:  # find the last newline, reading backwards in chunks
            begin = max(0, pos - 65536)
            f.seek(begin)
            i = f.read(pos - begin).rfind(b"\n")
            if i >= 0:
                start = begin + i + 1
                break
            pos = begin
        f.seek(start)
        tail = f.read()
        try:
            whole = isinstance(ev := loads(tail), dict) and isinstance(ev.get("event"), str)
        except ValueError:
            whole = False
        if whole:
            f.seek(size)
            f.write(b"\n")
            return "the last event had no newline: added one"
        f.truncate(start)
        return f"removed a torn last line ({size - start} bytes; its writer was killed mid-write)"


# ---- reading ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Replay:
    """A journal replayed: the tree, and the state of the run as the last run event says."""

    tree: Tree
    events_count: int  # lines that parsed as events
    state: str  # running | interrupted | finished | stopped | failed
    warnings: list[str]
    started_at: float | None = None  # the first run_started
    finished_at: float | None = None  # the run_finished, if the run is not live
    pid: int | None = None  # of the last run_started / run_resumed
    host: str | None = None
    reason: str | None = None  # why the run finished
    resumes: int = 0
    updated_at: float | None = None  # the time of the last event
    summary: dict[str, Any] | None = None  # the run_finished summary, if any
    verified: bool = False  # every line hash-chained, and run.json pinned; False: an older, unchained run


def load_journal(path: str | os.PathLike[str]) -> Replay:
    """Replay ``path`` into a tree. A torn or unparsable last line is skipped with a warning;
    events about unknown nodes are skipped with a warning; a bad line in the middle, a line that
    breaks the hash chain, or a run.json beside it that is not the one the journal pinned raises
    JournalError (a one-line message naming the first bad line). Whether the run is live comes
    from its lock (``lock.py``)."""
    from .lock import is_locked

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise JournalError(f"{path}: no journal here (the run folder is incomplete)") from None
    except OSError as err:
        raise JournalError(f"{path}: cannot read the journal ({err.strerror})") from None
    try:
        run_json: bytes | None = (path.parent / "run.json").read_bytes()
    except OSError:
        run_json = None
    return replay_bytes(data, source=str(path), run_json=run_json, live=is_locked(path.parent))


def replay_bytes(
    data: bytes, *, source: str = "journal", run_json: bytes | None = None, live: bool | None = None
) -> Replay:
    """``load_journal`` on bytes already read; ``source`` names them in messages; ``run_json``
    is checked against the hash the journal pinned; ``live`` (from the run's lock) says whether
    a writer holds the run, None: guess from the writer's pid."""
    return _Replayer(source, run_json=run_json, live=live).run(data)


class _Replayer:
    """Applies events one by one; each handler returns a warning or None."""

    def __init__(self, source: str, *, run_json: bytes | None = None, live: bool | None = None) -> None:
        self.source = source
        self.chain = ChainCheck(source, line_hash(run_json) if run_json is not None else None)
        self.live = live
        self.tree = Tree()
        self.warnings: list[str] = []
        self.dropped_warnings = 0
        self.unknown_fields: set[str] = set()
        self.last_run: str | None = None
        self.run_t: float | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.pid: int | None = None
        self.host: str | None = None
        self.reason: str | None = None
        self.end_state: str | None = None
        self.resumes = 0
        self.summary: dict[str, Any] | None = None

    def warn(self, lineno: int, message: str) -> None:
        if len(self.warnings) < _MAX_WARNINGS:
            self.warnings.append(f"{self.source}:{lineno}: {message}")
        else:
            self.dropped_warnings += 1

    def run(self, data: bytes) -> Replay:
        lines = data.split(b"\n")
        last = len(lines) - 1
        while last >= 0 and not lines[last].strip():
            last -= 1
        handlers = {
            "node_created": self.node_created, "node_started": self.node_started,
            "node_finished": self.node_finished, "node_updated": self.node_updated,
            "run_started": self.run_started, "run_resumed": self.run_started, "run_finished": self.run_finished,
        }
        count, t = 0, None
        previous: bytes | None = None
        for i in range(last + 1):
            line = lines[i]
            if not line or line.isspace():
                continue
            try:
                event = loads(line)
                if not isinstance(event, dict):
                    raise ValueError("not a JSON object")
            except ValueError as err:
                if i == last:
                    self.warn(i + 1, f"skipped a torn last line ({len(line)} bytes; its writer was killed mid-write)")
                    break
                raise JournalError(
                    f"{self.source}:{i + 1}: not a journal event ({str(err).splitlines()[0][:80]}); the journal is "
                    "damaged in the middle: fix or delete that line, later events depend on it"
                ) from None
            self.chain.check(event, previous, i + 1)
            previous = line
            count += 1
            version = event.get("v", JOURNAL_VERSION)
            if isinstance(version, int) and version > JOURNAL_VERSION:
                raise JournalError(
                    f"{self.source}:{i + 1}: journal format v{version} is newer than this autoresearch-jupyter "
                    f"reads (v{JOURNAL_VERSION}): upgrade it to read this run"
                )
            kind = event.get("event")
            handler = handlers.get(kind) if isinstance(kind, str) else None
            if handler is None:
                self.warn(i + 1, f"skipped an event of unknown kind {kind!r}")
                continue
            t = event.get("t", t)
            problem = handler(event)
            if problem:
                self.warn(i + 1, problem)
        if self.dropped_warnings:
            self.warnings.append(f"{self.source}: ... and {self.dropped_warnings} more warnings")
        return self.result(count, t)

    def result(self, count: int, updated_at: float | None) -> Replay:
        if self.last_run in ("run_started", "run_resumed"):
            alive = self.live if self.live is not None else pid_alive(self.pid, self.host, since=self.run_t)
            state = "running" if alive else "interrupted"
            finished_at, reason = None, None
        elif self.last_run == "run_finished":
            state, finished_at, reason = self.end_state or "failed", self.finished_at, self.reason
        else:  # nodes but no run event: nothing is writing it
            state, finished_at, reason = "interrupted", None, None
        return Replay(
            tree=self.tree, events_count=count, state=state, warnings=self.warnings,
            started_at=self.started_at, finished_at=finished_at, pid=self.pid, host=self.host,
            reason=reason, resumes=self.resumes, updated_at=updated_at,
            summary=self.summary if state == self.end_state else None,
            verified=self.chain.verified(count),
        )

    # node events

    def node_created(self, event: dict[str, Any]) -> str | None:
        data = event.get("node")
        if not isinstance(data, dict):
            return "skipped a node_created event without a node"
        try:
            node = node_from_dict(data)
        except (KeyError, TypeError, ValueError) as err:
            return f"skipped a malformed node ({type(err).__name__}: {err})"
        if node.id in self.tree.nodes:
            return f"skipped a second node {node.id}"
        if node.parent is not None and node.parent not in self.tree.nodes:
            return f"skipped node {node.id}: its parent {node.parent} is unknown"
        self.tree.add(node)
        return None

    def _node(self, event: dict[str, Any]) -> Node | str:
        node_id = event.get("id")
        node = self.tree.nodes.get(node_id) if type(node_id) is int else None
        return node if node is not None else f"skipped {event['event']} of unknown node {node_id!r}"

    def node_started(self, event: dict[str, Any]) -> str | None:
        node = self._node(event)
        if isinstance(node, str):
            return node
        node.status, node.started_at = Status.RUNNING, event.get("t")
        node.metric = node.kept = node.reason = None
        return None

    def node_finished(self, event: dict[str, Any]) -> str | None:
        node = self._node(event)
        if isinstance(node, str):
            return node
        fields = self._fields(event, FINISH_FIELDS)
        if isinstance(fields, str):
            return fields
        status = fields.get("status")
        if not isinstance(status, Status) or not status.is_finished():
            return f"skipped node_finished of node {node.id}: no finished status"
        fields.setdefault("finished_at", event.get("t"))
        self._apply(node, fields)
        return self._unknown(event)

    def node_updated(self, event: dict[str, Any]) -> str | None:
        node = self._node(event)
        if isinstance(node, str):
            return node
        fields = self._fields(event, UPDATE_FIELDS)
        if isinstance(fields, str):
            return fields
        self._apply(node, fields)
        if isinstance(event.get("fields"), dict) and "status" in event["fields"]:
            return f"ignored a status change of node {node.id} in node_updated"
        return self._unknown(event)

    def _fields(self, event: dict[str, Any], allowed: frozenset[str]) -> dict[str, Any] | str:
        """The event's fields converted to node values, or why the whole event is skipped."""
        raw = event.get("fields")
        if not isinstance(raw, dict):
            return f"skipped {event['event']} of node {event.get('id')}: no fields"
        out: dict[str, Any] = {}
        try:
            for key, value in raw.items():
                if key not in allowed:
                    continue
                if key == "status":
                    value = Status(value)
                elif key == "operator":
                    value = Operator(value)
                elif key == "usage" and value is not None:
                    value = usage_from_dict(value)
                elif key == "meta" and not isinstance(value, dict):
                    raise ValueError("meta must be an object")
                out[key] = value
        except (TypeError, ValueError) as err:
            return f"skipped {event['event']} of node {event.get('id')}: {err}"
        return out

    def _unknown(self, event: dict[str, Any]) -> str | None:
        new = set(event["fields"]) - NODE_FIELDS - self.unknown_fields
        if not new:
            return None
        self.unknown_fields |= new
        return f"ignored unknown node field(s) {', '.join(sorted(new))} (written by a newer version?)"

    @staticmethod
    def _apply(node: Node, fields: dict[str, Any]) -> None:
        for key, value in fields.items():
            if key == "meta":
                node.meta = {**node.meta, **value}
            else:
                setattr(node, key, value)

    # run events

    def run_started(self, event: dict[str, Any]) -> str | None:
        kind = event["event"]
        self.last_run, self.run_t = kind, event.get("t")
        if self.started_at is None:
            self.started_at = self.run_t
        if kind == "run_resumed":
            self.resumes += 1
        pid, host = event.get("pid"), event.get("host")
        self.pid = pid if type(pid) is int else None
        self.host = host if isinstance(host, str) else None
        return None

    def run_finished(self, event: dict[str, Any]) -> str | None:
        self.last_run, self.finished_at = "run_finished", event.get("t")
        state, reason, summary = event.get("state"), event.get("reason"), event.get("summary")
        self.reason = reason if isinstance(reason, str) else None
        self.summary = summary if isinstance(summary, dict) else None
        if state in RUN_END_STATES:
            self.end_state = state
            return None
        self.end_state = "failed"
        return f"run_finished with unknown state {state!r} read as failed"


# ---- is the writer still alive? -------------------------------------------------------------


def pid_alive(pid: int | None, host: str | None, *, since: float | None = None) -> bool:
    """False if we can tell that the process that wrote the run is gone; True if alive or unknown.

    Only a process on this host can be checked. On Linux a pid that was reused by a process
    started after ``since`` (the run event's time) counts as gone, and so does a zombie.
    """
    if pid is None or pid <= 0:
        return False
    if host is not None and host != socket.gethostname():
        return True
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        pass
    except OSError:
        return False
    stat = _proc_stat(pid)
    if stat is not None:
        state, start = stat
        if state == "Z" or (since is not None and start > since + _PID_REUSE_SLACK):
            return False
    return True


@functools.lru_cache(maxsize=1)
def _boot_time() -> float | None:
    try:
        with open("/proc/stat", "rb") as f:
            for line in f:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def _proc_stat(pid: int) -> tuple[str, float] | None:
    """(state letter, start time as epoch seconds) of a process, from /proc; None elsewhere."""
    boot = _boot_time()
    if boot is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
        fields = raw[raw.rindex(b")") + 2 :].split()  # after "pid (comm) ": field 3 onwards
        return fields[0].decode(), boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
