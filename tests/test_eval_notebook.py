"""``%%autoresearch_eval --use y_val`` in a real kernel, executed headless by nbclient (Run All).

The labels exist only in the kernel; the evaluator gets them through ``<run>/eval/use.pkl``, the
nodes get only ``X_train, y_train, X_val`` and claim a perfect score that changes nothing.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from test_notebooks import KERNEL, kernel_env, outputs_text  # noqa: E402,F401 - the fixture

from autoresearch_jupyter.core.node import Status  # noqa: E402
from autoresearch_jupyter.store.runs import RunDir, list_runs  # noqa: E402

pytestmark = pytest.mark.slow

CELLS = [
    "%load_ext autoresearch_jupyter",
    """import numpy as np
rng = np.random.default_rng(5)
w_true = rng.normal(size=6)
X = rng.normal(size=(400, 6))
y = (X @ w_true + 0.8 * rng.normal(size=400) > 0).astype(np.int64)
X_train, y_train, X_val, y_val = X[:200], y[:200], X[200:], y[200:]
np.save("X_holdout.npy", rng.normal(size=(5, 6)))""",
    '''%%autoresearch_eval --use y_val --holdout X_holdout.npy
"""Accuracy of preds.npy (0/1 per validation row) against labels only the evaluator has."""
import os
import numpy as np
if os.environ["AUTORESEARCH_EVAL_SPLIT"] == "holdout":
    X_h = np.load(os.path.join(os.environ["AUTORESEARCH_HOLDOUT"], "X_holdout.npy"))
    w = np.load("weights.npy")
    print(f"val_acc: {float((X_h @ w > 0).mean())}")
else:
    pred = np.load("preds.npy", allow_pickle=False)
    print(f"val_acc: {(pred == y_val).mean()}")''',
    """%%autoresearch --metric val_acc --maximize --steps 3 --use X_train,y_train,X_val
import numpy as np
lam = 300.0
w = np.linalg.solve(X_train.T @ X_train + lam * np.eye(6), X_train.T @ (2 * y_train - 1))
np.save("preds.npy", (X_val @ w > 0).astype(np.int64))
np.save("weights.npy", w)
print("val_acc: 1.0")""",
    "print(autoresearch_run.report())\nautoresearch_run.export('best.py')",
    "%%autoresearch_eval --use nothing_here\nprint('x')",
]


def test_notebook_evaluator_with_kernel_labels(kernel_env, tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=300, allow_errors=True,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [i for i, c in enumerate(nb.cells) for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == [], [outputs_text(nb.cells[i]) for i in errors]
    bad = outputs_text(nb.cells[5])  # a UsageError: one line, no traceback
    assert "UsageError: %%autoresearch_eval --use: no variable named 'nothing_here'" in bad and "Traceback" not in bad
    assert "evaluator registered" in outputs_text(nb.cells[2]) and "y_val for the evaluator only" in outputs_text(nb.cells[2])
    [summary] = list_runs(tmp_path / ".autoresearch")
    run = RunDir.open(Path(summary.path))
    tree = run.load().tree
    assert summary.state == "finished" and len(tree) == 4
    assert all(n.status is Status.OK and n.meta["graded"] and n.meta["self_reported"] == 1.0 for n in tree)
    assert all(0.5 < n.metric < 1.0 for n in tree)  # the evaluator's accuracy, not the claimed 1.0
    # the labels went to the evaluator only: not in any node's script nor in the nodes' use.pkl
    with open(run.path / "use.pkl", "rb") as f:
        assert set(pickle.load(f)) == {"X_train", "y_train", "X_val"}
    with open(run.path / "eval" / "use.pkl", "rb") as f:
        assert set(pickle.load(f)) == {"y_val"}
    assert all("y_val" not in n.code for n in tree)
    assert run.settings["eval"]["use"] == ["y_val"]
    report = outputs_text(nb.cells[4])
    assert "## Graded by the separate evaluator" in report and "holdout" in report
    assert "holdout" in tree[0].meta and tree[0].meta["holdout"]["state"] == "ok"
    # the export reproduces the graded number on its own, labels from the run's eval/use.pkl
    assert (tmp_path / "best_evaluate.py").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    import subprocess
    import sys

    subprocess.run([sys.executable, str(tmp_path / "best.py")], cwd=elsewhere, check=True, capture_output=True, timeout=60)
    graded = subprocess.run([sys.executable, str(tmp_path / "best_evaluate.py")], cwd=elsewhere, capture_output=True,
                            text=True, timeout=60)
    assert graded.returncode == 0, graded.stderr
    assert f"val_acc: {run.load().tree.best(run.protocol).metric}" in graded.stdout
