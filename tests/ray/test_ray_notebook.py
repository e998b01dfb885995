"""``%%autoresearch --executor ray`` in a real kernel, executed headless by nbclient: the cell's
nodes run on the cluster, ``--use`` variables travel with them, the run records where."""

from __future__ import annotations

import json
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from autoresearch_jupyter.store.runs import list_runs, resolve_run

KERNEL = "autoresearch-ray-test-python"


@pytest.fixture
def kernel(tmp_path, monkeypatch):
    """A kernelspec that starts this interpreter, found through JUPYTER_PATH."""
    spec = tmp_path / "jupyter" / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "autoresearch ray test kernel", "language": "python",
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("PYTHONWARNINGS", "ignore")
    return KERNEL


def test_the_magic_runs_its_nodes_on_ray(kernel, ray_cluster, tmp_path):
    work = tmp_path / "nb"
    work.mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%load_ext autoresearch_jupyter"),
        nbformat.v4.new_code_cell("offset = 10.0"),
        nbformat.v4.new_code_cell(
            f"%%autoresearch --executor ray --ray-address {ray_cluster} --workers 2 --metric score --maximize "
            "--steps 3 --proposer mutate --use offset\n"
            "x = 0.5  # search: float(0, 1)\n"
            "print(f'score: {x + offset}')\n"
        ),
        nbformat.v4.new_code_cell("print('best', autoresearch_run.best.metric, autoresearch_run.state)"),
    ]
    client = nbclient.NotebookClient(nb, kernel_name=kernel, timeout=300,
                                     resources={"metadata": {"path": str(work)}})
    client.execute()
    text = "".join(out.get("text", "") for out in nb.cells[3].outputs if out.get("output_type") == "stream")
    assert "best" in text and "finished" in text, nb.cells[2].outputs
    runs = list_runs(work / ".autoresearch")
    replay = resolve_run(work / ".autoresearch", runs[0].id).load()
    assert len(replay.tree) == 4 and replay.tree[0].metric == 10.5
    assert all(n.where and n.where["executor"] == "ray" for n in replay.tree)
    assert float(text.split()[1]) == max(n.metric for n in replay.tree if n.kept or n.parent is None)
