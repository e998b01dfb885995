"""The journal: round trips, torn tails, damaged middles, run state, and any-prefix consistency."""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autoresearch_jupyter.store import journal as journal_mod
from autoresearch_jupyter.core.errors import JournalError
from autoresearch_jupyter.store.journal import Journal, load_journal, replay_bytes
from autoresearch_jupyter.core.node import Node, Operator, Status, Usage


def node(node_id: int, parent: int | None, **kw) -> Node:
    op = Operator.BASELINE if parent is None else Operator.IMPROVE
    kw.setdefault("plan", f"plan {node_id}")
    return Node(id=node_id, parent=parent, operator=op, code=f"x = {node_id}\n", **kw)


def finish(j: Journal, node_id: int, status: Status = Status.OK, metric: float | None = 0.5,
           t: float | None = None, **kw) -> None:
    fields = dict(status=status, metric=metric, kept=True, reason=None, exit_code=0, exec_time=1.25,
                  output_tail="done\n", finished_at=123.0)
    fields.update(kw)
    j.node_finished(node_id, t=t, **fields)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# ---- round trip -------------------------------------------------------------------------------


def test_round_trip_of_every_event_type(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    code = "print('é ✓ \u2028 line separator inside a string')\n"  # must not split a line
    with Journal(path) as j:
        j.run_started(t=10.0)
        j.node_created(Node(0, None, Operator.BASELINE, "baseline", code, created_at=11.0, meta={"seed": 0}), t=11.0)
        j.node_started(0, t=12.0)
        finish(j, 0, metric=0.75)
        j.node_created(node(1, 0, usage=Usage(prompt_tokens=120, completion_tokens=30, cost=0.002), meta={"move": "lr"}))
        j.node_started(1, t=14.0)
        finish(j, 1, status=Status.BUGGY, metric=math.nan, kept=False, reason="non-finite metric nan", exit_code=0)
        j.node_updated(1, meta={"note": "diverged", "inf": -math.inf})
        j.node_updated(1, meta={"move": "lr*10"}, reason="non-finite metric nan (lr too high)")
        rejected = node(2, 1, status=Status.REJECTED, reason="duplicate", finished_at=15.0)
        j.node_created(rejected)
        j.run_finished("stopped", "interrupted by the user", t=20.0)
        j.run_resumed(t=30.0)
        j.run_finished("finished", None, summary={"nodes": 3}, t=40.0)

    for line in path.read_text(encoding="utf-8").split("\n")[:-1]:
        event = json.loads(line)  # strict JSON: no NaN literal anywhere
        assert event["v"] == 1 and isinstance(event["t"], float) and event["event"]
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()

    replay = load_journal(path)
    assert replay.warnings == []
    assert replay.events_count == 13
    assert (replay.state, replay.reason, replay.resumes) == ("finished", None, 1)
    assert (replay.started_at, replay.finished_at, replay.updated_at) == (10.0, 40.0, 40.0)
    assert (replay.pid, replay.host) == (os.getpid(), socket.gethostname())
    assert replay.summary == {"nodes": 3}
    tree = replay.tree
    assert [n.id for n in tree] == [0, 1, 2] and tree.children == {0: [1], 1: [2], 2: []}
    root = tree[0]
    assert root.code == code and root.meta == {"seed": 0}
    assert (root.status, root.metric, root.kept, root.exit_code) == (Status.OK, 0.75, True, 0)
    assert (root.exec_time, root.output_tail, root.started_at, root.finished_at) == (1.25, "done\n", 12.0, 123.0)
    n1 = tree[1]
    assert n1.status is Status.BUGGY and math.isnan(n1.metric) and n1.kept is False
    assert n1.usage == Usage(prompt_tokens=120, completion_tokens=30, cost=0.002)
    assert n1.meta == {"move": "lr*10", "note": "diverged", "inf": -math.inf}  # meta merges
    assert n1.reason == "non-finite metric nan (lr too high)"
    assert tree[2].status is Status.REJECTED and tree[2].reason == "duplicate"


def test_node_dict_matches_node_to_dict() -> None:
    n = node(3, 1, usage=Usage(1, 2, None), meta={"a": [1, 2]}, metric=0.1)
    assert journal_mod.node_dict(n) == n.to_dict()
    assert journal_mod.node_from_dict(n.to_dict()) == n


def test_writer_rejects_events_the_reader_would_skip(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.jsonl") as j:
        with pytest.raises(ValueError, match="finished status"):
            j.node_finished(0, metric=1.0)
        with pytest.raises(ValueError, match="finished status"):
            j.node_finished(0, status=Status.RUNNING)
        with pytest.raises(ValueError, match="cannot set status"):
            j.node_updated(0, status=Status.OK)
        with pytest.raises(ValueError, match="cannot set colour"):
            j.node_updated(0, colour="red")
        with pytest.raises(ValueError, match="run state"):
            j.run_finished("done")
        with pytest.raises(ValueError, match="kind"):
            j.append({"t": 1.0})
    with pytest.raises(ValueError, match="closed"):
        j.node_started(0)
    assert (tmp_path / "j.jsonl").read_bytes() == b""


def test_odd_values_in_meta_do_not_crash_a_search(tmp_path: Path) -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<thing>"

    with Journal(tmp_path / "j.jsonl") as j:
        j.node_created(node(0, None, meta={"path": Path("a/b"), "tags": {"x"}, "obj": Thing(), "op": Operator.DEBUG}))
    assert load_journal(tmp_path / "j.jsonl").tree[0].meta == {"path": "a/b", "tags": ["x"], "obj": "<thing>", "op": "debug"}


def test_threads_append_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "j.jsonl"
    with Journal(path) as j:
        j.node_created(node(0, None))

        def worker(k: int) -> None:
            for i in range(200):
                j.node_updated(0, meta={f"w{k}": i}, plan="p" * (i * 37 % 5000))

        threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    replay = load_journal(path)
    assert replay.events_count == 801 and replay.warnings == []
    assert replay.tree[0].meta == {"w0": 199, "w1": 199, "w2": 199, "w3": 199}


# ---- durability policy --------------------------------------------------------------------------


def test_fsync_policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(journal_mod.os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])

    with Journal(tmp_path / "a.jsonl", sync_interval=0) as j:  # strict: every node_finished
        j.run_started()
        for i in range(5):
            j.node_created(node(i, None if i == 0 else 0))
            j.node_started(i)
            finish(j, i)
        assert len(calls) == 1 + 5
    assert len(calls) == 6  # nothing owed at close

    calls.clear()
    with Journal(tmp_path / "b.jsonl", sync_interval=0.2) as j:  # grouped
        j.run_started()
        for i in range(50):
            j.node_created(node(i, None if i == 0 else 0))
            finish(j, i)
        assert len(calls) <= 3  # run_started, the first node_finished, maybe one timer
        deadline = time.monotonic() + 3
        while j._dirty and time.monotonic() < deadline:  # the timer pays what is owed
            time.sleep(0.02)
        assert not j._dirty

    calls.clear()
    with Journal(tmp_path / "c.jsonl", durable=False) as j:
        j.run_started()
        finish(j, 0)
        j.run_finished("finished")
    assert calls == []


# ---- torn and damaged files ---------------------------------------------------------------------


def write_small_run(path: Path) -> bytes:
    with Journal(path) as j:
        j.run_started()
        j.node_created(node(0, None))
        j.node_started(0)
        finish(j, 0, metric=0.5)
        j.node_created(node(1, 0))
        j.node_started(1)
    return path.read_bytes()


def test_torn_last_line_is_skipped_then_repaired_on_open(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    data = write_small_run(path)
    torn = b'{"event":"node_finished","v":1,"t":5.0,"id":1,"fields":{"status":"ok","met'
    path.write_bytes(data + torn)

    replay = load_journal(path)
    assert len(replay.warnings) == 1 and "torn last line" in replay.warnings[0]
    assert replay.warnings[0].startswith(f"{path}:7:")
    assert replay.tree[1].status is Status.RUNNING  # its finish was lost
    assert replay.events_count == 6

    with Journal(path) as j:  # kill -9, then resume: the torn tail goes, new events are not glued
        assert j.repaired is not None and "torn" in j.repaired
        assert path.read_bytes() == data
        finish(j, 1, metric=0.7)
    replay = load_journal(path)
    assert replay.warnings == []
    assert (replay.tree[1].status, replay.tree[1].metric) == (Status.OK, 0.7)


def test_whole_last_event_without_newline_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    data = write_small_run(path)
    path.write_bytes(data[:-1])  # only the newline is missing
    assert load_journal(path).warnings == [] and load_journal(path).tree[1].status is Status.RUNNING
    with Journal(path) as j:
        assert j.repaired == "the last event had no newline: added one"
        finish(j, 1)
    assert path.read_bytes().startswith(data)
    assert load_journal(path).tree[1].status is Status.OK


def test_torn_line_longer_than_the_repair_chunk(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    data = write_small_run(path)
    path.write_bytes(data + b'{"event":"node_created","v":1,"node":{"code":"' + b"x" * 200_000)
    with Journal(path) as j:
        assert "torn" in (j.repaired or "")
    assert path.read_bytes() == data


def test_garbage_in_the_middle_is_an_error_with_the_line_number(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    lines = write_small_run(path).split(b"\n")
    lines[2] = b"{not json"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(JournalError) as info:
        load_journal(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3: ") and "\n" not in message
    assert "fix or delete that line" in message


def test_missing_journal_and_newer_format(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no journal"):
        load_journal(tmp_path / "nope.jsonl")
    newer = b'{"event":"run_started","v":2,"t":1.0,"pid":1,"host":"h"}\n'
    with pytest.raises(JournalError, match="newer"):
        replay_bytes(newer)


def test_events_about_unknown_nodes_are_skipped_with_warnings() -> None:
    lines = [
        {"event": "node_created", "v": 1, "t": 1.0, "node": node(0, None).to_dict()},
        {"event": "node_created", "v": 1, "t": 1.0, "node": node(5, 4).to_dict()},  # unknown parent
        {"event": "node_created", "v": 1, "t": 1.0, "node": node(0, None).to_dict()},  # duplicate
        {"event": "node_created", "v": 1, "t": 1.0, "node": {"id": "x"}},  # malformed
        {"event": "node_started", "v": 1, "t": 2.0, "id": 9},
        {"event": "node_finished", "v": 1, "t": 3.0, "id": 9, "fields": {"status": "ok"}},
        {"event": "node_finished", "v": 1, "t": 3.0, "id": 0, "fields": {"status": "weird"}},
        {"event": "node_finished", "v": 1, "t": 3.0, "id": 0, "fields": {"metric": 1.0}},
        {"event": "node_updated", "v": 1, "t": 3.0, "id": 0, "fields": {"status": "ok", "plan": "new"}},
        {"event": "node_updated", "v": 1, "t": 3.0, "id": 0, "fields": {"future_field": 1}},
        {"event": "telemetry", "v": 1, "t": 4.0},
        {"event": "run_finished", "v": 1, "t": 5.0, "state": "exploded"},
    ]
    replay = replay_bytes(b"".join(json.dumps(e).encode() + b"\n" for e in lines), source="j")
    assert list(replay.tree.nodes) == [0]
    root = replay.tree[0]
    assert root.status is Status.PENDING and root.plan == "new"
    assert replay.state == "failed"
    assert len(replay.warnings) == 11
    assert all(w.startswith("j:") for w in replay.warnings)
    assert any("its parent 4 is unknown" in w for w in replay.warnings)
    assert any("future_field" in w for w in replay.warnings)


# ---- run state ----------------------------------------------------------------------------------


def run_events(pid: int, host: str, t: float, finished: bool = False) -> bytes:
    events = [{"event": "run_started", "v": 1, "t": t, "pid": pid, "host": host}]
    if finished:
        events.append({"event": "run_finished", "v": 1, "t": t + 1, "state": "finished", "reason": None})
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


def test_run_state_running_interrupted_finished() -> None:
    host, now = socket.gethostname(), time.time()
    assert replay_bytes(run_events(os.getpid(), host, now)).state == "running"
    interrupted = replay_bytes(run_events(dead_pid(), host, now))
    assert interrupted.state == "interrupted" and interrupted.finished_at is None
    assert replay_bytes(run_events(dead_pid(), "another-host", now)).state == "running"  # cannot tell
    assert replay_bytes(run_events(dead_pid(), host, now, finished=True)).state == "finished"
    assert replay_bytes(b"").state == "interrupted"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc")
def test_a_reused_pid_counts_as_interrupted() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        host, now = socket.gethostname(), time.time()
        assert replay_bytes(run_events(proc.pid, host, now)).state == "running"
        # the run was written long before this process started: the pid is someone else's now
        assert replay_bytes(run_events(proc.pid, host, now - 3600)).state == "interrupted"
    finally:
        proc.kill()
        proc.wait()


# ---- any prefix loads to a consistent tree ------------------------------------------------------

STATUSES_DONE = [Status.OK, Status.BUGGY, Status.TIMEOUT, Status.CANCELLED]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_prefix_loads_to_a_consistent_tree(data: st.DataObject) -> None:
    plans = st.text(alphabet="ab é✓\n\"\\\u2028", max_size=12)
    metrics = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5))
    written: list[tuple[str, dict]] = []  # (kind, info) per journal line, in order
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.jsonl"
        offsets = [0]
        with Journal(path, sync_interval=60) as j:
            j.run_started(t=1.0)
            written.append(("run", {"state": "running"}))
            offsets.append(path.stat().st_size)
            pending: list[int] = []
            running: list[int] = []
            ids: list[int] = []
            for step in range(data.draw(st.integers(1, 25), label="steps")):
                choices = ["create"] + ["start"] * bool(pending) + ["finish"] * bool(running)
                choices += ["update"] * bool(ids) + ["run"]
                action = data.draw(st.sampled_from(choices), label="action")
                if action == "create":
                    new = len(ids)
                    parent = None if new == 0 else data.draw(st.sampled_from(ids), label="parent")
                    rejected = new > 0 and data.draw(st.booleans(), label="rejected")
                    n = node(new, parent, plan=data.draw(plans, label="plan"),
                             status=Status.REJECTED if rejected else Status.PENDING)
                    j.node_created(n, t=float(step))
                    ids.append(new)
                    (pending if not rejected else []).append(new)
                    written.append(("created", {"id": new, "parent": parent, "done": rejected}))
                elif action == "start":
                    nid = data.draw(st.sampled_from(pending), label="start")
                    pending.remove(nid)
                    running.append(nid)
                    j.node_started(nid, t=float(step))
                    written.append(("started", {"id": nid}))
                elif action == "finish":
                    nid = data.draw(st.sampled_from(running), label="finish")
                    running.remove(nid)
                    status = data.draw(st.sampled_from(STATUSES_DONE), label="status")
                    metric = data.draw(metrics, label="metric")
                    finish(j, nid, status=status, metric=metric, t=float(step))
                    written.append(("finished", {"id": nid, "status": status, "metric": metric}))
                elif action == "update":
                    nid = data.draw(st.sampled_from(ids), label="update")
                    note = data.draw(plans, label="note")
                    j.node_updated(nid, meta={"note": note})
                    written.append(("updated", {"id": nid, "note": note}))
                else:
                    state = data.draw(st.sampled_from(["finished", "stopped", "resumed"]), label="run")
                    if state == "resumed":
                        j.run_resumed(t=float(step))
                    else:
                        j.run_finished(state, "why", t=float(step))
                    written.append(("run", {"state": "running" if state == "resumed" else state}))
                offsets.append(path.stat().st_size)
        blob = path.read_bytes()
        assert load_journal(path).warnings == []

        boundaries = {o for o in offsets} | {o - 1 for o in offsets[1:]}
        fractions = data.draw(st.lists(st.floats(0, 1), max_size=40), label="cuts")  # lengths vary
        cuts = boundaries | {int(f * len(blob)) for f in fractions}
        for cut in sorted(cuts):
            replay = replay_bytes(blob[:cut])
            complete = [k for k in range(len(written)) if offsets[k + 1] - 1 <= cut]  # newline optional
            check_prefix(replay, [written[k] for k in complete], torn=cut not in boundaries)

        # a writer killed at a random byte, then resumed: the next event is not glued to the tail
        cut = int(data.draw(st.floats(0, 1), label="kill at") * len(blob))
        path.write_bytes(blob[:cut])
        with Journal(path) as j:
            j.run_resumed()
        replay = load_journal(path)
        assert replay.warnings == [] and replay.state == "running"
        assert replay.events_count == sum(1 for k in range(len(written)) if offsets[k + 1] - 1 <= cut) + 1


def check_prefix(replay, events: list[tuple[str, dict]], *, torn: bool) -> None:
    tree = replay.tree
    created = [info for kind, info in events if kind == "created"]
    assert sorted(tree.nodes) == [info["id"] for info in created]
    for n in tree:
        assert n.parent is None or (n.parent in tree and n.parent < n.id)
        assert isinstance(n.status, Status)
    # a node is finished only if its finish (or a finished creation) is in the prefix
    expected: dict[int, tuple[Status, object]] = {}
    meta: dict[int, dict] = {}
    for kind, info in events:
        if kind == "created":
            expected[info["id"]] = (Status.REJECTED if info["done"] else Status.PENDING, None)
        elif kind == "started":
            expected[info["id"]] = (Status.RUNNING, None)
        elif kind == "finished":
            expected[info["id"]] = (info["status"], info["metric"])
        elif kind == "updated":
            meta.setdefault(info["id"], {})["note"] = info["note"]
    for nid, (status, metric) in expected.items():
        assert tree[nid].status is status
        got = tree[nid].metric
        if isinstance(metric, float) and math.isnan(metric):
            assert math.isnan(got)
        else:
            assert got == metric
        assert tree[nid].meta == meta.get(nid, {})
    runs = [info["state"] for kind, info in events if kind == "run"]
    assert replay.state == (runs[-1] if runs else "interrupted")
    assert len(replay.warnings) == (1 if torn else 0)
