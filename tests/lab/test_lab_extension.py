"""The JupyterLab extension in a real JupyterLab: the runs sidebar, the run view, the cell actions.

Each test drives Debian's chromium (Playwright) against the module's JupyterLab server; runs are
made by the CLI or by the extension's own "AutoResearch this cell".
"""

from __future__ import annotations

import json

import nbformat
import pytest
from chromium import need, tour_shot
from lab_helpers import (
    CELL,
    SIDEBAR_TAB,
    cli_run,
    notebook_js,
    open_notebook,
    run_item,
    sources,
    write_notebook,
)

from autoresearch_jupyter.store.journal import load_journal
from autoresearch_jupyter.notebook.code import build_script

expect = need("playwright.sync_api").expect

def test_sidebar_lists_a_cli_run_and_replace_cell_with_a_node(lab, page):
    run_id = cli_run(lab.root)
    write_notebook(lab.root / "replace.ipynb", "print('old cell')", "print('second')")
    open_notebook(page, lab, "replace.ipynb")

    page.click(SIDEBAR_TAB)
    item = run_item(page, run_id)
    expect(item).to_have_attribute("data-state", "finished")
    tree = load_journal(lab.root / ".autoresearch" / run_id / "journal.jsonl").tree
    best = max((n for n in tree if n.metric is not None and (n.kept or n.id == 0)), key=lambda n: n.metric)
    expect(item).to_contain_text("4 nodes")
    expect(item).to_contain_text(f"best m ↑ {float(f'{best.metric:.6g}')}")
    expect(page.locator(".jp-AutoResearch-runsFolder")).to_have_text(".autoresearch")

    item.click()  # the run view: the shared tree view, read from the run's files
    view = page.locator(".jp-AutoResearch-runView")
    expect(view.locator('.ar-row[data-id="0"]')).to_be_visible()
    expect(view.locator(".ar-head")).to_contain_text(f"run {run_id}")
    expect(view.locator(".ar-insp")).to_contain_text(f"node {best.id}")  # the best node is selected first
    view.locator(".ar-fold input").first.uncheck()  # unfold the reverted and failed leaves
    expect(view.locator('.ar-row[data-id="1"]')).to_be_visible()
    view.locator('.ar-row[data-id="1"]').click()
    expect(view.locator(".ar-insp")).to_contain_text("node 1")

    page.locator(".jp-Toolbar-item", has_text="Replace cell with this node").click()
    node1 = load_journal(lab.root / ".autoresearch" / run_id / "journal.jsonl").tree[1]
    first = page.locator(".jp-Notebook .jp-Cell").first.locator(".cm-content")
    expect(first).to_contain_text(node1.code.splitlines()[0])
    expect(first).to_contain_text(f"# autoresearch run {run_id}, node 1")
    cells = sources(page, "replace.ipynb")
    assert cells[0].split("\n", 1)[1] == node1.code.rstrip("\n")
    assert cells[1:] == ["print('second')"]

    notebook_js(page, "replace.ipynb", "await panel.context.save();")
    saved = nbformat.read(lab.root / "replace.ipynb", as_version=4)
    assert saved.cells[0].source == cells[0]


def test_the_widget_insert_event_puts_the_node_below_its_cell(lab, page):
    write_notebook(lab.root / "widget.ipynb", "x = 1", "y = 2")
    open_notebook(page, lab, "widget.ipynb")
    code = build_script(cell="lr = 0.5\nprint(lr)\n", setup="import os\n")  # a node from a notebook run
    prevented = notebook_js(page, "widget.ipynb", f"""
        const host = document.createElement('div');  // where a widget's tree view would be
        panel.content.widgets[0].node.appendChild(host);
        const detail = {{nodeId: 7, code: {json.dumps(code)}, runId: 'r1'}};
        const ev = new CustomEvent('autoresearch:insert-node', {{detail, bubbles: true, cancelable: true, composed: true}});
        host.dispatchEvent(ev);
        host.remove();
        return ev.defaultPrevented;
    """)
    assert prevented, "the extension did not take the insert event"
    assert sources(page, "widget.ipynb") == ["x = 1", "# autoresearch run r1, node 7\nlr = 0.5\nprint(lr)", "y = 2"]


def test_autoresearch_this_cell_runs_a_search_that_the_sidebar_follows(lab, page):
    write_notebook(lab.root / "work" / "train.ipynb", CELL)
    open_notebook(page, lab, "work/train.ipynb")
    page.wait_for_function(
        "() => [...window.jupyterapp.shell.widgets('main')].some(w => w.context && "
        "w.context.path === 'work/train.ipynb' && w.sessionContext.session?.kernel?.status === 'idle')",
        timeout=60_000,
    )
    page.click(SIDEBAR_TAB)
    expect(page.locator(".jp-AutoResearch-runsFolder")).to_have_text("work/.autoresearch")
    expect(page.locator(".jp-AutoResearch-runsMessage")).to_contain_text("No runs here yet")

    page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
    page.locator('.jp-cell-toolbar [data-command="autoresearch:run-cell"]').click()
    cell = sources(page, "work/train.ipynb")[0]
    assert cell == "%%autoresearch --metric val_acc --maximize --steps 2 --warm off\n" + CELL

    item = page.locator(".jp-AutoResearch-run")
    expect(item).to_have_count(1, timeout=30_000)  # found by the sidebar's own refresh
    expect(item).to_have_attribute("data-state", "finished", timeout=90_000)
    expect(item).to_contain_text("3 nodes (baseline + 2 of 2)")  # the count the widget and the CLI say
    (run_dir,) = (lab.root / "work" / ".autoresearch").iterdir()
    # the sidebar names the run in full, says where it came from, and has the id on hover
    name = json.loads((run_dir / "run.json").read_text()).get("name")
    assert name and item.locator(".jp-AutoResearch-runName").inner_text() == name
    expect(item.locator(".jp-AutoResearch-runSource")).to_have_text("from train.ipynb")
    assert f"run {run_dir.name}" in item.get_attribute("title")
    assert json.loads((run_dir / "run.json").read_text())["source"].endswith("train.ipynb")

    # another notebook becomes the current one: the node still goes to the run's own notebook
    write_notebook(lab.root / "work" / "other.ipynb", "pass")
    page.evaluate("window.jupyterapp.commands.execute('docmanager:open', {path: 'work/other.ipynb'})")
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget?.context?.path === 'work/other.ipynb'")
    item.click()
    view = page.locator(".jp-AutoResearch-runView")
    expect(view.locator('.ar-row[data-id="0"]')).to_be_visible()
    expect(view.locator(".ar-plot .ar-pt")).to_have_count(3)  # the plot: one point per node
    expect(view.locator(".ar-row.ar-sel")).to_have_count(1)  # the best is selected at first
    tour_shot(view, "run-view")
    page.locator(".jp-Toolbar-item", has_text="Insert as cell").click()  # the best node, below cell 1
    best = load_journal(run_dir / "journal.jsonl").tree
    page.wait_for_function(
        "() => [...window.jupyterapp.shell.widgets('main')].find(w => w.context?.path === 'work/train.ipynb')"
        ".content.model.sharedModel.cells.length === 2"
    )
    inserted = sources(page, "work/train.ipynb")[1]
    assert inserted.startswith(f"# autoresearch run {run_dir.name}, node ")
    node_id = int(inserted.split(", node ")[1].split(" ")[0])
    assert inserted.split("\n", 1)[1] == best[node_id].code.rstrip("\n")
    assert sources(page, "work/other.ipynb") == ["pass"]
