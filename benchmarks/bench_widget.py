"""The tree view's costs: bytes per update, the saved snapshot, browser render time, import time.

    python benchmarks/bench_widget.py [--repeat 5] [--no-browser]

(1) Bytes of the comm message one node update sends (a node created in a tree of 10, 100 and
1,000 nodes), and of the full snapshot a saved notebook keeps; sends for 1,000 rapid events.
(2) A 1,000-node tree rendered in headless chromium from treeview.js (the widget's own
renderer): cold mount with every row shown (DOM built and laid out), one incremental node
update, one click into the inspector; median of --repeat (target: mount <= 500 ms).
The progress plot of the same 1,000 nodes built alone (target <= 200 ms).
(3) ``import autoresearch_jupyter.notebook.widget`` in fresh interpreters, against ``import anywidget``.
(4) The live tail: bytes per second the ``_live`` trait sends for one running node whose
output grows ~50 KB/s (target <= 20 KB/s per running node).
Prints figures; asserts nothing timed. Chromium comes from the system (/usr/bin/chromium).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "browser"))

from synthetic import MEASURE_JS, PROTOCOL, synthetic_tree

from autoresearch_jupyter.core.node import Node, Operator, Status
from autoresearch_jupyter.report.views import standalone_html
from autoresearch_jupyter.notebook.widget import TreeView


def capture(view: TreeView) -> list[dict]:
    sent: list[dict] = []
    view._send = lambda msg, buffers=None: sent.append(msg)  # type: ignore[method-assign]
    return sent


def update_bytes(n: int) -> tuple[int, int, float]:
    """(bytes of one node update, bytes of the full snapshot, ms to build the snapshot)."""
    tree = synthetic_tree(n, seed=1)
    view = TreeView(protocol=PROTOCOL, steps=n + 5, throttle=0.0)
    sent = capture(view)
    start = time.perf_counter()
    view.load(tree=tree, protocol=PROTOCOL, state="running", run_id="bench")
    snapshot_ms = (time.perf_counter() - start) * 1000
    snapshot = len(json.dumps(sent[-1]))
    parent = tree[n - 1]
    node = Node(id=n, parent=parent.id, operator=Operator.IMPROVE, plan="one more change",
                code=parent.code.replace("lr = ", "lr = 0.5 or "), status=Status.RUNNING)
    tree.add(node)
    view.callback.on_node_created(node=node, tree=tree)
    return len(json.dumps(sent[-1])), snapshot, snapshot_ms


def rapid_sends(events: int) -> int:
    view = TreeView(protocol=PROTOCOL, steps=events, throttle=0.25)
    sent = capture(view)
    view.callback.on_run_started(run_id="r", run_dir="x", resumed=False, protocol=PROTOCOL, tree=None)
    before = len(sent)
    view.callback.on_node_created(node=Node(id=0, parent=None, operator=Operator.BASELINE, plan="", code="x = 0\n"))
    for i in range(1, events):
        view.callback.on_node_created(node=Node(id=i, parent=0, operator=Operator.IMPROVE, plan="", code=f"x = {i}\n"))
    time.sleep(0.5)
    return len(sent) - before


def browser_render(repeat: int) -> dict[str, float] | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        print("    (playwright is not installed: skipped)")
        return None
    chromium = Path(os.environ.get("AUTORESEARCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium")
    if not chromium.exists():
        print("    (chromium is not installed: apt-get install -y --no-install-recommends chromium)")
        return None
    tree = synthetic_tree(1000, seed=2, running=2, usage=True)
    page_html = standalone_html(tree, PROTOCOL, state="running", run_id="bench", steps=1200)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]
    runs: list[dict] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=args)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_content(page_html)
        page.wait_for_selector(".ar-row")
        first = page.evaluate("window.arView.mountMs")
        for _ in range(repeat):
            runs.append(page.evaluate(MEASURE_JS))
        plots = page.evaluate(f"""() => {{ const out = [];
          for (let i = 0; i < {repeat}; i++) {{ const host = document.createElement("div"); host.className = "ar-view";
            document.body.append(host); const t0 = performance.now(); host.append(window.arView.buildPlot(window.arView.store));
            document.body.offsetHeight; out.push(performance.now() - t0); host.remove(); }} return out; }}""")
        browser.close()
    out = {k: statistics.median(r[k] for r in runs) for k in ("mount_ms", "update_ms", "click_ms")}
    out["first_folded_ms"] = first
    out["plot_ms"] = statistics.median(plots)
    out["rows"] = runs[0]["rows"]
    return out


def live_rate(seconds: float = 4.0) -> tuple[float, float]:
    """(bytes/s the view sends for one running node's output, bytes/s the output grows)."""
    import tempfile

    from autoresearch_jupyter import Protocol, Search

    code = (f"import time\nt = time.time()\nwhile time.time() - t < {seconds}:\n"
            "    print('x' * 5000, flush=True)\n    time.sleep(0.1)\nprint('score: 1')\n")
    protocol = Protocol.for_script(code, metric="score", maximize=True, time_budget=60)
    with tempfile.TemporaryDirectory() as tmp:
        search = Search(code=code, protocol=protocol, runs_dir=tmp,
                        settings={"steps": 0, "executor": {"name": "local", "workers": 1, "warm": "off"}})
        view = TreeView(protocol=protocol, steps=0)
        sent = capture(view)
        search.subscribe(view.callback)
        start = time.perf_counter()
        outcome = search.run()
        took = time.perf_counter() - start
        grown = (search.run_dir.path / "nodes" / "0" / "output.log").stat().st_size
    assert outcome.tree[0].status is Status.OK
    live = sum(len(json.dumps(m)) for m in sent if "_live" in m.get("state", {}))
    return live / took, grown / took


def import_time(code: str, n: int) -> float:
    runs = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()

    print("(1) bytes sent (JSON of the comm message)")
    for n in (10, 100, 1000):
        one, snap, ms = update_bytes(n)
        print(f"    {n:>5} nodes: one node update {one:>6,} B   full snapshot {snap:>10,} B "
              f"({snap / n:,.0f} B/node, built in {ms:.1f} ms)")
    print(f"    1,000 node events in a burst: {rapid_sends(1000)} sends (throttle 0.25 s)")

    if not args.no_browser:
        print(f"(2) 1,000-node tree in headless chromium (median of {args.repeat})")
        res = browser_render(args.repeat)
        if res:
            print(f"    cold mount, all {res['rows']} rows shown   {res['mount_ms']:7.1f} ms  (target <= 500 ms)")
            print(f"    first mount, failed leaves folded  {res['first_folded_ms']:7.1f} ms")
            print(f"    one node update (merge + render)   {res['update_ms']:7.1f} ms")
            print(f"    click a node (select + inspector)  {res['click_ms']:7.1f} ms")
            print(f"    progress plot alone, 1,000 points  {res['plot_ms']:7.1f} ms  (target <= 200 ms)")

    base = import_time("pass", 7)
    anywidget = import_time("import anywidget", 7)
    widget = import_time("import autoresearch_jupyter.notebook.widget", 7)
    print("(3) import time, fresh interpreter (median of 7)")
    print(f"    python -c pass {base * 1000:.0f} ms; import anywidget {anywidget * 1000:.0f} ms; "
          f"import autoresearch_jupyter.notebook.widget {widget * 1000:.0f} ms "
          f"(+{(widget - anywidget) * 1000:.0f} ms over anywidget)")
    sent, grown = live_rate()
    print("(4) live tail of one running node")
    print(f"    output grows {grown / 1000:.1f} KB/s; the view sends {sent / 1000:.1f} KB/s (target <= 20 KB/s)")


if __name__ == "__main__":
    main()
