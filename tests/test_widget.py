"""The tree view without a browser: traits, live updates from a search thread, throttling,
bytes per update, request/reply messages, and the static fallbacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

pytest.importorskip("anywidget")

from browser.synthetic import PROTOCOL, synthetic_tree
from trees import sample_tree

from autoresearch_jupyter import Protocol, Search
from autoresearch_jupyter.report.export import export_script
from autoresearch_jupyter.core.node import Node, Operator, Status
from autoresearch_jupyter.report.views import (
    DIFF_CAP,
    STATIC,
    TAIL_CAP,
    apply_edits,
    node_record,
    standalone_html,
    static_html,
)
from autoresearch_jupyter.notebook.widget import TreeView, bundle_esm

MAX = Protocol(metric="val_acc", maximize=True, time_budget=60, seed=7)
BASE = 'import time\nx = 1\ntime.sleep(0.1)\nprint(f"score: {x}")\n'


def capture(view: TreeView) -> list[dict]:
    """Record every message the widget would send to the browser (state updates and replies)."""
    sent: list[dict] = []
    view._send = lambda msg, buffers=None: sent.append(json.loads(json.dumps(msg)))  # type: ignore[method-assign]
    return sent


def updates(sent: list[dict]) -> list[dict]:
    return [m["state"] for m in sent if m.get("method") == "update"]


def replies(sent: list[dict]) -> list[dict]:
    return [m["content"] for m in sent if m.get("method") == "custom"]


# ---- traits and construction -----------------------------------------------------------------


def test_state_traits_are_synced() -> None:
    view = TreeView(protocol=MAX, steps=5)
    for name in ("_meta", "_updates", "_nodes", "_uid", "_esm", "_css"):
        assert view.has_trait(name), name
        assert view.trait_metadata(name, "sync") is True, name
    assert view._meta["state"] == "starting" and view._meta["steps"] == 5
    assert view._nodes == {"seq": 0, "nodes": []}
    assert len(view._uid) == 32 and view._uid != TreeView(protocol=MAX, steps=5)._uid


def test_unknown_keywords_raise_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        TreeView(protocol=MAX, steps=5, colour="red")
    with pytest.raises(TypeError, match="_nodes"):
        TreeView(protocol=MAX, steps=5, _nodes={})
    TreeView(protocol=MAX, steps=5, layout={"width": "100%"})  # public widget traits are fine


def test_esm_is_one_module_from_the_shared_renderer() -> None:
    esm = bundle_esm()
    assert esm.startswith((STATIC / "treeview.js").read_text())
    assert "./treeview.js\"" not in esm and "export default { initialize, render }" in esm
    assert TreeView._esm == esm
    assert (STATIC.parent.parent / "notebook" / "static" / "widget.js").is_file()
    for name in ("treeview.js", "treeview.css"):
        assert (STATIC / name).is_file()


def test_package_import_stays_light() -> None:
    code = "import sys, autoresearch_jupyter; print(any(m in sys.modules for m in ('ipywidgets', 'anywidget')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- records -----------------------------------------------------------------------------------


def test_records_rebuild_code_from_line_edits_and_cap_long_text() -> None:
    tree = synthetic_tree(30, seed=3)
    for node in tree:
        rec = node_record(node, tree.nodes)
        if node.parent is None:
            assert rec["code"] == node.code
        else:
            assert "code" not in rec and apply_edits(tree[node.parent].code, rec["edits"]) == node.code
        json.dumps(rec, allow_nan=False)
    node = tree[5]
    node.output_tail = "".join(f"line {i}\n" for i in range(5000))
    node.diff = "".join(f"+added {i}\n" for i in range(5000))
    node.metric = float("nan")
    rec = node_record(node, tree.nodes)
    assert len(rec["tail"]) <= TAIL_CAP + 60 and rec["tail"].endswith("line 4999\n")
    assert rec["tail"].startswith("… ") and "earlier lines not shown" in rec["tail"]
    assert len(rec["diff"]) <= DIFF_CAP + 100 and "diff truncated" in rec["diff"]
    assert rec["metric"] is None  # NaN is not JSON


def test_edits_survive_odd_line_endings() -> None:
    old = "a\r\nb\rc\n\x0bd\u2028e\n"
    new = "a\r\nB\rc\n\x0bd\u2028e\nf"
    from autoresearch_jupyter.report.views import line_edits

    assert apply_edits(old, line_edits(old, new)) == new


# ---- live updates --------------------------------------------------------------------------


def variant(body: str) -> str:
    return BASE.replace("x = 1\n", body + "\n")


def test_callback_updates_the_view_from_a_search_thread(tmp_path, scripted) -> None:
    protocol = Protocol.for_script(BASE, metric="score", maximize=True, time_budget=5)
    proposer = scripted([
        ("better", variant("x = 3")),
        ("worse", variant("x = 2")),
        ("raises", variant("raise ValueError('bad')")),
        ("duplicate", variant("x = 2  # again")),
        ("best", variant("x = 4")),
    ])
    search = Search(code=BASE, protocol=protocol, runs_dir=tmp_path, proposer=proposer,
                    settings={"steps": 5, "executor": {"name": "local", "workers": 1, "warm": "off"}})
    view = TreeView(protocol=protocol, steps=5, throttle=0.05)
    sent = capture(view)
    search.subscribe(view.callback)
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("outcome", search.run()))
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    outcome = result["outcome"]
    final = view._nodes
    assert sorted(r["id"] for r in final["nodes"]) == sorted(outcome.tree.nodes)
    by_id = {r["id"]: r for r in final["nodes"]}
    for node in outcome.tree:
        assert by_id[node.id]["status"] == node.status.value
    assert view._meta["state"] == "finished" and view._meta["best_id"] == outcome.best.id == 5
    assert view._meta["run_id"] == outcome.run_id and view._meta["done"] == 5
    assert view._meta["improvement"] == 3.0 and view._meta["improvement_rel"] == 3.0
    assert view._updates["nodes"] == []  # the snapshot holds everything
    # nodes reached the browser while the search ran, not only at the end
    live = [u for u in updates(sent) if "_updates" in u and u["_updates"]["nodes"]]
    assert len(live) >= 3
    assert {r["id"] for u in live for r in u["_updates"]["nodes"]} == set(outcome.tree.nodes)
    assert any(r["status"] == "running" for u in live for r in u["_updates"]["nodes"])
    before = len(sent)
    view.flush()  # idempotent once the final snapshot is out
    assert len(sent) == before


def test_resumed_run_shows_existing_nodes_at_once() -> None:
    view = TreeView(protocol=MAX, steps=20)
    sent = capture(view)
    tree = sample_tree()
    view.callback.on_run_started(run_id="r1", run_dir="x", resumed=True, protocol=MAX, tree=tree)
    assert len(view._nodes["nodes"]) == len(tree) and view._meta["state"] == "running"
    assert "_nodes" in updates(sent)[-1]


def make_node(i: int, parent: int | None, status: Status = Status.RUNNING) -> Node:
    op = Operator.BASELINE if parent is None else Operator.IMPROVE
    return Node(id=i, parent=parent, operator=op, plan=f"plan {i}", code=f"x = {i}\n", status=status)


def test_two_hundred_rapid_events_make_a_handful_of_sends() -> None:
    view = TreeView(protocol=MAX, steps=200, throttle=0.25)
    changes: list[object] = []
    view.observe(lambda change: changes.append(change["new"]), names=["_updates"])
    sent = capture(view)
    cb = view.callback
    cb.on_run_started(run_id="r", run_dir="x", resumed=False, protocol=MAX, tree=None)
    start = time.monotonic()
    cb.on_node_created(node=make_node(0, None))
    for i in range(1, 200):
        node = make_node(i, 0)
        cb.on_node_created(node=node)
        cb.on_node_started(node=node)
    elapsed = time.monotonic() - start
    time.sleep(0.6)  # the trailing send
    assert elapsed < 0.25, f"the events themselves took {elapsed:.3f} s"
    assert 1 <= len(changes) <= 3, len(changes)
    msgs = [u for u in updates(sent) if "_updates" in u]
    assert len(msgs) == len(changes)
    assert {r["id"] for u in msgs for r in u["_updates"]["nodes"]} == set(range(200))


def test_update_bytes_do_not_grow_with_the_tree() -> None:
    sizes = {}
    for n in (10, 100, 1000):
        tree = synthetic_tree(n, seed=1)
        view = TreeView(protocol=PROTOCOL, steps=n + 5, throttle=0.0)
        view.load(tree=tree, protocol=PROTOCOL, state="running", run_id="bench")
        sent = capture(view)
        parent = tree[n - 1]
        node = Node(id=n, parent=parent.id, operator=Operator.IMPROVE, plan="one more change",
                    code=parent.code.replace("lr = ", "lr = 0.5 or "), status=Status.RUNNING)
        tree.add(node)
        view.callback.on_node_created(node=node, tree=tree)
        sizes[n] = len(json.dumps(sent[-1]))
    print("bytes per node update:", sizes)
    assert sizes[1000] < 1.2 * sizes[10] + 200 and sizes[1000] < 8000


# ---- requests from the browser -----------------------------------------------------------------


def test_export_request_writes_the_file_and_replies_with_its_path(tmp_path) -> None:
    tree = sample_tree()
    view = TreeView(protocol=MAX, steps=9)
    view.load(tree=tree, protocol=MAX, state="finished", run_id="run-1")
    assert view._meta["can_export"] is False

    def export(node_id: int) -> str:
        path = tmp_path / f"node-{node_id}.py"
        path.write_text(export_script(tree, MAX, node_id, run_id="run-1"))
        return str(path)

    view.on_export(export)
    assert view._meta["can_export"] is True
    sent = capture(view)
    view._handle_custom_msg({"type": "export", "id": "q1", "node": None}, [])  # as ipywidgets dispatches
    view._handle_custom_msg({"type": "export", "id": "q2", "node": 7}, [])
    view._handle_custom_msg({"type": "export", "id": "q3", "node": 99}, [])
    view._handle_custom_msg({"type": "teleport", "id": "q4"}, [])
    r1, r2, r3, r4 = replies(sent)
    assert r1 == {"type": "export", "id": "q1", "node": 6, "path": str(tmp_path / "node-6.py")}
    assert "wider hidden layer" in (tmp_path / "node-6.py").read_text()
    assert r2["node"] == 7 and (tmp_path / "node-7.py").exists()
    assert r3 == {"error": "no node 99 in this run", "id": "q3"}
    assert r4["id"] == "q4" and "unknown request" in r4["error"]


def test_stop_and_resync_requests() -> None:
    view = TreeView(protocol=MAX, steps=9)
    sent = capture(view)
    view._handle_custom_msg({"type": "stop", "id": 1}, [])
    assert replies(sent)[-1] == {"error": "this run cannot be stopped from the view", "id": 1}
    stopped = []
    view.on_stop(lambda: stopped.append(True))
    view.callback.on_run_started(run_id="r", run_dir="x", resumed=False, protocol=MAX, tree=None)
    assert view._meta["can_stop"] is True
    view._handle_custom_msg({"type": "stop", "id": 2}, [])
    assert stopped == [True] and replies(sent)[-1] == {"type": "stop", "id": 2}
    view.callback.on_node_created(node=make_node(0, None))
    view._handle_custom_msg({"type": "resync", "id": 3}, [])
    assert [r["id"] for r in view._nodes["nodes"]] == [0]
    assert replies(sent)[-1] == {"type": "resync", "id": 3, "seq": view._nodes["seq"]}
    view.callback.on_run_finished(state="stopped", reason="stopped by the user", tree=None)
    assert view._meta["can_stop"] is False and view._meta["state"] == "stopped"
    view._handle_custom_msg({"type": "stop", "id": 4}, [])  # a click queued behind a blocking run
    assert replies(sent)[-1] == {"error": "the run has already ended (stopped)", "id": 4}
    assert stopped == [True]


# ---- static fallbacks ---------------------------------------------------------------------------


def test_static_html_with_dot() -> None:
    if not (os.path.exists("/usr/bin/dot") or __import__("shutil").which("dot")):
        pytest.skip("graphviz's dot is not installed")
    out = static_html(sample_tree(), MAX, state="finished", run_id="run-1")
    assert "<svg" in out and "<?xml" not in out and "<pre" not in out
    assert "best val_acc 0.9 (node 6)" in out and "improvement over the baseline +0.1" in out


def test_static_html_without_dot_falls_back_to_the_text_tree(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no dot on the PATH
    tree = sample_tree()
    tree[1].plan = "<script>alert(1)</script>"
    out = static_html(tree, MAX, state="running", run_id="run-1")
    assert out.count("<svg") == 1 and "<pre" in out and "apt-get install graphviz" in out  # the plot, no graph
    assert "<script>" not in out and "&lt;script&gt;" in out
    big = static_html(synthetic_tree(400), PROTOCOL, state="finished", run_id="big")
    assert "<pre" in big and "more" in big


def test_mimebundle_has_widget_view_html_and_text() -> None:
    view = TreeView(protocol=MAX, steps=9)
    view.load(tree=sample_tree(), protocol=MAX, state="finished", run_id="run-1")
    data, _ = view._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == view.model_id
    assert "best val_acc 0.9 (node 6)" in data["text/html"]
    assert data["text/plain"].startswith("<TreeView run run-1: finished, 10 nodes")


def test_standalone_page_inlines_the_renderer_and_escapes_data() -> None:
    tree = sample_tree()
    tree[2].plan = "</script><script>alert(1)</script>"
    page = standalone_html(tree, MAX, state="finished", run_id="run-1")
    assert page.count("</script>") == 2 and "mountTreeView(" in page
    assert "\\u003c/script>" in page


@pytest.mark.slow
def test_headless_run_saves_the_final_tree_in_widget_state(tmp_path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    code = variant("x = 2  # search: int(1, 9)")
    cell = (
        "from autoresearch_jupyter import Protocol, Search\n"
        "from autoresearch_jupyter.notebook.widget import TreeView\n"
        f"CODE = {code!r}\n"
        "protocol = Protocol.for_script(CODE, metric='score', maximize=True, time_budget=10)\n"
        "search = Search(code=CODE, protocol=protocol, runs_dir='runs',\n"
        "                settings={'steps': 4, 'executor': {'name': 'local', 'workers': 1, 'warm': 'off'}})\n"
        "view = TreeView(protocol=protocol, steps=4)\n"
        "view.show()\n"
        "search.subscribe(view.callback)\n"
        "outcome = search.run()\n"
        "view.flush()\n"
        "print(len(outcome.tree), outcome.best.id)\n"
    )
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell(cell))
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", store_widget_state=True,
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    count, best = map(int, nb.cells[0].outputs[-1]["text"].split())
    states = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    view = next(s["state"] for s in states.values() if s["state"].get("_anywidget_id", "").endswith("TreeView"))
    assert len(view["_nodes"]["nodes"]) == count >= 3
    assert view["_meta"]["state"] == "finished" and view["_meta"]["best_id"] == best
    display = nb.cells[0].outputs[0]["data"]
    assert "application/vnd.jupyter.widget-view+json" in display
    assert f"(node {best})" in display["text/html"]  # the fallback was refreshed at the end


# ---- live output of running nodes ----------------------------------------------------------

NOISY = '''import time
x = 1
for i in range(30):
    print(f"step {i} " + "." * 2000, flush=True)  # ~20 KB/s of output
    time.sleep(0.1)
print(f"score: {x}")
'''


def test_running_nodes_stream_a_bounded_tail_of_their_output(tmp_path) -> None:
    protocol = Protocol.for_script(NOISY, metric="score", maximize=True, time_budget=30)
    search = Search(code=NOISY, protocol=protocol, runs_dir=tmp_path,
                    settings={"steps": 0, "executor": {"name": "local", "workers": 1, "warm": "off"}})
    view = TreeView(protocol=protocol, steps=0, throttle=0.05)
    seen: list[tuple[float, dict]] = []
    view.observe(lambda change: seen.append((time.monotonic(), change["new"])), names="_live")
    search.subscribe(view.callback)
    t0 = time.monotonic()
    outcome = search.run()
    elapsed = time.monotonic() - t0
    assert outcome.tree[0].status is Status.OK
    tails = [live["0"] for _, live in seen if "0" in live]
    assert len(tails) >= 2, "the running baseline's output reached the view while it ran"
    assert "step " in tails[0]["tail"] and tails[-1]["bytes"] > tails[0]["bytes"]
    assert view._live == {}, "nothing live once the run is over"
    sent = sum(len(json.dumps(live)) for _, live in seen)
    rate = sent / elapsed
    print(f"\nlive tail: {len(seen)} sends, {sent} bytes in {elapsed:.1f} s = {rate / 1000:.1f} KB/s for one running node "
          f"(its output grew {tails[-1]['bytes'] / elapsed / 1000:.1f} KB/s)")
    assert rate <= 20_000


def test_static_fallback_has_the_progress_plot_with_a_point_per_node() -> None:
    import re as _re

    tree = sample_tree()
    page = static_html(tree, MAX, state="finished", run_id="r")
    plot = page.split('class="autoresearch-plot">', 1)[1].split("</svg>", 1)[0]
    ids = sorted(int(i) for i in _re.findall(r'data-id="(\d+)"', plot))
    assert ids == sorted(tree.nodes)
    assert plot.count("<circle") == sum(1 for n in tree if n.status is Status.OK and n.metric is not None)
    assert 'stroke-dasharray="4 3"' in plot and "<path" in plot  # the baseline and the running best
    assert 'opacity="0.3"' not in plot  # no noise floor measured: no band
    tree[0].meta["noise_sd"] = 0.02
    assert 'opacity="0.3"' in static_html(tree, MAX, state="finished", run_id="r")
