"""The report, its JSON envelope, and exported scripts/cells, on hand-built trees."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from autoresearch_jupyter.report import export
from autoresearch_jupyter.core.errors import AutoResearchError, NodeNotFoundError
from autoresearch_jupyter.core.node import Node, Operator, Status, Usage
from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.core.tree import Tree

IMPROVE = Operator.IMPROVE


from trees import add, sample_tree, script  # noqa: E402


MAX = Protocol(metric="val_acc", maximize=True, time_budget=60, seed=7)


def test_report_numbers() -> None:
    r = export.build_report(sample_tree(), MAX, run_id="r1", run_name="demo", state="finished")
    assert r.experiments == 9
    assert r.counts == {"pending": 0, "running": 0, "ok": 5, "buggy": 2, "timeout": 1,
                        "rejected": 1, "cancelled": 0, "infeasible": 0}
    assert (r.kept, r.reverted) == (2, 3)
    assert r.branches == 6  # leaves 1, 3, 4, 7, 8, 9
    assert r.max_depth == 3
    assert r.backtracks == 1  # node 8; drafts/debug never count
    assert (r.baseline_id, r.baseline_metric) == (0, 0.80)
    assert (r.best_id, r.best_metric) == (6, 0.90)
    assert r.improvement == pytest.approx(0.10) and r.improvement_rel == pytest.approx(0.125)
    assert [(s.node_id, s.operator, s.metric) for s in r.best_path] == [
        (0, "baseline", 0.80), (5, "improve", 0.85), (6, "improve", 0.90)]
    assert [s.delta for s in r.best_path] == [None, 0.05, 0.05]  # rounded, no float noise
    assert r.best_path[1].plan == "add dropout"
    groups = {g.reason: (g.count, g.node_ids) for g in r.failures}
    assert groups == {
        "ZeroDivisionError: division by zero": (2, (2, 9)),
        "timeout": (1, (3,)),
        "rejected: duplicate of node N": (1, (4,)),
    }
    assert r.failures[0].reason.startswith("ZeroDivisionError")  # most frequent first
    assert [(c.node_id, c.delta) for c in r.reverted_changes] == [(1, 0.03), (7, -0.02), (8, 0.02)]
    assert r.usage is None


def test_report_minimize_best_is_lowest() -> None:
    t = Tree()
    add(t, 0, None, Status.OK, 0.50, op=Operator.BASELINE)
    add(t, 1, 0, Status.OK, 0.40, kept=True)
    add(t, 2, 1, Status.OK, 0.45, kept=False)
    add(t, 3, 1, Status.OK, 0.30, kept=True)
    r = export.build_report(t, Protocol(metric="val_loss", maximize=False))
    assert (r.best_id, r.best_metric) == (3, 0.30)
    assert r.improvement == pytest.approx(0.20)  # positive means better, whatever the direction
    assert r.improvement_rel == pytest.approx(0.40)
    assert [s.delta for s in r.best_path] == [None, -0.1, -0.1]
    assert r.backtracks == 0


def test_report_zero_baseline_failed_baseline_and_usage() -> None:
    t = Tree()
    add(t, 0, None, Status.OK, 0.0, op=Operator.BASELINE, usage=Usage(10, 5, 0.25))
    add(t, 1, 0, Status.OK, 0.5, kept=True, usage=Usage(100, 50))
    r = export.build_report(t, MAX)
    assert r.improvement == 0.5 and r.improvement_rel is None
    assert r.usage == export.UsageTotals(nodes=2, prompt_tokens=110, completion_tokens=55,
                                         total_tokens=165, cost=0.25)
    assert "165 tokens" in export.render_report_text(r)

    bad = Tree()
    add(bad, 0, None, Status.BUGGY, op=Operator.BASELINE, reason="no metric: ...")
    r = export.build_report(bad, MAX)
    assert r.experiments == 0 and r.best_id is None and r.baseline_metric is None
    assert r.improvement is None and r.best_path == () and r.branches == 0
    assert "no node has a usable metric" in export.render_report_text(r)


def test_backtracks_meta_wins_and_timestamps_spare_parallel_siblings() -> None:
    t = Tree()
    add(t, 0, None, Status.OK, 0.8, op=Operator.BASELINE, created_at=0.0, finished_at=1.0)
    # two workers expand the baseline at once; node 1 finishes first and becomes the best
    add(t, 1, 0, Status.OK, 0.9, kept=True, created_at=1.0, finished_at=5.0)
    add(t, 2, 0, Status.OK, 0.85, kept=True, created_at=1.1, finished_at=6.0)
    add(t, 3, 2, Status.OK, 0.86, kept=True, created_at=7.0, finished_at=8.0)  # best was 1: backtrack
    assert export.count_backtracks(t, MAX) == 1
    t[3].meta["backtrack"] = False
    t[2].meta["backtrack"] = True
    assert export.count_backtracks(t, MAX) == 1
    t[1].created_at = None  # without timestamps, id order: node 2 (from 0 after 1 was kept) counts
    del t[2].meta["backtrack"]
    assert export.count_backtracks(t, MAX) == 1


def test_failure_reason_normalises() -> None:
    n = Node(id=1, parent=0, operator=IMPROVE, plan="", code="", status=Status.BUGGY,
             reason="IndexError: index 12 is out of bounds for axis 0 with size 3\nmore")
    assert export.failure_reason(n) == "IndexError: index N is out of bounds for axis N with size N"
    n.reason = None
    n.output_tail = "Traceback (most recent call last):\n  ...\nKeyError: 'float32'\n"
    assert export.failure_reason(n) == "KeyError: 'float32'"
    n.output_tail, n.exit_code = "", 3
    assert export.failure_reason(n) == "exit code N"


def test_report_text_mentions_the_essentials() -> None:
    text = export.render_report_text(export.build_report(sample_tree(), MAX, run_id="r1", state="finished"))
    for piece in ("run r1, state: finished", "maximize val_acc", "experiments: 9", "backtracks 1",
                  "best val_acc: 0.9 (node 6)", "+0.1 (+12.5%)", "node 6 improve: wider hidden layer",
                  "2x ZeroDivisionError: division by zero (nodes 2, 9)", "lower the learning rate"):
        assert piece in text, piece


def test_envelope_contract() -> None:
    env = export.report_envelope(export.build_report(sample_tree(), MAX, run_id="r1"))
    assert set(env) == {"report_result_version", "status", "exit_code", "data", "errors"}
    assert (env["report_result_version"], env["status"], env["exit_code"], env["errors"]) == (1, "ok", 0, [])
    assert set(env["data"]) == {
        "run_id", "run_name", "state", "metric", "direction", "time_budget", "seed", "experiments",
        "counts", "kept", "reverted", "branches", "max_depth", "backtracks", "baseline_id",
        "baseline_status", "baseline_metric", "best_id", "best_metric", "improvement",
        "improvement_rel", "best_path", "failures", "reverted_changes", "usage", "constraints",
        "baseline_values", "best_values", "trust"}
    assert set(env["data"]["best_path"][0]) == {"node_id", "operator", "plan", "metric", "delta"}
    assert set(env["data"]["failures"][0]) == {"reason", "count", "node_ids"}
    assert set(env["data"]["reverted_changes"][0]) == {"node_id", "parent", "plan", "metric", "delta"}
    text = export.to_json(env)
    assert json.loads(text) == json.loads(json.dumps(env))
    assert text == json.dumps(env, indent=2, sort_keys=True)
    assert export.to_json(export.UsageTotals(1, 2, 3, 5, None)).startswith("{\n  \"completion_tokens\": 3")


def test_export_script_header_body_and_it_runs(tmp_path) -> None:
    tree = sample_tree()
    text = export.export_script(tree, MAX, run_id="run-42")
    header, sep, body = text.partition("\n\n")
    assert body == tree[6].code  # the code, exactly
    assert all(line.startswith("#") for line in header.splitlines())
    for piece in ("autoresearch-jupyter", "run: run-42", "node: 6 (the best node)", "maximize val_acc",
                  "time budget 60 s", "seed 7", "val_acc 0.9 (baseline 0.8, improvement +0.1, +12.5%)"):
        assert piece in header, piece
    lineage = header.split("lineage (from the baseline):\n")[1].splitlines()
    assert [line.split()[1] for line in lineage] == ["0", "5", "6"]
    assert "wider hidden layer" in lineage[2] and "0.85" in lineage[1]
    path = tmp_path / "best.py"
    path.write_text(text)
    out = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=10)
    assert out.returncode == 0 and out.stdout.strip() == "val_acc: 0.9"


def test_export_script_keeps_future_imports_shebang_and_coding(tmp_path) -> None:
    tree = sample_tree()
    code = (
        '"""Doc."""\nfrom __future__ import annotations\n\n'
        'def f(x: Undefined) -> int: ...\nprint("val_acc: 0.9")\n'
    )
    text = export.export_script(tree, MAX, 6, source=code)
    assert text.endswith("\n\n" + code)
    compile(text, "best.py", "exec")  # a __future__ import after anything but comments is an error
    (tmp_path / "a.py").write_text(text)
    out = subprocess.run([sys.executable, str(tmp_path / "a.py")], capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "val_acc: 0.9", out.stderr

    code = "#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\nfrom __future__ import annotations\nprint(1)\n"
    text = export.export_script(tree, MAX, 6, source=code)
    assert text.startswith("#!/usr/bin/env python3\n# -*- coding: utf-8 -*-\n# Exported by")
    assert text.endswith("\n\nfrom __future__ import annotations\nprint(1)\n")
    compile(text, "best.py", "exec")
    assert export.export_script(tree, MAX, 6, source="#!/bin/python").startswith("#!/bin/python\n# ")


def test_export_other_nodes_unknown_and_multiline_plans() -> None:
    tree = sample_tree()
    tree[2].plan = "first line\nsecond line\r\nthird"
    text = export.export_script(tree, MAX, 2, run_id="r")
    assert "node: 2, improve, buggy, reverted" in text
    assert "status buggy: ZeroDivisionError: division by zero Traceback ..." in text
    assert "- this node has no usable val_acc" in text
    assert "first line second line third" in text
    compile(text, "x.py", "exec")
    with pytest.raises(NodeNotFoundError, match=r"^no node 99 in run r \(nodes 0-9\)$"):
        export.export_script(tree, MAX, 99, run_id="r")
    with pytest.raises(AutoResearchError):
        export.export_cell(tree, MAX, 99)
    empty = Tree()
    add(empty, 0, None, Status.BUGGY, op=Operator.BASELINE)
    with pytest.raises(NodeNotFoundError, match="no best node"):
        export.export_script(empty, MAX)
    empty[0].code = ""
    assert "this node has no code" in export.export_script(empty, MAX, 0)


def test_long_lineage_is_elided() -> None:
    t = Tree()
    add(t, 0, None, Status.OK, 0.0, op=Operator.BASELINE)
    for i in range(1, 300):
        add(t, i, i - 1, Status.OK, float(i), kept=True)
    header = export.export_script(t, MAX).partition("\n\n")[0]
    assert "... 260 more steps ..." in header and header.count("\n") < 60
    assert "299  improve" in header


def test_export_cell() -> None:
    tree = sample_tree()
    tree[6].code = "#!/usr/bin/env python\n" + tree[6].code
    cell = export.export_cell(tree, MAX, run_id="r1")
    head = cell.splitlines()[:3]
    assert all(line.startswith("# ") for line in head)
    assert "run r1, node 6" in head[0] and "val_acc 0.9" in head[0]
    assert head[2] == "# lineage: 0 (0.8) -> 5 (0.85) -> 6 (0.9)"
    assert "#!" not in cell and cell.endswith(script(0.9))


def test_render_node_text() -> None:
    tree = sample_tree()
    tree[6].diff = "-x = 0.85\n+x = 0.9\n"
    tree[6].output_tail = "epoch 1\nval_acc: 0.9\n"
    text = export.render_node_text(tree[6], tree, MAX)
    assert text.splitlines()[0] == "node 6 (improve, from 5) best"
    assert "val_acc: 0.9 (+0.05 vs parent)" in text and "+x = 0.9" in text and "epoch 1" in text
