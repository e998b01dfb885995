"""The example notebooks, executed headless in a real kernel (nbclient), as Run All would.

The kernel is this interpreter (a kernelspec written to a temporary JUPYTER_PATH), so the
notebooks test the installed package. Each notebook runs in a copy of its folder; what it
leaves there (runs, exported scripts, the lineage notebook) is checked against the saved outputs
and the saved widget state.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")
pytest.importorskip("sklearn")

from autoresearch_jupyter.store.runs import RunDir, list_runs

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "example_notebooks"
KERNEL = "autoresearch-test-python"
VIEW_MODEL = "AnyModel"  # anywidget's model name; the TreeView is the one with a `_nodes` trait

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """A kernelspec that starts this interpreter, found through JUPYTER_PATH."""
    root = tmp_path_factory.mktemp("jupyter")
    spec = root / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "autoresearch test kernel", "language": "python",
    }))
    old = {k: os.environ.get(k) for k in ("JUPYTER_PATH", "OMP_NUM_THREADS", "PYTHONWARNINGS")}
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(root), old["JUPYTER_PATH"]]))
    os.environ["PYTHONWARNINGS"] = "ignore"
    yield root
    for key, value in old.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def execute(name: str, workdir: Path) -> nbformat.NotebookNode:
    """Run a copy of ``example_notebooks/<name>`` in ``workdir``; returns the executed notebook."""
    shutil.copy(EXAMPLES / name, workdir / name)
    nb = nbformat.read(workdir / name, as_version=4)
    client = nbclient.NotebookClient(
        nb, kernel_name=KERNEL, timeout=300, store_widget_state=True, resources={"metadata": {"path": str(workdir)}},
    )
    started = time.monotonic()
    client.execute()
    took = time.monotonic() - started
    nbformat.write(nb, workdir / name)  # what a user would save
    assert took < 120, f"{name} took {took:.0f} s (the examples should run in about a minute on 2 cores)"
    return nb


def outputs_text(cell: nbformat.NotebookNode) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out.get("text", ""))
        elif "data" in out:
            parts.append(out["data"].get("text/plain", ""))
        elif out.get("output_type") == "error":
            parts.append("\n".join(out.get("traceback", [])))
    return "".join(parts)


def cell_with(nb: nbformat.NotebookNode, text: str) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.cell_type == "code" and text in c.source)


def tree_views(nb: nbformat.NotebookNode) -> list[dict]:
    """The saved state of every TreeView widget in the notebook."""
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
    return [m["state"] for m in state.values() if "_nodes" in m.get("state", {})]


def assert_view_matches_run(view: dict, run: RunDir) -> None:
    """The saved widget state holds the run's final tree: every node, the best, the end state."""
    replay = run.load()
    tree, protocol = replay.tree, run.protocol
    meta = view["_meta"]
    assert meta["run_id"] == run.id
    assert meta["state"] == replay.state == "finished"
    records = {r["id"]: r for r in view["_nodes"]["nodes"]}
    for rec in view.get("_updates", {}).get("nodes", []):  # newer records win, as in the browser
        if rec["v"] >= records.get(rec["id"], {"v": -1})["v"]:
            records[rec["id"]] = rec
    assert sorted(records) == sorted(n.id for n in tree)
    for node in tree:
        rec = records[node.id]
        assert rec["status"] == node.status.value and rec["parent"] == node.parent
        assert rec["metric"] == node.metric
    best = tree.best(protocol)
    assert meta["best_id"] == best.id and meta["best_metric"] == best.metric
    assert meta["nodes"] == len(tree)


def test_quickstart(kernel_env, tmp_path):
    nb = execute("quickstart.ipynb", tmp_path)
    [summary] = list_runs(tmp_path / ".autoresearch")
    run = RunDir.open(Path(summary.path))
    tree = run.load().tree
    searched = [n for n in tree if n.operator.value != "ablate"]  # ablation runs come on top
    assert summary.state == "finished" and len(searched) == 9  # the baseline and 8 steps
    assert summary.best_metric > summary.baseline_metric  # the weak baseline got better
    search_cell = cell_with(nb, "%%autoresearch --metric")
    assert not any(o.get("output_type") == "error" for c in nb.cells for o in c.get("outputs", []))
    assert f"<autoresearch run {run.id}: finished, 9 nodes" in outputs_text(search_cell)
    assert f"-> best {summary.best_metric:.4f}" in outputs_text(cell_with(nb, "run = autoresearch_run"))
    # the exported script runs on its own and prints the best metric
    exported = tmp_path / "best_digits.py"
    assert "wrote best_digits.py" in outputs_text(cell_with(nb, "%autoresearch export"))
    other = tmp_path / "elsewhere"
    other.mkdir()
    ran = subprocess.run([sys.executable, str(exported)], capture_output=True, text=True, cwd=other, timeout=120,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert ran.returncode == 0, ran.stderr
    assert f"val_acc: {summary.best_metric:.4f}" in ran.stdout
    views = tree_views(nb)
    assert len(views) == 1, "the search cell shows one live tree view"
    assert_view_matches_run(views[0], run)


def test_advanced(kernel_env, tmp_path):
    nb = execute("advanced.ipynb", tmp_path)
    [summary] = list_runs(tmp_path / ".autoresearch")
    run = RunDir.open(Path(summary.path))
    tree = run.load().tree
    searched = [n for n in tree if n.operator.value != "ablate"]
    assert summary.name == "knn-digits" and summary.state == "finished" and len(searched) == 11  # config steps
    assert (run.path / "use.pkl").exists() and "X_all" in tree[0].code  # --use shipped the arrays
    assert summary.best_metric >= summary.baseline_metric
    assert "background" in outputs_text(cell_with(nb, "--background"))
    assert f"run {run.id}: finished" in outputs_text(cell_with(nb, "%autoresearch wait"))
    assert "## Summary" in outputs_text(nb.cells[-1])  # `%autoresearch report knn-digits`
    lineage = nbformat.read(tmp_path / "knn_lineage.ipynb", as_version=4)
    code = [c.source for c in lineage.cells if c.cell_type == "code"]
    best = tree.best(run.protocol)
    assert code[-1].strip() in best.code and "n_neighbors" in code[-1]
    views = tree_views(nb)
    assert len(views) == 1
    assert_view_matches_run(views[0], run)


def test_interrupting_the_kernel_stops_a_blocking_search_cleanly(kernel_env, tmp_path):
    """The kernel's interrupt (SIGINT in its main thread) ends the cell normally with a stopped run."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name=KERNEL, cwd=str(tmp_path))
    try:
        kc.execute_interactive("%load_ext autoresearch_jupyter", timeout=60)
        cell = ("%%autoresearch --metric score --maximize --steps 60 --proposer mutate\nimport time\n"
                "x = 1.0  # search: float(0, 10)\ntime.sleep(0.4)\nprint(f'score: {-(x - 3) ** 2}')\n")
        msg_id = kc.execute(cell)
        runs = tmp_path / ".autoresearch"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            journals = list(runs.glob("*/journal.jsonl"))
            if journals and journals[0].read_text().count('"node_finished"') >= 3:
                break
            time.sleep(0.1)
        km.interrupt_kernel()
        reply = kc.get_shell_msg(timeout=60)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = kc.get_shell_msg(timeout=60)
        assert reply["content"]["status"] == "ok"  # the cell ends normally: Run All goes on
        [summary] = list_runs(runs)
        replay = RunDir.open(Path(summary.path)).load()
        assert replay.state == "stopped" and all(n.status.is_finished() for n in replay.tree)
        assert 3 < len(replay.tree) < 61
        out = []
        kc.execute_interactive("print(autoresearch_run.state, autoresearch_run.view.state)", timeout=60,
                               output_hook=lambda m: out.append(m["content"].get("text", "")))
        assert "stopped stopped" in "".join(out)
    finally:
        km.shutdown_kernel(now=True)
