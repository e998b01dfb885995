"""Importing an AIDE journal.json, and the shared diff helper."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from autoresearch_jupyter.importers.aide import import_aide, parse_aide
from autoresearch_jupyter.core.diffs import diff_stats, unified_diff
from autoresearch_jupyter.core.errors import JournalError
from autoresearch_jupyter.core.node import Operator, Status
from autoresearch_jupyter.store.runs import RunNameError, list_runs, resolve_run

BASE = "import numpy as np\nlr = 0.1\nprint('metric:', 0.80)\n"


def aide_node(uid: str, step: int, code: str, metric: float | None, *, maximize: bool | None = True,
              buggy: bool = False, exc_type: str | None = None, analysis: str = "", plan: str = "") -> dict[str, Any]:
    """One node as AIDE 0.2 serialises it (the parent lives in node2parent, not here)."""
    return {
        "code": code, "plan": plan or f"plan of {uid}", "step": step, "id": uid, "ctime": 1_700_000_000.0 + step * 10,
        "parent": None, "children": [], "_term_out": [f"step {step}\n", "Execution time: 1 second.\n"],
        "exec_time": 1.5 + step, "exc_type": exc_type, "exc_info": {"args": ["boom"]} if exc_type else None,
        "exc_stack": [["train.py", 3, "<module>", "x"]] if exc_type else None, "analysis": analysis,
        "metric": {"value": metric, "maximize": maximize if metric is not None else None}, "is_buggy": buggy,
    }


def aide_journal() -> dict[str, Any]:
    """Two drafts (one buggy), a debug fix, an improve that is worse, a timeout, and a third draft."""
    nodes = [
        aide_node("a0", 0, BASE, 0.80, analysis="solid baseline"),
        aide_node("b1", 1, "import torch\nmodel = Net()\n1/0\n", None, buggy=True, exc_type="ZeroDivisionError",
                  analysis="divides by zero"),
        aide_node("c2", 2, "import torch\nmodel = Net()\nprint('metric:', 0.85)\n", 0.85, analysis="fixed"),
        aide_node("d3", 3, BASE.replace("0.1", "0.3"), 0.78, analysis="worse"),
        aide_node("e4", 4, "import torch\nmodel = Net()\ntrain(forever=True)\n", None, buggy=True,
                  exc_type="TimeoutError", analysis="ran out of time"),
        aide_node("f5", 5, "from sklearn import svm\nprint('metric:', 0.9)\n", 0.90, maximize=False,
                  analysis="the model thought lower is better"),
    ]
    shuffled = [nodes[i] for i in (3, 0, 5, 1, 4, 2)]  # the list order is not the step order
    return {"nodes": shuffled, "node2parent": {"c2": "b1", "d3": "a0", "e4": "c2"}, "__version": "2"}


@pytest.fixture
def journal_json(tmp_path: Path) -> Path:
    path = tmp_path / "journal.json"
    path.write_text(json.dumps(aide_journal()))
    return path


def test_tree_shape_operators_statuses_metrics_and_kept() -> None:
    aide = parse_aide(aide_journal(), metric="accuracy")
    assert aide.protocol.metric == "accuracy" and aide.protocol.maximize is True  # from the first metric
    nodes = {n.id: n for n in aide.nodes}
    assert [n.id for n in aide.nodes] == [0, 1, 2, 3, 4, 5]
    assert [nodes[i].meta["aide_id"] for i in range(6)] == ["a0", "b1", "c2", "d3", "e4", "f5"]
    assert {i: nodes[i].parent for i in range(6)} == {0: None, 1: 0, 2: 1, 3: 0, 4: 2, 5: 0}
    assert [nodes[i].operator for i in range(6)] == [
        Operator.BASELINE, Operator.DRAFT, Operator.DEBUG, Operator.IMPROVE, Operator.IMPROVE, Operator.DRAFT,
    ]
    assert [nodes[i].status for i in range(6)] == [
        Status.OK, Status.BUGGY, Status.OK, Status.OK, Status.TIMEOUT, Status.OK,
    ]
    assert [nodes[i].metric for i in range(6)] == [0.80, None, 0.85, 0.78, None, 0.90]
    # kept: better than the nearest working ancestor (the debug fix is measured against node 0)
    assert [nodes[i].kept for i in range(6)] == [True, False, True, False, False, True]
    assert nodes[1].reason == "ZeroDivisionError: divides by zero"
    assert nodes[4].reason == "TimeoutError: ran out of time"
    assert nodes[5].meta["aide_maximize"] is False  # AIDE's model flipped the direction here
    assert "aide_maximize" not in nodes[2].meta and nodes[0].meta["aide_operator"] == "draft"
    assert nodes[0].diff == "" and "-lr = 0.1\n+lr = 0.3\n" in nodes[3].diff
    assert nodes[2].diff.startswith("--- node 1\n+++ node 2\n")
    assert nodes[3].output_tail == "step 3\nExecution time: 1 second.\n"
    assert (nodes[3].created_at, nodes[3].exec_time, nodes[3].finished_at) == (1_700_000_030.0, 4.5, 1_700_000_034.5)


def test_import_makes_a_normal_run(journal_json: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    run = import_aide(journal_json, runs, name="aide-run", metric="accuracy")
    assert run.name == "aide-run" and run.protocol.maximize is True and run.source == str(journal_json)
    assert run.settings["imported_from"] == "aide" and run.settings["aide_version"] == "2"
    replay = run.load()
    assert replay.warnings == [] and replay.state == "finished" and "imported from AIDE" in (replay.reason or "")
    expected = {n.id: n for n in parse_aide(aide_journal(), metric="accuracy").nodes}
    assert {n.id: n for n in replay.tree} == expected  # the journal replays to exactly the parsed nodes
    assert replay.tree.best(run.protocol).id == 5
    for i in range(6):
        assert run.script_path(i).read_text() == expected[i].code
        assert run.output_path(i).read_text().startswith(f"step {i}\n")
    [summary] = list_runs(runs)
    assert (summary.state, summary.nodes, summary.best_metric, summary.baseline_metric) == ("finished", 6, 0.90, 0.80)
    assert resolve_run(runs, "aide-run").id == run.id
    with pytest.raises(RunNameError):
        import_aide(journal_json, runs, name="aide-run")


def test_direction_override_and_nan_metric(tmp_path: Path) -> None:
    data = aide_journal()
    aide = parse_aide(data, maximize=False)
    kept = {n.meta["aide_id"]: n.kept for n in aide.nodes}
    assert kept["d3"] is True and kept["c2"] is False  # lower is better now
    data["nodes"] = [aide_node("a0", 0, BASE, math.nan), aide_node("b1", 1, BASE + "# more\n", 0.5)]
    data["node2parent"] = {"b1": "a0"}
    nodes = parse_aide(data).nodes
    assert nodes[0].status is Status.BUGGY and math.isnan(nodes[0].metric) and "non-finite" in nodes[0].reason
    assert nodes[1].operator is Operator.DEBUG and nodes[1].kept is True


@pytest.mark.parametrize(
    "content, message",
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not AIDE's journal.json"),
        ('{"nodes": []}', "no nodes"),
        ('{"nodes": [{"id": "a"}]}', "needs a string 'id' and 'code'"),
        ('{"nodes": [{"id": "a", "code": ""}], "node2parent": {"a": "zz"}}', "parent zz is not in the journal"),
        ('{"nodes": [{"id": "a", "code": "", "step": 0}, {"id": "b", "code": "", "step": 1}], '
         '"node2parent": {"a": "b"}}', "comes before its parent"),
        ('{"nodes": [{"id": "a", "code": ""}], "node2parent": []}', "'node2parent' is not an object"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "journal.json"
    path.write_text(content)
    with pytest.raises(JournalError, match=message) as info:
        import_aide(path, tmp_path / "runs")
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    assert list_runs(tmp_path / "runs") == []  # nothing half-imported


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="nothere.json: no such file"):
        import_aide(tmp_path / "nothere.json", tmp_path / "runs")


def test_unified_diff() -> None:
    assert unified_diff("a\n", "a\n") == ""
    diff = unified_diff("a\nb\n", "a\nc\n", "node 0", "node 1")
    assert diff == "--- node 0\n+++ node 1\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
    no_newline = unified_diff("x = 1", "x = 2")
    assert no_newline.endswith("+x = 2\n\\ No newline at end of file\n")
    assert all(line for line in no_newline.split("\n")[:-1])  # every line is whole
    assert diff_stats(diff) == (1, 1)
    assert diff_stats(unified_diff("--x\n", "++y\nz\n")) == (2, 1)  # code lines that look like headers
