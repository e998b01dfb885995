"""The tree view of a run graded by a separate evaluator, in a real browser: the inspector says
which number is graded, shows the ignored self-reported one, the holdout score and the evaluator's
output (the same treeview.js as the widget and the JupyterLab run view)."""

from __future__ import annotations

from pathlib import Path

from autoresearch_jupyter.core.node import Node, Operator, Status
from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.core.tree import Tree
from autoresearch_jupyter.report.views import standalone_html
from autoresearch_jupyter.store.journal import load_journal

PROTOCOL = Protocol(metric="val_acc", maximize=True)


def graded_tree(tmp_path: Path) -> Tree:
    """A real graded run: its journal replayed (baseline, one kept, one the evaluator refused)."""
    from autoresearch_jupyter.evaluation import build_spec
    from autoresearch_jupyter.engine.search import Search

    code = "import random\nx = 0.5\nopen('out.txt', 'w').write(str(x))\nprint('val_acc: 1.0')\n"
    evaluator = "import os\nx = float(open('out.txt').read())\nassert x < 5, 'too large'\nprint(f'val_acc: {x / 10}')\n"
    settings = {"steps": 0, "eval": build_spec(code=evaluator, source="e.py").to_settings()}
    outcome = Search(code=code, protocol=PROTOCOL, runs_dir=tmp_path, settings=settings).run()
    tree = load_journal(outcome.run_dir / "journal.jsonl").tree
    child = Node(id=1, parent=0, operator=Operator.IMPROVE, plan="x = 50", code=code.replace("0.5", "50"),
                 status=Status.EVAL_FAILED, reason="the evaluator failed: AssertionError: too large",
                 meta={"graded": True, "self_reported": 1.0, "eval": {"state": "failed", "tail": "AssertionError"}})
    tree.add(child)
    return tree


def test_inspector_shows_graded_self_reported_and_evaluator_output(page, tmp_path) -> None:
    tree = graded_tree(tmp_path)
    page.set_content(standalone_html(tree, PROTOCOL, state="finished", run_id="graded", steps=1))
    page.wait_for_selector('.ar-row[data-id="0"]')
    page.locator('.ar-row[data-id="0"]').click(position={"x": 60, "y": 10})
    page.wait_for_selector(".ar-insp .ar-graded")
    text = page.inner_text(".ar-insp")
    assert "graded by the evaluator · self-reported 1 (ignored)" in text
    assert "val_acc 0.05" in text and "Evaluator output (end)" in text
    page.locator(".ar-fold input").first.uncheck()  # a failed leaf is folded away by default
    page.wait_for_selector('.ar-row[data-id="1"]')
    failed = page.locator('.ar-row[data-id="1"]')
    assert "ar-k-eval_failed" in failed.get_attribute("class") and "evaluator failed" in failed.inner_text()
