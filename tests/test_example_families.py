"""The per-family example notebooks (PyTorch, LightGBM, latency, memory, text F1), run headless.

Each one runs in a real kernel through nbclient, as Run All would, with the offline proposer and a
small budget; each must finish, improve its metric over the baseline, and (where it has one) end
with a best node that meets its constraint while at least one node was ruled out by it. The
kernelspec fixture and helpers are those of test_notebooks.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("sklearn")

import nbclient  # noqa: E402
import nbformat  # noqa: E402
from test_notebooks import EXAMPLES, KERNEL, cell_with, kernel_env, outputs_text, tree_views  # noqa: E402,F401

from autoresearch_jupyter.core.node import Status  # noqa: E402
from autoresearch_jupyter.store.runs import RunDir, list_runs  # noqa: E402

pytestmark = pytest.mark.slow

WALL_LIMIT = 300  # seconds; each takes well under a minute on 2 idle cores, the slack is for a loaded machine


def execute(name: str, workdir: Path) -> nbformat.NotebookNode:
    """Run a copy of ``example_notebooks/<name>`` in ``workdir`` and save it, as a user would."""
    (workdir / name).write_bytes((EXAMPLES / name).read_bytes())
    nb = nbformat.read(workdir / name, as_version=4)
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=WALL_LIMIT, store_widget_state=True,
                                     resources={"metadata": {"path": str(workdir)}})
    client.execute()
    nbformat.write(nb, workdir / name)
    return nb


def finished_run(tmp_path: Path, nb) -> RunDir:
    """The notebook's single run: finished, no cell errors, the best better than the baseline."""
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", [])), [
        outputs_text(c) for c in nb.cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))
    ]
    [summary] = list_runs(tmp_path / ".autoresearch")
    assert summary.state == "finished"
    run = RunDir.open(Path(summary.path))
    tree, protocol = run.load().tree, run.protocol
    best, base = tree.best(protocol), tree.root
    assert best is not None and base is not None and best.id != base.id
    assert protocol.improves(best.metric, base.metric), (best.metric, base.metric)
    assert "## Summary" in outputs_text(nb.cells[-1])  # `%autoresearch report`
    assert len(tree_views(nb)) == 1
    for node in tree:  # the runner measured every node that ran
        if node.status.has_result():
            assert node.measured["time"] >= 0 and node.measured["peak_memory"] > 0
    return run


def test_pytorch_mlp(kernel_env, tmp_path):
    pytest.importorskip("torch")
    nb = execute("pytorch_mlp.ipynb", tmp_path)
    run = finished_run(tmp_path, nb)
    best = run.load().tree.best(run.protocol)
    assert {"train_loss", "val_loss", "val_acc"} <= set(best.metrics)  # secondary metrics recorded
    assert "best node metrics:" in outputs_text(cell_with(nb, "run = autoresearch_run"))


def test_lightgbm_boosting(kernel_env, tmp_path):
    pytest.importorskip("lightgbm")
    nb = execute("lightgbm_boosting.ipynb", tmp_path)
    run = finished_run(tmp_path, nb)
    assert run.protocol.constraints == ("val_auc>=0.95",)
    best = run.load().tree.best(run.protocol)
    assert best.metrics["val_auc"] >= 0.95


def test_latency_under_an_accuracy_constraint(kernel_env, tmp_path):
    nb = execute("latency.ipynb", tmp_path)
    run = finished_run(tmp_path, nb)
    tree = run.load().tree
    best = tree.best(run.protocol)
    assert run.protocol.metric == "time" and best.metric == best.measured["time"]
    assert best.metrics["rel_error"] < 1e-9
    assert any(n.status is Status.INFEASIBLE and "rel_error" in n.reason for n in tree)
    assert "rel_error<1e-9 (ruled out" in outputs_text(nb.cells[-1])


def test_accuracy_under_a_memory_budget(kernel_env, tmp_path):
    nb = execute("memory_budget.ipynb", tmp_path)
    run = finished_run(tmp_path, nb)
    tree = run.load().tree
    best = tree.best(run.protocol)
    assert best.measured["peak_memory"] < 240 * 2**20
    over = [n for n in tree if n.status is Status.INFEASIBLE]
    assert over and all(n.measured["peak_memory"] >= 240 * 2**20 for n in over)
    assert "peak_memory<240M (ruled out" in outputs_text(nb.cells[-1])


def test_text_f1(kernel_env, tmp_path):
    nb = execute("text_f1.ipynb", tmp_path)
    run = finished_run(tmp_path, nb)
    best = run.load().tree.best(run.protocol)
    assert {"precision", "recall", "f1"} <= set(best.metrics) and best.metric == best.metrics["f1"]


def test_jax_softmax(kernel_env, tmp_path):
    pytest.importorskip("jax")
    nb = execute("jax_softmax.ipynb", tmp_path)
    run = finished_run(tmp_path, nb)
    best = run.load().tree.best(run.protocol)
    assert {"train_loss", "val_acc"} <= set(best.metrics)
