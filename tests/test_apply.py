"""``%autoresearch apply``: the node's cell runs in the kernel, so its fitted model is there; a
refused apply changes nothing. The in-process IPython shell for refusals, nbclient for a real
kernel."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from test_magics import RUN, ip, magics_of  # noqa: F401 - ip is a fixture

from autoresearch_jupyter.notebook.apply import files_read, split_use

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("sklearn")

FAILS_CELL = "x = 1.0  # search: float(0, 10)\nassert x < 2, 'too big'\nprint(f'score: {-(x - 3) ** 2}')\n"


def test_files_read_finds_literal_reads_only() -> None:
    code = ("import pandas as pd\ndf = pd.read_csv('data/train.csv')\nopen('notes.txt')\n"
            "open('out.txt', 'w')\ndf.to_csv('pred.csv')\nnp.load(path)\nopen('/abs/file')\n")
    assert files_read(code) == ["data/train.csv", "notes.txt"]


def test_split_use_separates_the_loader_from_the_setup_cells() -> None:
    from autoresearch_jupyter.notebook.code import build_script, split_script

    setup, _ = split_script(build_script(cell="y = 1\n", setup="X = 2", use=["df", "w"]))
    names, code = split_use(setup)
    assert names == ["df", "w"] and code == "X = 2"


def test_apply_refuses_without_changing_the_namespace(ip, tmp_path) -> None:  # noqa: F811
    ip.run_cell_magic("autoresearch_setup", "", "OFFSET = 0\n")
    ip.run_cell_magic("autoresearch", f"{RUN} --steps 3 --name a",
                      "x = 1.0  # search: float(0, 10)\nprint(f'score: {-(x - 3) ** 2 + OFFSET}')\n")
    ip.user_ns["x"] = "untouched"
    magics_of(ip).setup.clear()  # as in another kernel that never ran the setup cell
    with pytest.raises(UsageError, match="setup cells"):
        ip.run_line_magic("autoresearch", "apply a")
    assert ip.user_ns["x"] == "untouched"
    with pytest.raises(UsageError, match="no node 99"):
        ip.run_line_magic("autoresearch", "apply a --node 99")
    ip.run_line_magic("autoresearch", "apply a --with-setup")  # runs the node's own setup too
    best = ip.user_ns["autoresearch_run"].best
    assert ip.user_ns["x"] == pytest.approx(float(best.code.split("x = ")[1].split()[0]))
    assert ip.user_ns["OFFSET"] == 0


def test_apply_refuses_a_failed_node_and_missing_files(ip, tmp_path) -> None:  # noqa: F811
    ip.run_cell_magic("autoresearch", f"{RUN} --steps 6 --name f", FAILS_CELL)
    run = ip.user_ns["autoresearch_run"]
    failed = [n for n in run.nodes if n.status.value != "ok"]
    assert failed, [n.status for n in run.nodes]
    with pytest.raises(UsageError, match="did not run OK"):
        ip.run_line_magic("autoresearch", f"apply f --node {failed[0].id}")
    (tmp_path / "data.txt").write_text("1\n")
    ip.run_cell_magic("autoresearch", f"{RUN} --steps 1 --name g --cwd {tmp_path}",
                      "x = float(open('data.txt').read())\nprint(f'score: {x}')\n")
    os.remove(tmp_path / "data.txt")
    ip.user_ns.pop("x", None)
    with pytest.raises(UsageError, match="data.txt"):
        ip.run_line_magic("autoresearch", "apply g")
    assert "x" not in ip.user_ns


NOTEBOOK = [
    "%load_ext autoresearch_jupyter",
    "%%autoresearch_setup\nfrom sklearn.datasets import load_digits\nX, y = load_digits(return_X_y=True)\n"
    "Xtr, Xva, ytr, yva = X[:1200], X[1200:], y[:1200], y[1200:]",
    "%%autoresearch --metric val_acc --maximize --steps 4\n"
    "from sklearn.linear_model import LogisticRegression\n"
    "C = 0.0001  # search: log(1e-5, 10)\n"
    "model = LogisticRegression(C=C, max_iter=300).fit(Xtr, ytr)\n"
    "print(f'val_acc: {model.score(Xva, yva):.4f}')",
    "%autoresearch apply",
    "import json\nprint('APPLIED', json.dumps({'score': round(model.score(Xva, yva), 4), "
    "'best': autoresearch_run.best.metric, 'C': model.C}))",
]


@pytest.mark.slow
def test_apply_in_a_real_kernel_puts_the_best_model_there(tmp_path) -> None:
    from test_notebooks import KERNEL, kernel_env  # noqa: F401 - the kernelspec fixture's helpers

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK]
    root = tmp_path / "jupyter" / "kernels" / "ar-apply"
    root.mkdir(parents=True)
    (root / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "apply test", "language": "python"}))
    env_path = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(tmp_path / "jupyter"), env_path]))
    try:
        nbclient.NotebookClient(nb, kernel_name="ar-apply", timeout=300,
                                resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        if env_path is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = env_path
    applied = "".join(o.get("text", "") for o in nb.cells[3].outputs)
    assert "applied node" in applied and "the best" in applied, applied
    line = next(o["text"] for o in nb.cells[4].outputs if "APPLIED" in o.get("text", ""))
    facts = json.loads(line.split("APPLIED", 1)[1])
    assert facts["score"] == pytest.approx(facts["best"], abs=1e-4)  # the model scores like its node
    assert facts["C"] != 0.0001  # the best node's value, not the baseline's
