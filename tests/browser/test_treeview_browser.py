"""The tree view in a real browser: live in JupyterLab while a blocking search keeps the kernel
busy, and a 1,000-node tree from a standalone page that loads the same treeview.js."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest
from chromium import tour_shot
from synthetic import MEASURE_JS, PROTOCOL, synthetic_tree

from autoresearch_jupyter.report.views import standalone_html

SCRIPT = '''import time
lr = 0.1  # search: log(0.001, 1)
depth = 3  # search: int(1, 8)
time.sleep(1.0)
print(f"score: {1 - abs(lr - 0.3) - abs(depth - 5) / 10:.4f}")
'''

CELL = f'''from pathlib import Path
from autoresearch_jupyter import Protocol, Search
from autoresearch_jupyter.report.export import export_script
from autoresearch_jupyter.notebook.widget import TreeView

CODE = {SCRIPT!r}
protocol = Protocol.for_script(CODE, metric="score", maximize=True, time_budget=30)
search = Search(code=CODE, protocol=protocol, runs_dir="runs",
                settings={{"steps": 8, "executor": {{"name": "local", "workers": 1, "warm": "off"}}}})
view = TreeView(protocol=protocol, steps=8)

def export(node_id):
    path = Path("exported") / f"node-{{node_id}}.py"
    path.parent.mkdir(exist_ok=True)
    path.write_text(export_script(search.tree, protocol, node_id, run_id=search.run_dir.id))
    return str(path)

view.on_export(export)
display(view)
search.subscribe(view.callback)
outcome = search.run()
print("DONE", outcome.state, len(outcome.tree))
'''

FINISHED_ROW = '.ar-row[data-id]:not([data-id="0"]):is(.ar-k-kept, .ar-k-reverted, .ar-k-buggy)'


def write_notebook(path: Path, source: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells.append(nbformat.v4.new_code_cell(source))
    nbformat.write(nb, path)


START_KERNEL = """async () => {
  const panel = window.jupyterapp.shell.currentWidget;
  await panel.context.ready;
  await panel.sessionContext.ready;
  if (!panel.sessionContext.session?.kernel) await panel.sessionContext.changeKernel({ name: "python3" });
}"""
KERNEL_IDLE = "window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel?.status === 'idle'"


def run_all(page, url: str, name: str) -> None:
    """Open a notebook in JupyterLab, make sure its kernel is up, and run all its cells."""
    page.on("pageerror", lambda err: print("page error:", err))
    page.goto(f"{url}/lab/tree/{name}")
    page.wait_for_function("window.jupyterapp?.shell.currentWidget?.sessionContext !== undefined", timeout=60_000)
    page.evaluate(START_KERNEL)
    page.wait_for_function(KERNEL_IDLE, timeout=60_000)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


def prompt(page) -> str:
    return page.inner_text(".jp-Notebook .jp-Cell .jp-InputPrompt").strip()


def test_click_inspects_a_node_while_a_blocking_search_runs(page, lab, artifacts) -> None:
    url, root = lab
    write_notebook(root / "live.ipynb", CELL)
    run_all(page, url, "live.ipynb")

    page.wait_for_selector(".ar-view .ar-row", timeout=90_000)
    row = page.wait_for_selector(FINISHED_ROW, timeout=90_000)
    node_id = int(row.get_attribute("data-id"))
    # the search is still running and the kernel is busy with the cell
    assert page.query_selector(".ar-state-running") is not None
    assert prompt(page) == "[*]:"

    row.click(position={"x": 60, "y": 10})
    page.wait_for_selector(".ar-insp .ar-diff", timeout=5_000)
    title = page.inner_text(".ar-insp .ar-insp-title")
    assert f"node {node_id}" in title
    added = [t.strip() for t in page.locator(".ar-insp .ar-diff .ar-add").all_inner_texts()]
    removed = [t.strip() for t in page.locator(".ar-insp .ar-diff .ar-del").all_inner_texts()]
    assert added and removed, "the inspector shows the diff from the parent"
    run_dir = next((root / "runs").iterdir())
    script = (run_dir / "nodes" / str(node_id) / "train.py").read_text()
    for line in added:
        assert line[1:].strip() in script  # the diff is this node's change
    assert page.query_selector(".ar-insp .ar-tail") is not None  # output tail shown
    # in a notebook output too, diff lines scroll sideways rather than wrap mid-token (the run view's way)
    white = page.evaluate("getComputedStyle(document.querySelector('.ar-insp .ar-diff span')).whiteSpace")
    breaks = page.evaluate("getComputedStyle(document.querySelector('.ar-insp .ar-diff span')).wordBreak")
    assert (white, breaks) == ("pre", "normal")
    # the plot has one point per node, and the selected one is marked
    assert page.locator(f'.ar-plot .ar-pt-sel[data-id="{node_id}"]').count() == 1
    # Export while the kernel is busy: the request waits, and the view says so
    page.click("button[data-act='export-sel']")
    page.wait_for_function("document.querySelector('.ar-note').textContent.includes('waiting for the kernel')",
                           timeout=5_000)
    assert prompt(page) == "[*]:", "the click needed no kernel round trip"
    page.screenshot(path=str(artifacts / "treeview-running.png"), full_page=True)

    page.wait_for_selector(".ar-state-finished", timeout=120_000)
    page.wait_for_function("document.querySelector('.ar-note').textContent.includes('exported to')",
                           timeout=30_000)
    note = page.inner_text(".ar-note")
    assert f"node {node_id} exported to exported/node-{node_id}.py" in note
    assert (root / "exported" / f"node-{node_id}.py").exists()
    head = page.inner_text(".ar-head")
    assert "9 nodes (baseline + 8 of 8)" in head and "best score" in head, head
    assert page.locator(".ar-row").count() >= 5
    assert page.locator(".ar-plot .ar-pt").count() == 9, "one point per node, the baseline included"
    page.screenshot(path=str(artifacts / "treeview-finished.png"), full_page=True)
    tour_shot(page.locator(".ar-view").first, "widget")


@pytest.mark.skipif(importlib.util.find_spec("autoresearch_jupyter.notebook.magics") is None,
                    reason="the %%autoresearch magics are not written yet")
def test_cell_magic_shows_the_tree_view(page, lab, artifacts) -> None:
    url, root = lab
    source = "%load_ext autoresearch_jupyter\n"
    write_notebook(root / "magic.ipynb", source)
    nb = nbformat.read(root / "magic.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("%%autoresearch --metric score --maximize --steps 4\n" + SCRIPT))
    nbformat.write(nb, root / "magic.ipynb")
    run_all(page, url, "magic.ipynb")
    page.wait_for_selector(".ar-view .ar-row", timeout=90_000)
    page.wait_for_selector(".ar-state-finished, .ar-state-stopped, .ar-state-failed", timeout=120_000)
    page.screenshot(path=str(artifacts / "treeview-magic.png"), full_page=True)


def test_thousand_node_tree_renders_fast_from_the_shared_source(page, artifacts) -> None:
    tree = synthetic_tree(1000, seed=2, running=2, usage=True)
    page.set_content(standalone_html(tree, PROTOCOL, state="running", run_id="synthetic-1000", steps=1200))
    page.wait_for_selector(".ar-row")
    mount_ms = page.evaluate("window.arView.mountMs")
    folded_rows = page.locator(".ar-row").count()
    result = page.evaluate(MEASURE_JS)
    print(f"\n1,000 nodes: first mount {mount_ms:.1f} ms ({folded_rows} rows, failed leaves folded); "
          f"unfolded {json.dumps({k: round(v, 1) if isinstance(v, float) else v for k, v in result.items()})}")
    assert result["rows"] == 1000 and result["inspector_shown"]
    assert folded_rows < 1000
    # the best path is highlighted up to the root, and the header sums tokens
    best = tree.best(PROTOCOL)
    assert page.locator(".ar-row.ar-path").count() == len(tree.path(best.id))
    assert page.locator(f'.ar-row.ar-best[data-id="{best.id}"]').count() == 1
    assert "tokens" in page.inner_text(".ar-head")
    # copy rebuilds each node's exact code in the browser from the line edits
    codes = page.evaluate("[...window.arView.store.nodes.keys()].map((id) => [id, window.arView.store.code(id)])")
    assert all(code == tree[i].code for i, code in codes)
    # clicking a folded group shows its leaves; clicking a node fills the inspector
    page.locator(".ar-group").first.click()
    page.locator(f'.ar-row[data-id="{best.id}"]').click(position={"x": 60, "y": 10})
    page.wait_for_selector(".ar-insp .ar-diff .ar-add")
    assert f"node {best.id}" in page.inner_text(".ar-insp-title")
    page.screenshot(path=str(artifacts / "treeview-1000.png"))


def test_store_merges_out_of_order_and_asks_for_a_resync_after_a_gap(page) -> None:
    from trees import sample_tree

    from autoresearch_jupyter.core.protocol import Protocol

    page.set_content(standalone_html(sample_tree(), Protocol(metric="val_acc", maximize=True), state="finished",
                                     run_id="r"))
    result = page.evaluate("""() => {
      const s = window.arView.createStore();
      const rec = (id, v, status) => ({ id, parent: id ? 0 : null, v, status, kind: status, code: "x" });
      const out = {};
      out.first = s.applyUpdates({ seq: 1, from: 1, nodes: [rec(0, 1, "running")] });
      out.late = s.applyUpdates({ seq: 5, from: 4, nodes: [rec(1, 5, "running")] });  // batches 2-3 missed
      s.applySnapshot({ seq: 3, nodes: [rec(0, 3, "ok")] });  // older than what we have: merged only
      out.afterOld = [...s.nodes.keys()].sort().join();
      out.stale = s.applyUpdates({ seq: 6, from: 2, nodes: [rec(0, 2, "running"), rec(1, 6, "kept")] });
      out.status0 = s.nodes.get(0).status;  // v 3 beats v 2
      out.status1 = s.nodes.get(1).status;
      s.applySnapshot({ seq: 9, nodes: [rec(0, 9, "ok")] });  // newer: replaces the store
      out.afterNew = [...s.nodes.keys()].join();
      return out;
    }""")
    assert result == {"first": False, "late": True, "afterOld": "0,1", "stale": False, "status0": "ok",
                      "status1": "kept", "afterNew": "0"}


def test_insert_hook_and_copy_give_the_exact_code(browser) -> None:
    from trees import sample_tree

    from autoresearch_jupyter.core.protocol import Protocol

    tree = sample_tree()
    tree[6].code = tree[5].code.replace("x = ", "y = 1\nx = ") + "# wider\n"
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    html = standalone_html(tree, Protocol(metric="val_acc", maximize=True), state="finished", run_id="r")
    # served as http://localhost (a secure context, so the page may use the clipboard API)
    page.route("http://localhost/view.html", lambda route: route.fulfill(body=html, content_type="text/html"))
    page.goto("http://localhost/view.html")
    page.locator('.ar-row[data-id="6"]').click(position={"x": 60, "y": 10})
    page.evaluate("""() => document.addEventListener("autoresearch:insert-node", (ev) => {
      window.inserted = ev.detail; ev.preventDefault(); }, { once: true })""")
    page.click("button[data-act='insert']")
    detail = page.evaluate("window.inserted")
    assert detail == {"nodeId": 6, "code": tree[6].code, "runId": "r", "metricName": "val_acc", "metric": 0.9}
    page.wait_for_function("document.querySelector('.ar-note').textContent === 'node 6 inserted as a cell'")  # async render
    page.click("button[data-act='copy']")
    page.wait_for_function("document.querySelector('.ar-note').textContent.includes('copied')")
    assert page.evaluate("navigator.clipboard.readText()") == tree[6].code
    context.close()
