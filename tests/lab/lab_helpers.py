"""Helpers of the JupyterLab extension tests: runs, notebooks, and the notebook model in the page."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

SIDEBAR_TAB = '.jp-SideBar [data-id="autoresearch-runs"]'
SCRIPT = 'lr = 0.1\ndepth = 3\nprint(f"m: {0.5 + lr * depth / 10:.4f}")\n'
CELL = "lr = 0.1\ndepth = 3\nprint(f'val_acc: {0.5 + lr * depth / 10:.4f}')"


def cli_run(folder: Path) -> str:
    """A finished run of ``autoresearch run`` in ``folder``; its id."""
    (folder / "script.py").write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "autoresearch_jupyter", "run", "script.py", "--metric", "m", "--maximize",
                    "--steps", "3", "--warm", "off", "--no-ablate"], cwd=folder, env=env, check=True, capture_output=True, timeout=120)
    (run_dir,) = (folder / ".autoresearch").iterdir()
    return run_dir.name


def write_notebook(path: Path, *sources: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    nbformat.write(nb, path)


def open_notebook(page, lab, path: str) -> None:
    """Open ``path`` in a fresh workspace and wait for its cells."""
    page.goto(f"{lab.url}/lab/tree/{path}?reset")
    page.wait_for_function(
        "(path) => window.jupyterapp && [...window.jupyterapp.shell.widgets('main')].some(w => w.context && "
        "w.context.path === path && w.context.isReady && w.content.widgets.length > 0)",
        arg=path, timeout=60_000,
    )
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content")
    assert page.evaluate("window.jupyterapp.isPluginActivated('autoresearch-jupyter:plugin')")


def notebook_js(page, path: str, body: str):
    """Evaluate ``body`` with ``panel`` bound to the open notebook at ``path``."""
    return page.evaluate(
        "async ([path, body]) => { const panel = [...window.jupyterapp.shell.widgets('main')]"
        ".find(w => w.context && w.context.path === path); const AsyncFunction = (async () => {}).constructor; return await new AsyncFunction('panel', body)(panel); }",
        [path, body],
    )


def sources(page, path: str) -> list[str]:
    return notebook_js(page, path, "return panel.content.model.sharedModel.cells.map(c => c.getSource());")


def run_item(page, run_id: str):
    return page.locator(f'.jp-AutoResearch-run[data-run-id="{run_id}"]')
