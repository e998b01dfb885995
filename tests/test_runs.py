"""The runs directory: create, open, list, resolve; corrupt and interrupted runs."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch_jupyter.core.errors import AutoResearchError, JournalError, RunNotFoundError
from autoresearch_jupyter.store.journal import Journal
from autoresearch_jupyter.core.node import Node, Operator, Status
from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.store.runs import RunDir, RunNameError, list_runs, resolve_run, summarize

PROTOCOL = Protocol(metric="val_acc", maximize=True, time_budget=30, seed=7)
SETTINGS = {"steps": 5, "proposer": {"name": "mutate"}, "where": Path("data")}


def make_run(runs: Path, name: str | None = None, metrics: tuple[float, ...] = (), *, summary: bool = True,
             finished: bool = True) -> RunDir:
    """A run with a baseline and one child per metric after the first."""
    run = RunDir.create(runs, name=name, protocol=PROTOCOL, settings=SETTINGS, source="notebook.ipynb")
    protocol = run.protocol
    with run.journal() as j:
        j.run_started()
        best = None
        for i, metric in enumerate(metrics):
            parent = None if i == 0 else 0
            op = Operator.BASELINE if parent is None else Operator.IMPROVE
            node = Node(id=i, parent=parent, operator=op, plan="p", code=f"x = {i}\n")
            run.write_node_script(i, node.code)
            j.node_created(node)
            j.node_started(i)
            kept = i == 0 or best is None or protocol.improves(metric, best)
            j.node_finished(i, status=Status.OK, metric=metric, kept=kept)
            best = metric if best is None or metric > best else best
        if finished:
            replay = run.load()
            j.run_finished("finished", "budget spent", summary=summarize(replay.tree, protocol) if summary else None)
    return run


def test_create_writes_run_json_and_open_reads_it(tmp_path: Path) -> None:
    runs = tmp_path / ".autoresearch"
    run = RunDir.create(runs, name="mnist lr", protocol=PROTOCOL, settings=SETTINGS, source="nb.ipynb")
    assert re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", run.id)
    assert run.path == runs / run.id
    info = json.loads((run.path / "run.json").read_text())
    assert set(info) == {"version", "id", "name", "created_at", "protocol", "settings", "source"}
    assert (info["version"], info["id"], info["name"], info["source"]) == (1, run.id, "mnist lr", "nb.ipynb")
    assert info["settings"]["where"] == "data"  # a Path setting is written as text, not a crash
    assert run.journal_path.read_bytes() == b"" and (run.path / "nodes").is_dir()
    assert [p.name for p in run.path.iterdir() if p.name.startswith(".")] == []  # no temp files left

    opened = RunDir.open(run.path)
    assert opened.protocol == PROTOCOL
    assert (opened.id, opened.name, opened.source) == (run.id, "mnist lr", "nb.ipynb")
    assert opened.settings == {"steps": 5, "proposer": {"name": "mutate"}, "where": "data"}
    assert opened.load().tree.nodes == {} and opened.load().state == "interrupted"


def test_node_paths(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, protocol=PROTOCOL, settings={})
    assert run.script_path(3) == run.path / "nodes" / "3" / "train.py"
    assert not run.script_path(3).parent.exists()  # only a path
    assert run.node_dir(3).is_dir()
    written = run.write_node_script(4, "print('hi')\n")
    assert written == run.script_path(4) and written.read_text() == "print('hi')\n"
    assert run.output_path(4).name == "output.log" and run.result_path(4).name == "result.json"
    assert run.best_path == run.path / "best.py"


def test_names_are_unique_and_not_reserved(tmp_path: Path) -> None:
    first = RunDir.create(tmp_path, name="exp", protocol=PROTOCOL, settings={})
    with pytest.raises(RunNameError, match="already exists") as info:
        RunDir.create(tmp_path, name="exp", protocol=PROTOCOL, settings={})
    assert first.id in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, AutoResearchError)
    for bad in ("latest", "LAST", "", " padded", "two\nlines", "x" * 101):
        with pytest.raises(RunNameError):
            RunDir.create(tmp_path, name=bad, protocol=PROTOCOL, settings={})
    assert len(list_runs(tmp_path)) == 1  # failed creations leave nothing behind


def test_list_runs_reports_state_nodes_and_metrics(tmp_path: Path) -> None:
    fast = make_run(tmp_path, "fast", (0.80, 0.85, 0.83))
    slow = make_run(tmp_path, "slow", (0.70, 0.90), summary=False)
    live = make_run(tmp_path, "live", (0.60,), finished=False)
    listed = list_runs(tmp_path)
    assert [r.id for r in listed] == [fast.id, slow.id, live.id]  # oldest first
    by_name = {r.name: r for r in listed}
    assert (by_name["fast"].state, by_name["fast"].nodes) == ("finished", 3)
    assert (by_name["fast"].best_metric, by_name["fast"].best_id, by_name["fast"].baseline_metric) == (0.85, 1, 0.80)
    assert (by_name["slow"].state, by_name["slow"].best_metric, by_name["slow"].baseline_metric) == ("finished", 0.90, 0.70)
    assert (by_name["live"].state, by_name["live"].nodes) == ("running", 1)  # this process wrote it
    assert all(r.metric == "val_acc" and r.maximize is True and r.direction == "maximize" for r in listed)
    assert all(r.error is None and r.created_at for r in listed)


def test_the_summary_shortcut_agrees_with_a_replay(tmp_path: Path) -> None:
    run = make_run(tmp_path, "x", (0.5, 0.4, 0.7, 0.6))
    shortcut = run.summary()
    journal = run.journal_path.read_text().splitlines()
    last = json.loads(journal[-1])
    last["summary"] = None  # force the full replay
    run.journal_path.write_text("\n".join(journal[:-1] + [json.dumps(last)]) + "\n")
    assert run.summary() == shortcut


def test_interrupted_run(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, name="killed", protocol=PROTOCOL, settings={})
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    event = {"event": "run_started", "v": 1, "t": 1.0, "pid": proc.pid, "host": socket.gethostname()}
    run.journal_path.write_text(json.dumps(event) + "\n")
    assert run.load().state == "interrupted"
    assert list_runs(tmp_path)[0].state == "interrupted"
    with Journal(run.journal_path) as j:  # resume in this process
        j.run_resumed()
    assert run.load().state == "running" and run.load().resumes == 1


def test_corrupt_runs_are_listed_not_fatal(tmp_path: Path) -> None:
    good = make_run(tmp_path, "good", (0.5,))
    bad_json = make_run(tmp_path, "bad-json", (0.5,))
    (bad_json.path / "run.json").write_text("{truncated")
    no_json = tmp_path / "20000101-000000-dead"
    no_json.mkdir()
    bad_journal = make_run(tmp_path, "bad-journal", (0.5, 0.6), finished=False)
    lines = bad_journal.journal_path.read_text().splitlines()
    lines[2] = "{garbage"
    bad_journal.journal_path.write_text("\n".join(lines) + "\n")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "stray.txt").write_text("not a run")

    listed = {r.id: r for r in list_runs(tmp_path)}
    assert set(listed) == {good.id, bad_json.id, no_json.name, bad_journal.id}
    assert listed[good.id].state == "finished"
    for rid in (bad_json.id, no_json.name, bad_journal.id):
        assert listed[rid].state == "corrupt" and listed[rid].error and "\n" not in listed[rid].error
    assert "run.json" in listed[bad_json.id].error and "missing" in listed[no_json.name].error
    assert ":3:" in listed[bad_journal.id].error

    with pytest.raises(JournalError, match="damaged") as info:
        resolve_run(tmp_path, bad_json.id)
    assert "\n" not in str(info.value)
    with pytest.raises(JournalError, match="missing"):
        resolve_run(tmp_path, no_json.name)
    (bad_json.path / "run.json").write_text(json.dumps({"version": 1, "protocol": {"metric": "", "maximize": True}}))
    with pytest.raises(JournalError, match="invalid protocol"):
        RunDir.open(bad_json.path)


def test_resolve_by_id_name_prefix_and_latest(tmp_path: Path) -> None:
    a = make_run(tmp_path, "alpha", (0.1,))
    b = make_run(tmp_path, "beta", (0.2,))
    c = make_run(tmp_path, None, (0.3,))
    assert resolve_run(tmp_path, a.id).path == a.path
    assert resolve_run(tmp_path, "beta").path == b.path
    assert resolve_run(tmp_path, "latest").path == c.path
    assert resolve_run(tmp_path, " last ").path == c.path
    ids = [a.id, b.id, c.id]
    unique = next(c.id[:k] for k in range(1, len(c.id) + 1) if sum(i.startswith(c.id[:k]) for i in ids) == 1)
    assert resolve_run(tmp_path, unique).path == c.path
    assert resolve_run(None, str(b.path)).path == b.path  # a path to a run folder works too

    # two runs made in the same second share a long prefix: a short one is ambiguous
    shared = a.id[:8]
    assert b.id.startswith(shared)
    with pytest.raises(RunNotFoundError, match="ambiguous") as info:
        resolve_run(tmp_path, shared)
    assert a.id in str(info.value) and "\n" not in str(info.value)

    with pytest.raises(RunNotFoundError) as info:
        resolve_run(tmp_path, "gamma")
    message = str(info.value)
    assert "no run 'gamma'" in message and "alpha" in message and c.id in message and "\n" not in message

    with pytest.raises(RunNotFoundError, match="no runs directory"):
        resolve_run(tmp_path / "nowhere", "latest")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunNotFoundError, match="no runs"):
        resolve_run(tmp_path / "empty", "latest")
    assert list_runs(tmp_path / "nowhere") == []


def test_default_runs_dir_is_relative_to_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = RunDir.create(None, protocol=PROTOCOL, settings={})
    assert run.path.parent.resolve() == (tmp_path / ".autoresearch").resolve()
    assert [r.id for r in list_runs()] == [run.id]
    assert resolve_run(None, "latest").id == run.id
