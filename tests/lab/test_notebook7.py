"""The extension in Jupyter Notebook 7: it activates without JupyterLab's shell (optional tokens),
with the runs sidebar on the left and a run view on the right of the notebook page."""

from __future__ import annotations

from chromium import need

from autoresearch_jupyter.store.runs import RunDir
from lab_helpers import cli_run, sources, write_notebook

expect = need("playwright.sync_api").expect


def test_runs_sidebar_run_view_and_cell_button_in_notebook_7(notebook7, page):
    run_id = cli_run(notebook7.root)
    write_notebook(notebook7.root / "nb.ipynb", "print('old cell')")
    page.goto(f"{notebook7.url}/notebooks/nb.ipynb")
    page.wait_for_selector(".jp-Notebook .jp-Cell .cm-content", timeout=60_000)
    page.wait_for_function("() => window.jupyterapp?.isPluginActivated('autoresearch-jupyter:plugin')")

    page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
    expect(page.locator('.jp-cell-toolbar [data-command="autoresearch:run-cell"]')).to_have_count(1)

    page.evaluate("window.jupyterapp.commands.execute('autoresearch:show-runs')")
    item = page.locator(f'.jp-AutoResearch-run[data-run-id="{run_id}"]')
    expect(item).to_have_attribute("data-state", "finished")
    item.click()
    view = page.locator(".jp-AutoResearch-runView")
    expect(view.locator('.ar-row[data-id="0"]')).to_be_visible()
    page.evaluate("window.jupyterapp.commands.execute('autoresearch:replace-cell')")  # best node, selected first
    page.wait_for_function(
        "() => window.jupyterapp.shell.currentWidget.content.model.sharedModel.cells[0].getSource().startsWith('# autoresearch')"
    )
    run = RunDir.open(notebook7.root / ".autoresearch" / run_id)
    best = run.load().tree.best(run.protocol)
    assert sources(page, "nb.ipynb")[0].startswith(f"# autoresearch run {run_id}, node {best.id}")
