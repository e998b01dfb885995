"""The runs as the JupyterLab extension gets them (lab/views.py): the widget's records, incrementally.

The extension does not replay journals: the server sends the records ``report.views`` builds from
``store.journal``'s replay. These tests read runs made by the real CLI and by a real journal
writer, and check the records, the header and the ``since`` cursor.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys

from autoresearch_jupyter.core.node import Node, Operator, Status, Usage
from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.lab.views import RunViews
from autoresearch_jupyter.report.views import node_record, run_meta
from autoresearch_jupyter.store.journal import Journal, load_journal
from autoresearch_jupyter.store.runs import RunDir


def python_view(run_dir):
    """What the widget shows for this run: the records and header of its replayed journal."""
    run = RunDir.open(run_dir)
    replay = load_journal(run.journal_path)
    meta = run_meta(replay.tree, run.protocol, run_id=run.id, state=replay.state, reason=replay.reason,
                    steps=run.settings.get("steps"), max_time=run.settings.get("max_time"),
                    started=replay.started_at, finished=replay.finished_at)
    return meta, [node_record(n, replay.tree.nodes) for n in replay.tree]


def without(record: dict, *keys: str) -> dict:
    return {k: v for k, v in record.items() if k not in keys}


def assert_same(views: RunViews, run_dir) -> dict:
    data = views.view(run_dir)
    assert data["error"] is None and data["full"] is True
    meta, records = python_view(run_dir)
    assert without(data["view"]["meta"], "now") == without(meta, "now")
    assert [without(r, "v") for r in data["records"]] == [without(r, "v") for r in records]
    return data


def test_a_cli_run_with_kept_reverted_and_failed_nodes(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("lr = 0.1\ndepth = 3\nassert depth > 1, 'too shallow'\nprint(f'acc: {0.5 + lr * depth:.4f}')\n")
    subprocess.run([sys.executable, "-m", "autoresearch_jupyter", "run", str(script), "--metric", "acc", "--maximize",
                    "--steps", "8", "--warm", "off", "--runs-dir", str(tmp_path / "runs")],
                   check=True, capture_output=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    (run_dir,) = (tmp_path / "runs").iterdir()
    views = RunViews()
    data = assert_same(views, run_dir)
    assert data["view"]["state"] == "finished" and not data["view"]["live"]
    assert data["view"]["meta"]["done"] == 8 and data["view"]["meta"]["nodes"] >= 9  # ablation runs on top
    assert {r["kind"] for r in data["records"]} >= {"kept", "reverted"}
    summary, error = views.summary(run_dir)
    assert error is None and summary == data["view"]


def test_only_what_changed_since_the_cursor_comes_again(tmp_path):
    protocol = Protocol(metric="loss", maximize=False, time_budget=30)
    run = RunDir.create(tmp_path / "runs", name="odd", protocol=protocol, settings={"steps": 5, "max_time": 100.0},
                        source="/somewhere/nb.ipynb")
    code = "x = 1\n" + "".join(f"y{i} = {i}\n" for i in range(50))
    views = RunViews()
    with Journal(run.journal_path, durable=False) as journal:
        journal.run_started()
        journal.node_created(Node(0, None, Operator.BASELINE, "baseline", code, created_at=1.0))
        journal.node_started(0)
        first = assert_same(views, run.path)
        assert [r["status"] for r in first["records"]] == ["running"]
        assert first["view"]["state"] == "running" and first["view"]["live"]  # its writer (this process) lives
        # nothing new: nothing comes again
        again = views.view(run.path, first["cursor"])
        assert again["full"] is False and again["records"] == [] and again["cursor"] == first["cursor"]
        journal.node_finished(0, status=Status.OK, metric=2.0, kept=True, output_tail="loss: 2\n" * 2000, exec_time=0.5)
        journal.node_created(Node(1, 0, Operator.IMPROVE, "p" * 5000, code.replace("x = 1", "x = 2"),
                                  diff="@@ -1 +1 @@\n-x = 1\n+x = 2\n" + "+z\n" * 9000))
        journal.node_started(1)
        journal.node_finished(1, status=Status.OK, metric=1.5, kept=True, usage=Usage(10, 5, 0.01))
        journal.node_updated(1, meta={"note": "backtracked here"})
        second = views.view(run.path, first["cursor"])
        assert second["full"] is False and [r["id"] for r in second["records"]] == [0, 1]
        journal.node_created(Node(2, 1, Operator.IMPROVE, "nan", code + "nan\n"))
        journal.node_started(2)
        journal.node_finished(2, status=Status.BUGGY, metric=math.nan, kept=False, reason="r" * 3000, exit_code=1)
        journal.node_created(Node(3, 1, Operator.DEBUG, "running", code + "z = 3\n", usage=Usage(3, 4)))
        journal.node_started(3)
        journal.node_created(Node(4, 0, Operator.DRAFT, "rejected", "print(1)\n"))
        journal.node_finished(4, status=Status.REJECTED, reason="duplicate of node 1")
        third = views.view(run.path, second["cursor"])
        assert [r["id"] for r in third["records"]] == [2, 3, 4]
        # the records the client now holds are exactly the widget's
        held = {r["id"]: r for batch in (first, second, third) for r in batch["records"]}
        meta, records = python_view(run.path)
        assert [without(held[r["id"]], "v") for r in records] == [without(r, "v") for r in records]
        assert without(third["view"]["meta"], "now") == without(meta, "now")
        assert meta["tokens"] == {"prompt": 13, "completion": 9, "total": 22, "cost": 0.01}
        assert meta["best_id"] == 1 and meta["improvement"] == 0.5
        # a cursor from another server (or a restarted one) gets everything again
        other = views.view(run.path, "feedbeef:1")
        assert other["full"] is True and len(other["records"]) == 5
        assert RunViews().view(run.path, third["cursor"])["full"] is True
    # the journal replaced by a shorter one: a new epoch, everything again
    lines = run.journal_path.read_bytes().splitlines(keepends=True)
    run.journal_path.write_bytes(b"".join(lines[:3]))
    shorter = views.view(run.path, third["cursor"])
    assert shorter["full"] is True and [r["id"] for r in shorter["records"]] == [0]
    assert shorter["cursor"].split(":")[0] != third["cursor"].split(":")[0]


def test_a_dead_writer_reads_as_interrupted_without_a_new_event(tmp_path):
    run = RunDir.create(tmp_path / "runs", protocol=Protocol(metric="m", maximize=True), settings={})
    writer = (
        "import sys\nfrom autoresearch_jupyter.store.journal import Journal\n"
        "with Journal(sys.argv[1], durable=False) as j:\n    j.run_started()\n"
    )
    subprocess.run([sys.executable, "-c", writer, str(run.journal_path)], check=True, timeout=60)
    summary, error = RunViews().summary(run.path)
    assert error is None and summary["state"] == "interrupted" and summary["live"] is False


def test_a_torn_last_line_is_skipped_and_a_damaged_middle_is_one_line(tmp_path):
    protocol = Protocol(metric="m", maximize=True)
    run = RunDir.create(tmp_path / "runs", protocol=protocol, settings={})
    with Journal(run.journal_path, durable=False) as journal:
        journal.node_created(Node(0, None, Operator.BASELINE, "baseline", "print(1)\n"))
        journal.node_finished(0, status=Status.OK, metric=1.0, kept=True)
        journal.run_finished("finished", "done")
    with open(run.journal_path, "a") as f:
        f.write('{"event": "node_created", "v": 1, "node": {"id": 1')
    views = RunViews()
    data = assert_same(views, run.path)
    assert any("torn last line" in w for w in data["view"]["warnings"])
    lines = run.journal_path.read_text().splitlines()
    run.journal_path.write_text("\n".join([lines[0], "{oops", *lines[1:-1]]) + "\n")
    broken = views.view(run.path, data["cursor"])
    assert broken["view"] is None and "damaged in the middle" in broken["error"]
    assert "\n" not in broken["error"]
    assert views.summary(run.path) == (None, broken["error"])
