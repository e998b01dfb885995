"""The shared tree view's progress plot, live output of running nodes and the fixed rough edges,
in headless chromium on a standalone page that loads the same treeview.js as the widget and the
JupyterLab run view."""

from __future__ import annotations

from synthetic import PROTOCOL, synthetic_tree
from trees import sample_tree

from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.report.views import standalone_html

MAX = Protocol(metric="val_acc", maximize=True, time_budget=60)


def open_view(page, tree, protocol=MAX, **kwargs) -> None:
    page.set_content(standalone_html(tree, protocol, run_id="r", **{"state": "finished", **kwargs}))
    page.wait_for_selector(".ar-row")


def test_plot_has_one_point_per_node_and_a_click_selects_it(page, artifacts) -> None:
    tree = sample_tree()
    open_view(page, tree)
    points = page.locator(".ar-plot .ar-pt")
    assert points.count() == len(tree)
    # nodes with a metric are circles, the others sit on the strip under the axis
    assert page.locator(".ar-plot circle.ar-pt").count() == sum(1 for n in tree if n.metric is not None and n.status.value == "ok")
    assert page.locator(".ar-plot .ar-bestline").count() == 1 and page.locator(".ar-plot .ar-baseline").count() == 1
    assert page.locator(".ar-plot .ar-band").count() == 0, "no noise floor measured: no band"
    page.locator('.ar-plot .ar-pt[data-id="8"]').click()
    page.wait_for_function("document.querySelector('.ar-insp-title')?.textContent.includes('node 8')")
    assert page.locator('.ar-row.ar-sel[data-id="8"]').count() == 1
    assert page.locator(".ar-plot .ar-pt-sel").get_attribute("data-id") == "8"
    page.screenshot(path=str(artifacts / "plot-sample.png"))


def test_plot_shows_a_noise_band_when_the_run_measured_one(page) -> None:
    tree = sample_tree()
    tree[0].meta["noise_sd"] = 0.01
    open_view(page, tree)
    assert page.locator(".ar-plot .ar-band").count() == 1


def test_plot_of_a_thousand_nodes_renders_within_200_ms(page) -> None:
    tree = synthetic_tree(1000, seed=3, running=2)
    open_view(page, tree, protocol=PROTOCOL, state="running", steps=1200)
    times = page.evaluate("""() => {
      const { store, buildPlot } = window.arView;
      const out = [];
      for (let i = 0; i < 5; i++) {
        const host = document.createElement("div");
        host.className = "ar-view";
        document.body.append(host);
        const t0 = performance.now();
        host.append(buildPlot(store));
        host.getBoundingClientRect();
        document.body.offsetHeight;
        out.push(performance.now() - t0);
        host.remove();
      }
      return out;
    }""")
    assert page.locator(".ar-plot .ar-pt").count() == 1000
    best = sorted(times)[len(times) // 2]
    print(f"\nplot of 1,000 nodes: median {best:.1f} ms over 5 builds ({', '.join(f'{t:.1f}' for t in times)})")
    assert best <= 200


def test_best_node_is_selected_at_first_and_a_pick_sticks(page) -> None:
    open_view(page, sample_tree())
    assert page.locator(".ar-row.ar-sel").get_attribute("data-id") == "6"  # the best
    assert "node 6" in page.inner_text(".ar-insp-title")
    page.locator('.ar-row[data-id="5"]').click(position={"x": 60, "y": 10})
    page.evaluate("""() => { const s = window.arView.store; s.setMeta({ ...s.meta, best_id: 8 }); }""")
    page.wait_for_timeout(100)
    assert page.locator(".ar-row.ar-sel").get_attribute("data-id") == "5"


def test_fold_checkbox_changes_a_small_tree(page) -> None:
    open_view(page, sample_tree())  # each parent has at most a few failed leaves
    folded = page.locator(".ar-row[data-id]").count()
    assert page.locator(".ar-group").count() >= 1
    page.locator(".ar-fold input").first.uncheck()
    page.wait_for_timeout(100)
    assert page.locator(".ar-group").count() == 0
    assert page.locator(".ar-row[data-id]").count() == len(sample_tree()) > folded


def test_rows_keep_their_indent_when_a_node_joins_the_best_path(page) -> None:
    open_view(page, sample_tree())
    page.locator(".ar-fold input").first.uncheck()
    page.wait_for_function("!document.querySelector('.ar-row.ar-group')")  # unfolded (the render is async)
    indents = "() => Object.fromEntries([...document.querySelectorAll('.ar-row[data-id]')].map((r) => [r.dataset.id, r.style.paddingLeft]))"
    before = page.evaluate(indents)
    # node 8 (a sibling of the old best's parent branch) becomes the best: the path moves
    page.evaluate("""() => {
      const s = window.arView.store;
      const rec = s.nodes.get(8);
      s.applyUpdates({ seq: s.seq + 1, from: s.seq + 1, nodes: [{ ...rec, v: s.seq + 1, metric: 0.99, kept: true, kind: "kept" }] });
      s.setMeta({ ...s.meta, best_id: 8, best_metric: 0.99 });
    }""")
    page.wait_for_function("document.querySelector('.ar-row.ar-best')?.dataset.id === '8'")
    assert page.locator('.ar-row.ar-path[data-id="8"]').count() == 1
    assert page.evaluate(indents) == before


def test_diffs_scroll_sideways_instead_of_wrapping(page) -> None:
    tree = sample_tree()
    long = "x = " + " + ".join(f"weight_{i}" for i in range(60))
    tree[6].diff = f"--- a\n+++ b\n@@ -1 +1 @@\n-x = 1\n+{long}\n"
    open_view(page, tree)
    page.set_viewport_size({"width": 700, "height": 800})
    page.locator('.ar-row[data-id="6"]').click(position={"x": 60, "y": 10})
    style = page.evaluate("""() => { const pre = document.querySelector('.ar-insp .ar-diff');
      const line = pre.querySelector('.ar-add'); const cs = getComputedStyle(line);
      return { ws: cs.whiteSpace, wb: cs.wordBreak, lineHeight: line.getBoundingClientRect().height,
               scrolls: pre.scrollWidth > pre.clientWidth, overflowX: getComputedStyle(pre).overflowX }; }""")
    assert style["ws"] == "pre" and style["wb"] == "normal" and style["overflowX"] == "auto", style
    assert style["scrolls"] and style["lineHeight"] < 20, "one long line stays one line and scrolls"


def test_running_node_shows_its_live_output_and_elapsed_over_budget(page) -> None:
    tree = synthetic_tree(6, seed=1, running=1)
    open_view(page, tree, protocol=PROTOCOL, state="running", steps=10)
    running = tree[5]
    assert running.status.value == "running"
    page.evaluate(f"""() => {{ const s = window.arView.store; s.ui.picked = true; s.ui.selected = {running.id};
      s.setLive({{ "{running.id}": {{ tail: "epoch 1 loss 0.5\\nepoch 2 loss 0.4\\n", bytes: 34 }} }}); }}""")
    page.wait_for_selector(".ar-insp .ar-live")
    assert "epoch 2 loss 0.4" in page.inner_text(".ar-insp .ar-live")
    bar = page.inner_text(".ar-insp .ar-running")
    assert "running:" in bar and "budget" in bar and page.locator(".ar-meter-fill").count() == 1
    page.evaluate(f"""() => window.arView.store.setLive({{ "{running.id}": {{ tail: "epoch 3 loss 0.3\\n", bytes: 51 }} }})""")
    page.wait_for_function("document.querySelector('.ar-insp .ar-live').textContent.includes('epoch 3')")


def test_header_says_the_node_count_once_with_the_baseline(page) -> None:
    tree = sample_tree()
    open_view(page, tree, steps=9)
    assert f"{len(tree)} nodes (baseline + {len(tree) - 1} of 9)" in page.inner_text(".ar-head")
