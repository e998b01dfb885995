"""The run record: hash-chained journal, run.json pinned by it, one OS lock per run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch_jupyter.core.errors import JournalError, RunActiveError
from autoresearch_jupyter.core.node import Node, Operator, Status
from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.store.journal import Journal, line_hash, load_journal
from autoresearch_jupyter.store.lock import RunLock, is_locked
from autoresearch_jupyter.store.runs import RunDir

PROTOCOL = Protocol.for_script("print('m: 1')", metric="m", maximize=True)


def make_run(tmp_path: Path, nodes: int = 3) -> RunDir:
    run = RunDir.create(tmp_path / "runs", protocol=PROTOCOL, settings={})
    with run.journal() as journal:
        journal.run_started()
        for i in range(nodes):
            journal.node_created(Node(id=i, parent=None if i == 0 else 0, operator=Operator.BASELINE if i == 0
                                      else Operator.IMPROVE, plan="p", code=f"print('m: {i}')"))
            journal.node_finished(i, status=Status.OK, metric=float(i), kept=True)
        journal.run_finished("finished", "done")
    return run


def lines(run: RunDir) -> list[bytes]:
    return run.journal_path.read_bytes().splitlines()


def test_every_line_chains_to_the_one_before_and_the_first_pins_run_json(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    raw = lines(run)
    events = [json.loads(line) for line in raw]
    assert events[0]["prev"] == line_hash((run.path / "run.json").read_bytes()) == events[0]["run_json"]
    for before, event in zip(raw, events[1:]):
        assert event["prev"] == line_hash(before)
    replay = run.load()
    assert replay.verified and len(replay.tree) == 3


@pytest.mark.parametrize("edit", ["change", "delete", "insert", "swap"])
def test_any_modification_names_the_first_bad_line(tmp_path: Path, edit: str) -> None:
    run = make_run(tmp_path)
    raw = lines(run)
    if edit == "change":
        changed = raw[4].replace(b'"metric":1.0', b'"metric":9.0')
        assert changed != raw[4]
        raw[4] = changed
        bad = 6  # line 5 is modified; line 6 no longer follows it
    elif edit == "delete":
        del raw[2]
        bad = 3
    elif edit == "insert":
        raw.insert(4, json.dumps({"event": "node_updated", "v": 1, "t": 1.0, "id": 1, "fields": {"metric": 9.0},
                                  "prev": line_hash(raw[3])}).encode())
        bad = 6
    else:
        raw[2], raw[3] = raw[3], raw[2]
        bad = 3
    run.journal_path.write_bytes(b"\n".join(raw) + b"\n")
    with pytest.raises(JournalError, match=rf"journal.jsonl:{bad}: the run record was modified"):
        run.load()


def test_a_changed_run_json_is_refused(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    info = json.loads((run.path / "run.json").read_text())
    info["protocol"]["maximize"] = False
    (run.path / "run.json").write_text(json.dumps(info))
    with pytest.raises(JournalError, match="journal.jsonl:1: .*run.json"):
        load_journal(run.journal_path)


def test_a_torn_last_line_is_still_just_skipped_and_appending_continues_the_chain(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    with open(run.journal_path, "ab") as f:
        f.write(b'{"event":"node_upd')
    replay = run.load()
    assert replay.verified and any("torn last line" in w for w in replay.warnings)
    with run.journal() as journal:  # the next writer cuts the torn line and chains to the last whole one
        journal.run_resumed()
        journal.run_finished("finished", "again")
    assert run.load().verified and run.load().resumes == 1


def test_a_run_written_before_chaining_loads_unverified_and_resumes_chained(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    old = [json.loads(line) for line in lines(run)]
    for event in old:
        event.pop("prev"), event.pop("run_json", None)
    run.journal_path.write_text("".join(json.dumps(e) + "\n" for e in old))
    replay = run.load()
    assert not replay.verified and len(replay.tree) == 3
    with run.journal() as journal:
        journal.run_resumed()
    assert not run.load().verified  # its head is still unchained
    with open(run.journal_path, "a") as f:  # but once chained, an unchained line is refused
        f.write(json.dumps(old[-1]) + "\n")
    with pytest.raises(JournalError, match="carries no hash"):
        run.load()


def test_one_writer_per_run(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    assert is_locked(run.path) is None  # never locked: a run of an older version, judged by its pid
    lock = run.lock()
    assert is_locked(run.path) is True and run.load().state == "finished"
    with pytest.raises(RunActiveError, match="still running in another process"):
        RunLock(run.path).acquire()
    other = subprocess.run([sys.executable, "-c", (
        "import sys; from autoresearch_jupyter.store.lock import RunLock\n"
        "try:\n    RunLock(sys.argv[1]).acquire()\nexcept Exception as e:\n    print(e)\n"
    ), str(run.path)], capture_output=True, text=True)
    assert "still running in another process (pid" in other.stdout
    lock.release()
    assert is_locked(run.path) is False
    RunLock(run.path).acquire().release()


def test_a_killed_writer_releases_its_lock(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from autoresearch_jupyter.store.lock import RunLock\n"
        "lock = RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(60)"
    ), str(run.path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert is_locked(run.path) is True
    holder.kill()
    holder.wait()
    assert is_locked(run.path) is False


def test_a_legacy_run_resumes_and_gets_a_lock(tmp_path: Path) -> None:
    from autoresearch_jupyter.engine.search import Search

    run = make_run(tmp_path, nodes=1)
    old = [json.loads(line) for line in lines(run)]
    for event in old:
        event.pop("prev"), event.pop("run_json", None)
    old = [e for e in old if e["event"] != "run_finished"]  # it was interrupted; its writer (pid 0) is gone
    for event in old:
        if event["event"] == "run_started":
            event["pid"] = 0
    run.journal_path.write_text("".join(json.dumps(e) + "\n" for e in old))
    (run.path / ".lock").unlink(missing_ok=True)
    search = Search.resume(run, steps=0)
    assert is_locked(run.path) is True  # held from resume on
    search._run_lock.release()
