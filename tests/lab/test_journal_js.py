"""static/journal.js against the Python it mirrors: the same runs give the same records and header.

journal.js replays a run folder in the browser (the extension's sidebar and run view); its records
must be viewstate.node_record's and its header viewstate.run_meta's, from journal.py's replay.
Runs under Node.js, no browser.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch_jupyter.store.journal import Journal, load_journal
from autoresearch_jupyter.core.node import Node, Operator, Status, Usage
from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.store.runs import RunDir
from autoresearch_jupyter.report.views import node_record, run_meta

ROOT = Path(__file__).resolve().parents[2]
JOURNAL_JS = ROOT / "autoresearch_jupyter" / "report" / "static" / "journal.js"
NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed")

LOAD = """
import { loadRun, replayJournal, nodeCell } from %s;
import fs from "fs";
const [dir, id] = process.argv.slice(1);
const read = (name) => fs.readFileSync(`${dir}/${name}`, "utf8");
try {
  const run = loadRun({ id, runJson: read("run.json"), journal: read("journal.jsonl") });
  console.log(JSON.stringify({ meta: run.meta, records: run.records, state: run.state, warnings: run.warnings }));
} catch (err) {
  console.log(JSON.stringify({ error: `${err.name}: ${err.message}` }));
}
"""


def js_load(run_dir: Path) -> dict:
    script = LOAD % json.dumps(JOURNAL_JS.as_uri())
    done = subprocess.run([NODE, "--input-type=module", "-e", script, str(run_dir), run_dir.name],
                          capture_output=True, text=True, check=True, timeout=60)
    return json.loads(done.stdout)


def python_view(run_dir: Path) -> tuple[dict, list[dict], str]:
    run = RunDir.open(run_dir)
    replay = load_journal(run.journal_path)
    tree = replay.tree
    meta = run_meta(tree, run.protocol, run_id=run.id, state=replay.state, reason=replay.reason,
                    steps=run.settings.get("steps"), max_time=run.settings.get("max_time"),
                    started=replay.started_at, finished=replay.finished_at)
    return meta, [node_record(n, tree.nodes) for n in tree], replay.state


def assert_same(run_dir: Path) -> dict:
    js = js_load(run_dir)
    assert "error" not in js, js
    meta, records, state = python_view(run_dir)
    assert js["state"] == state
    assert {k: v for k, v in js["meta"].items() if k != "now"} == {k: v for k, v in meta.items() if k != "now"}
    tree = load_journal(run_dir / "journal.jsonl").tree
    assert len(js["records"]) == len(records)
    for mine, theirs in zip(js["records"], records):
        assert mine.pop("code") == tree[mine["id"]].code  # whole code, where Python may send line edits
        mine.pop("v")
        assert mine == {k: v for k, v in theirs.items() if k not in ("code", "edits", "v")}
    return js


def test_a_cli_run_with_kept_reverted_and_failed_nodes(tmp_path):
    script = tmp_path / "train.py"
    script.write_text("lr = 0.1\ndepth = 3\nassert depth > 1, 'too shallow'\nprint(f'acc: {0.5 + lr * depth:.4f}')\n")
    subprocess.run([sys.executable, "-m", "autoresearch_jupyter", "run", str(script), "--metric", "acc", "--maximize",
                    "--steps", "8", "--warm", "off", "--runs-dir", str(tmp_path / "runs")],
                   check=True, capture_output=True, timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})
    (run_dir,) = (tmp_path / "runs").iterdir()
    js = assert_same(run_dir)
    assert js["meta"]["done"] == 8 and js["meta"]["nodes"] >= 9  # ablation runs come on top
    assert {r["kind"] for r in js["records"]} >= {"kept", "reverted"}


def test_every_event_kind_nan_usage_caps_and_a_live_run(tmp_path):
    protocol = Protocol(metric="loss", maximize=False, time_budget=30)
    run = RunDir.create(tmp_path / "runs", name="odd", protocol=protocol, settings={"steps": 5, "max_time": 100.0},
                        source="/somewhere/nb.ipynb")
    code = "x = 1\n" + "".join(f"y{i} = {i}\n" for i in range(50))
    with Journal(run.journal_path, durable=False) as journal:
        journal.run_started()
        journal.node_created(Node(0, None, Operator.BASELINE, "baseline", code, created_at=1.0))
        journal.node_started(0)
        journal.node_finished(0, status=Status.OK, metric=2.0, kept=True, output_tail="loss: 2\n" * 2000, exec_time=0.5)
        journal.node_created(Node(1, 0, Operator.IMPROVE, "p" * 5000, code.replace("x = 1", "x = 2"),
                                  diff="@@ -1 +1 @@\n-x = 1\n+x = 2\n" + "+z\n" * 9000))
        journal.node_started(1)
        journal.node_finished(1, status=Status.OK, metric=1.5, kept=True, usage=Usage(10, 5, 0.01))
        journal.node_updated(1, meta={"note": "backtracked here"})
        journal.node_created(Node(2, 1, Operator.IMPROVE, "nan", code + "nan\n"))
        journal.node_started(2)
        journal.node_finished(2, status=Status.BUGGY, metric=math.nan, kept=False, reason="r" * 3000, exit_code=1)
        journal.node_created(Node(3, 1, Operator.DEBUG, "running", code + "z = 3\n", usage=Usage(3, 4)))
        journal.node_started(3)
        journal.node_created(Node(4, 0, Operator.DRAFT, "rejected", "print(1)\n"))
        journal.node_finished(4, status=Status.REJECTED, reason="duplicate of node 1")
    js = assert_same(run.path)  # the writer (this process) is alive: "running" on both sides
    assert js["state"] == "running"
    assert js["meta"]["tokens"] == {"prompt": 13, "completion": 9, "total": 22, "cost": 0.01}
    assert js["meta"]["best_id"] == 1 and js["meta"]["improvement"] == 0.5


def test_a_torn_last_line_is_skipped_and_a_damaged_middle_is_an_error(tmp_path):
    protocol = Protocol(metric="m", maximize=True)
    run = RunDir.create(tmp_path / "runs", protocol=protocol, settings={})
    with Journal(run.journal_path, durable=False) as journal:
        journal.node_created(Node(0, None, Operator.BASELINE, "baseline", "print(1)\n"))
        journal.node_finished(0, status=Status.OK, metric=1.0, kept=True)
        journal.run_finished("finished", "done")
    with open(run.journal_path, "a") as f:
        f.write('{"event": "node_created", "v": 1, "node": {"id": 1')
    js = assert_same(run.path)
    assert any("torn last line" in w for w in js["warnings"])
    lines = run.journal_path.read_text().splitlines()
    run.journal_path.write_text("\n".join([lines[0], "{oops", *lines[1:-1]]) + "\n")
    assert js_load(run.path)["error"].startswith("JournalError: ")


def test_node_cell_drops_the_notebook_setup_and_adds_provenance():
    from autoresearch_jupyter.notebook.code import build_script

    script = build_script(cell="lr = 0.5\nprint(lr)\n", setup="import os\n")
    code = f"""
        import {{ nodeCell }} from {json.dumps(JOURNAL_JS.as_uri())};
        console.log(JSON.stringify([
          nodeCell({{ code: {json.dumps(script)}, runId: "r1", nodeId: 3, metricName: "acc", metric: 0.912345678 }}),
          nodeCell({{ code: "#!/usr/bin/env python\\nprint(2)\\n\\n", nodeId: 0 }}),
        ]));
    """
    done = subprocess.run([NODE, "--input-type=module", "-e", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == [
        "# autoresearch run r1, node 3 (acc 0.912346)\nlr = 0.5\nprint(lr)",
        "# autoresearch node 0\nprint(2)",
    ]
