// The search-tree view: a store of node records and a renderer for it. No dependencies, no build.
// Shared by the notebook widget (widget.js, the anywidget adapter) and the JupyterLab run view.
// Records and the header come from autoresearch_jupyter/viewstate.py (node_record, run_meta).
//
// Hook for the JupyterLab extension: "Insert as cell" dispatches a cancelable, bubbling
// CustomEvent "autoresearch:insert-node" with detail {nodeId, code, runId, metricName, metric}; a listener that
// inserts the cell calls event.preventDefault(). Without one, the code is copied instead.

const FOLDABLE = new Set(["reverted", "buggy", "timeout", "rejected", "cancelled", "infeasible", "eval_failed"]);
const LABEL = { timeout: "timed out", kept: "improved on parent", eval_failed: "evaluator failed" };
const MAX_INDENT = 24;

export function createStore() {
  const listeners = new Set();
  const nodes = new Map();
  const kids = new Map(); // parent id (null for roots) -> child ids, ascending
  function put(rec) {
    const old = nodes.get(rec.id);
    if (old && old.v > rec.v) return;
    nodes.set(rec.id, rec);
    store.rev += 1;
    if (old) return;
    const list = kids.get(rec.parent) || [];
    list.push(rec.id);
    if (list.length > 1 && list[list.length - 2] > rec.id) list.sort((a, b) => a - b);
    kids.set(rec.parent, list);
  }
  const store = {
    nodes,
    kids,
    meta: {},
    rev: 0, // bumped on every record stored: what the plot redraws on
    live: {}, // running node id -> {tail, bytes}: the end of its output.log, refreshed while it runs
    seq: 0,
    clockOffset: 0, // kernel clock minus browser clock, in seconds
    // `picked`: the user chose a node; until then the best node is selected (and followed).
    ui: { selected: null, picked: false, collapsed: new Set(), unfolded: new Set(), fold: true, plot: true,
          note: { text: "", error: false } },
    setLive(live) {
      store.live = live || {};
      store.changed();
    },
    setMeta(meta) {
      store.meta = meta || {};
      if (typeof store.meta.now === "number") store.clockOffset = store.meta.now - Date.now() / 1000;
      store.changed();
    },
    // A full snapshot {seq, nodes}: replaces the store unless it is older than what we have.
    applySnapshot(snap) {
      if (!snap || !Array.isArray(snap.nodes)) return;
      if (snap.seq >= store.seq) {
        nodes.clear();
        kids.clear();
      }
      snap.nodes.forEach(put);
      store.seq = Math.max(store.seq, snap.seq || 0);
      store.changed();
    },
    // An update {seq, from, nodes}; returns true when batches before `from` were missed.
    applyUpdates(batch) {
      if (!batch || !Array.isArray(batch.nodes) || !batch.nodes.length) return false;
      const gap = batch.from > store.seq + 1 && batch.seq > store.seq;
      batch.nodes.forEach(put);
      store.seq = Math.max(store.seq, batch.seq || 0);
      store.changed();
      return gap;
    },
    // A node's full code, rebuilt from the nearest ancestor that carries it; null if unknown.
    code(id) {
      const chain = [];
      let rec = nodes.get(id);
      while (rec && rec.code === undefined) {
        chain.push(rec);
        rec = nodes.get(rec.parent);
      }
      if (!rec || rec.code === null) return null;
      let lines = rec.code.split("\n");
      for (let i = chain.length - 1; i >= 0; i--) {
        const edits = chain[i].edits || [];
        for (let k = edits.length - 1; k >= 0; k--) {
          const [start, end, added] = edits[k];
          lines.splice(start, end - start, ...added);
        }
      }
      return lines.join("\n");
    },
    bestPath() {
      const path = new Set();
      for (let rec = nodes.get(store.meta.best_id); rec && !path.has(rec.id); rec = nodes.get(rec.parent)) {
        path.add(rec.id);
      }
      return path;
    },
    subscribe(fn) {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    changed() {
      listeners.forEach((fn) => fn());
    },
  };
  return store;
}

// ---- formatting -------------------------------------------------------------------------------

function h(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== undefined && text !== null) el.textContent = String(text);
  return el;
}

const fmt = (v) => (v === null || v === undefined ? "-" : String(Number(v.toPrecision(6))));
const fmtDelta = (v) => (v === null || v === undefined ? "" : (v >= 0 ? "+" : "") + fmt(v));
const label = (kind) => LABEL[kind] || kind;
// "new best" is its own label: "kept" only means better than the parent.
const verdict = (rec) => (rec.new_best ? "new best" : label(rec.kind));
const fmtBytes = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`);

// The one count of nodes, said the same way as the repr, the CLI and the report: the baseline
// is one of the nodes, and the steps are the nodes after it.
export function nodeCount(m) {
  const n = m.nodes ?? 0;
  if (typeof m.steps !== "number" || n === 0) return `${n} node${n === 1 ? "" : "s"}`;
  const ab = m.ablated || 0;  // ablation checks at the end are nodes too, outside the step budget
  const tail = ab ? ` + ${ab} ablation` : "";
  return `${n} node${n === 1 ? "" : "s"} (baseline + ${Math.max(0, n - 1 - ab)} of ${m.steps}${tail})`;
}

// ---- the progress plot ------------------------------------------------------------------------
// Each node's metric against its order (ids are creation order), coloured by outcome; nodes
// without a metric sit on a strip under the axis. The running best is a step line, the baseline
// a dashed line, and a measured noise floor (meta.noise_sd) a band around the baseline. Plain SVG:
// a charting library (uPlot, ~50 KB) would more than double the bundle for these four shapes.

const SVG = "http://www.w3.org/2000/svg";
const PW = 800, PH = 150, PL = 52, PR = 10, PT = 8, PB = 26;

function sv(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const k in attrs) el.setAttribute(k, attrs[k]);
  if (text !== undefined) el.textContent = text;
  return el;
}

export function buildPlot(store) {
  const m = store.meta;
  const recs = [...store.nodes.values()].sort((a, b) => a.id - b.id);
  const svg = sv("svg", { viewBox: `0 0 ${PW} ${PH}`, class: "ar-plot-svg", role: "img" });
  svg.setAttribute("aria-label", `${m.metric || "metric"} of each node in order`);
  const good = (r) => r.metric !== null && r.metric !== undefined && r.status === "ok";
  const vals = recs.filter(good).map((r) => r.metric);
  const base = typeof m.baseline_metric === "number" ? m.baseline_metric : null;
  const sd = typeof m.noise_sd === "number" && base !== null ? m.noise_sd : null;
  if (base !== null) vals.push(base);
  if (sd !== null) vals.push(base - sd, base + sd);
  let lo = vals.length ? Math.min(...vals) : 0;
  let hi = vals.length ? Math.max(...vals) : 1;
  if (hi === lo) {
    const d = Math.abs(lo) * 0.05 || 0.5;
    lo -= d;
    hi += d;
  }
  const pad = (hi - lo) * 0.06;
  lo -= pad;
  hi += pad;
  const bottom = PH - PB;
  const x = (i) => PL + (PW - PL - PR) * (recs.length <= 1 ? 0.5 : i / (recs.length - 1));
  const y = (v) => PT + (bottom - PT) * (1 - (v - lo) / (hi - lo));
  svg.append(sv("line", { x1: PL, x2: PW - PR, y1: bottom, y2: bottom, class: "ar-axis" }));
  svg.append(sv("text", { x: PL - 4, y: PT + 8, class: "ar-tick", "text-anchor": "end" }, fmt(hi - pad)));
  svg.append(sv("text", { x: PL - 4, y: bottom, class: "ar-tick", "text-anchor": "end" }, fmt(lo + pad)));
  svg.append(sv("text", { x: PL, y: PH - 2, class: "ar-tick" }, "node order →"));
  if (sd !== null) {
    svg.append(sv("rect", { x: PL, width: PW - PL - PR, y: y(base + sd), height: Math.max(1, y(base - sd) - y(base + sd)),
                            class: "ar-band" }, undefined));
  }
  if (base !== null) {
    svg.append(sv("line", { x1: PL, x2: PW - PR, y1: y(base), y2: y(base), class: "ar-baseline" }));
  }
  const better = (a, b) => (m.direction === "minimize" ? a < b : a > b);
  let best = null;
  let d = "";
  recs.forEach((r, i) => {
    if (!good(r)) return;
    if (best === null) d = `M${x(i).toFixed(1)},${y(r.metric).toFixed(1)}`;
    else if (better(r.metric, best)) d += `H${x(i).toFixed(1)}V${y(r.metric).toFixed(1)}`;
    else return;
    best = r.metric;
  });
  if (d) svg.append(sv("path", { d: `${d}H${x(recs.length - 1).toFixed(1)}`, class: "ar-bestline" }));
  const dots = sv("g", { class: "ar-pts" });
  recs.forEach((r, i) => {
    const dot = good(r)
      ? sv("circle", { cx: x(i).toFixed(1), cy: y(r.metric).toFixed(1), r: 3.5 })
      : sv("rect", { x: (x(i) - 3).toFixed(1), y: bottom + 4, width: 6, height: 6 });
    dot.setAttribute("class", `ar-pt ar-k-${r.kind}`);
    dot.dataset.id = r.id;
    dots.append(dot);
  });
  svg.append(dots);
  svg.append(sv("text", { x: PW - PR, y: PT + 8, class: "ar-tick ar-plot-hover", "text-anchor": "end" }, ""));
  return svg;
}

function fmtDur(s) {
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} m`;
}

function timing(meta, offset) {
  if (typeof meta.started !== "number") return null;
  const now = typeof meta.finished === "number" ? meta.finished : Date.now() / 1000 + offset;
  const elapsed = Math.max(0, now - meta.started);
  let left = null;
  if (meta.state === "running" && typeof meta.steps === "number") {
    const done = meta.done + (meta.baseline_done ? 1 : 0);
    const total = meta.steps + 1;
    if (done > 0 && done < total) left = (elapsed / done) * (total - done);
    if (meta.max_time) left = Math.min(left ?? Infinity, Math.max(0, meta.max_time - elapsed));
  }
  return { elapsed, left };
}

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return;
    } catch (err) {
      // fall through to the textarea route (permission denied, unfocused document)
    }
  }
  const ta = h("textarea", "ar-offscreen");
  ta.value = text;
  document.body.appendChild(ta);
  ta.select();
  const ok = document.execCommand("copy");
  ta.remove();
  if (!ok) throw new Error("the browser refused clipboard access");
}

// ---- the view ---------------------------------------------------------------------------------

// Render `store` into `el`. `actions` (all optional) talk to the kernel:
// exportNode(id | null) -> Promise<{node, path}>, stop() -> Promise. Returns a cleanup function.
export function mountTreeView(el, store, actions = {}) {
  const root = h("div", "ar-view");
  const head = h("div", "ar-head");
  const bar = h("div", "ar-bar");
  const tree = h("div", "ar-tree");
  const insp = h("div", "ar-insp");
  const body = h("div", "ar-body");
  tree.setAttribute("role", "tree");
  tree.tabIndex = 0;
  body.append(tree, insp);
  const plot = h("div", "ar-plot");
  root.append(head, bar, plot, body);
  el.replaceChildren(root);

  const button = (act, text, title) => {
    const b = h("button", "ar-btn", text);
    b.dataset.act = act;
    b.title = title;
    bar.append(b);
    return b;
  };
  const btn = {
    best: button("export-best", "Export best", "Write the best node as a script (runs in the kernel)"),
    sel: button("export-sel", "Export selected", "Write the selected node as a script (runs in the kernel)"),
    copy: button("copy", "Copy code", "Copy the selected node's code to the clipboard"),
    insert: button("insert", "Insert as cell", "Insert the selected node's code as a notebook cell below"),
    stop: button("stop", "Stop", "Stop the search: running nodes are cancelled, the journal is kept"),
  };
  const foldBox = h("input");
  foldBox.type = "checkbox";
  foldBox.checked = store.ui.fold;
  const foldLabel = h("label", "ar-fold");
  foldLabel.append(foldBox, " fold failed and reverted leaves");
  const plotBox = h("input");
  plotBox.type = "checkbox";
  plotBox.checked = store.ui.plot;
  const plotLabel = h("label", "ar-fold");
  plotLabel.append(plotBox, " plot");
  const note = h("span", "ar-note");
  note.setAttribute("role", "status");
  bar.append(foldLabel, plotLabel, note);

  const rows = new Map(); // row key -> {el, sig}
  let visible = []; // the rows in order, as {id, indent} or {group, ids, indent, open}
  let inspSig = "";
  let frame = 0;

  // The note lives in the store, so a reply that lands after the view was re-rendered still shows.
  function setNote(text, error = false) {
    store.ui.note = { text, error };
    store.changed();
  }

  // ---- header ----
  function renderHead() {
    const m = store.meta;
    const parts = [];
    const chip = (text, cls = "") => parts.push(h("span", `ar-chip ${cls}`, text));
    chip(m.state || "waiting", `ar-state ar-state-${m.state || "waiting"}`);
    if (m.run_id) chip(`run ${m.run_id}`, "ar-muted");
    chip(nodeCount(m), "ar-count");
    if (m.running) chip(`${m.running} running`, "ar-k-running-text");
    const arrow = m.direction === "minimize" ? "↓" : "↑";
    if (m.best_id !== null && m.best_id !== undefined) {
      chip(`best ${m.metric} ${arrow} ${fmt(m.best_metric)} (node ${m.best_id})`, "ar-strong");
      const fromBase = store.nodes.get(m.best_id)?.parent !== null; // the baseline itself: no gain to show
      if (fromBase && m.improvement !== null && m.improvement !== undefined) {
        const pct = m.improvement_rel * 100;
        const rel = m.improvement_rel === null ? "" : ` (${pct >= 0 ? "+" : ""}${Number(pct.toPrecision(3))}%)`;
        chip(`${fmtDelta(m.improvement)}${rel} vs baseline ${fmt(m.baseline_metric)}`, m.improvement > 0 ? "ar-good" : "");
      }
    } else if (m.metric) {
      chip(`${m.metric} ${arrow}: no result yet`, "ar-muted");
    }
    const t = timing(m, store.clockOffset);
    if (t) chip(`${fmtDur(t.elapsed)} elapsed${t.left !== null ? `, ~${fmtDur(t.left)} left` : ""}`);
    if (m.tokens) {
      const cost = m.tokens.cost !== null ? ` · $${m.tokens.cost.toFixed(4)}` : "";
      chip(`${m.tokens.total.toLocaleString()} tokens${cost}`);
    }
    if (m.executor) {
      const x = m.executor;
      const size = typeof x.cpus === "number" ? ` · ${x.cpus} CPU, ${x.gpus ?? 0} GPU` : "";
      const hosts = x.host_count ? ` · ${x.host_count} host${x.host_count === 1 ? "" : "s"}: ${x.hosts.join(", ")}` : "";
      chip(`executor ${x.name}${size}${hosts}`, "ar-muted");
      if (x.dashboard) chip(`dashboard ${x.dashboard}`, "ar-muted");
    }
    if (m.reason && m.state !== "running") chip(m.reason, "ar-muted");
    head.replaceChildren(...parts);
  }

  function renderBar() {
    const m = store.meta;
    const sel = store.ui.selected;
    const has = sel !== null && store.nodes.has(sel);
    btn.best.hidden = btn.sel.hidden = !(actions.exportNode && m.can_export);
    btn.best.disabled = m.best_id === null || m.best_id === undefined;
    btn.sel.disabled = btn.copy.disabled = btn.insert.disabled = !has;
    btn.stop.hidden = !(actions.stop && m.can_stop);
    const { text = "", error = false } = store.ui.note || {};
    note.textContent = text;
    note.classList.toggle("ar-error", error);
  }

  // ---- tree rows ----
  // Rows in depth-first order, like a git graph: the path to the best node is the unindented
  // spine (each step after its parent's side attempts), side branches are indented under the
  // node they leave from, and every row names its parent. Failed and reverted leaves that are
  // not on the best path fold into one row under their parent.
  // Rebuilt when records change, at most once a second while updates stream in (a 1,000-point
  // rebuild costs ~15 ms; a node update alone ~20 ms), so a busy run's updates stay cheap.
  let plotRev = -1;
  let plotSig = "";
  let plotAt = 0;
  let plotTimer = 0;
  function renderPlot() {
    plot.hidden = !store.ui.plot;
    if (!store.ui.plot) return;
    const m = store.meta;
    const sig = `${m.best_id}|${m.baseline_metric}|${m.noise_sd}|${m.direction}`;
    const stale = store.rev !== plotRev || sig !== plotSig;
    const wait = plotAt + 1000 - performance.now();
    if (stale && plotRev >= 0 && wait > 0) {
      if (!plotTimer) plotTimer = setTimeout(() => { plotTimer = 0; schedule(); }, wait);
    } else if (stale) {
      plotAt = performance.now();
      plotRev = store.rev;
      plotSig = sig;
      plot.replaceChildren(store.nodes.size ? buildPlot(store) : h("div", "ar-empty", "The plot fills in as nodes run."));
    }
    plot.querySelector(".ar-pt-sel")?.classList.remove("ar-pt-sel");
    const sel = store.ui.selected;
    if (sel !== null) plot.querySelector(`.ar-pt[data-id="${sel}"]`)?.classList.add("ar-pt-sel");
  }

  function computeVisible(path) {
    const out = [];
    const { collapsed, unfolded, fold, selected } = store.ui;
    const roots = [...(store.kids.get(null) || [])];
    for (const [parent, ids] of store.kids) {
      if (parent !== null && !store.nodes.has(parent)) roots.push(...ids); // orphans, until resync
    }
    const stack = roots.reverse().map((id) => ({ id, indent: 0 }));
    while (stack.length) {
      const item = stack.pop();
      out.push(item);
      if (item.group !== undefined || collapsed.has(item.id)) continue;
      const children = store.kids.get(item.id) || [];
      let folded = [];
      if (fold) {
        folded = children.filter((c) => {
          const rec = store.nodes.get(c);
          return FOLDABLE.has(rec.kind) && !store.kids.has(c) && !path.has(c) && c !== selected;
        });
      }
      const open = unfolded.has(item.id);
      const shown = folded.length && !open ? children.filter((c) => !folded.includes(c)) : children;
      // The first child (the oldest) continues at this indent, after the others: a row keeps its
      // indent as the tree grows, whichever branch the best node moves to (the path is marked).
      const next = shown.includes(children[0]) ? children[0] : undefined;
      if (next !== undefined) stack.push({ id: next, indent: item.indent });
      for (let i = shown.length - 1; i >= 0; i--) {
        if (shown[i] !== next) stack.push({ id: shown[i], indent: item.indent + 1 });
      }
      if (folded.length) stack.push({ group: item.id, ids: folded, indent: item.indent + 1, open });
    }
    return out;
  }

  function indent(row, level) {
    row.style.paddingLeft = `${Math.min(level, MAX_INDENT) * 14 + 4}px`;
  }

  function nodeRow(item, path) {
    const rec = store.nodes.get(item.id);
    const m = store.meta;
    const hasKids = store.kids.has(item.id);
    const closed = store.ui.collapsed.has(item.id);
    const hidden = closed ? countBelow(item.id) : 0;
    const flags = [path.has(item.id), m.best_id === item.id, store.ui.selected === item.id, hasKids, hidden];
    const sig = `${rec.v}|${item.indent}|${flags.join()}|${m.direction}`;
    const key = `n${item.id}`;
    const cached = rows.get(key);
    if (cached && cached.sig === sig) return cached.el;
    const row = cached ? cached.el : h("div");
    row.className = `ar-row ar-k-${rec.kind}` + (flags[0] ? " ar-path" : "") + (flags[1] ? " ar-best" : "") +
      (flags[2] ? " ar-sel" : "");
    row.dataset.id = item.id;
    row.setAttribute("role", "treeitem");
    const tog = h("span", "ar-tog", hasKids ? (closed ? "▸" : "▾") : "");
    const value = rec.metric !== null && rec.status === "ok" ? fmt(rec.metric) : label(rec.kind);
    const parts = [tog, h("span", "ar-dot"), h("span", "ar-id", `#${rec.id}`)];
    if (rec.parent !== null) parts.push(h("span", "ar-from", `← ${rec.parent}`));
    parts.push(h("span", "ar-op", rec.operator), h("span", "ar-val", value));
    if (rec.delta !== null) {
      const better = m.direction === "minimize" ? rec.delta < 0 : rec.delta > 0;
      parts.push(h("span", `ar-delta ${better ? "ar-good" : "ar-bad"}`, fmtDelta(rec.delta)));
    }
    if (flags[1]) parts.push(h("span", "ar-star", "★ best"));
    if (closed) parts.push(h("span", "ar-muted", `(${hidden} hidden)`));
    parts.push(h("span", "ar-plan", (rec.plan || "").split("\n")[0]));
    row.replaceChildren(...parts);
    row.title = rec.reason || rec.plan || "";
    indent(row, item.indent);
    rows.set(key, { el: row, sig });
    return row;
  }

  function groupRow(item) {
    const counts = {};
    item.ids.forEach((id) => {
      const k = label(store.nodes.get(id).kind);
      counts[k] = (counts[k] || 0) + 1;
    });
    const what = Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", ");
    const n = item.ids.length;
    const leaves = n === 1 ? "leaf" : "leaves";
    const text = item.open ? `▴ fold ${n === 1 ? "this leaf" : `these ${n} leaves`}` : `⋯ ${n} folded ${leaves} (${what})`;
    const key = `g${item.group}`;
    const sig = `${text}|${item.indent}`;
    const cached = rows.get(key);
    if (cached && cached.sig === sig) return cached.el;
    const row = cached ? cached.el : h("div", "ar-row ar-group");
    row.dataset.group = item.group;
    row.textContent = text;
    indent(row, item.indent);
    rows.set(key, { el: row, sig });
    return row;
  }

  function countBelow(id) {
    let n = 0;
    const stack = [...(store.kids.get(id) || [])];
    while (stack.length) {
      n += 1;
      stack.push(...(store.kids.get(stack.pop()) || []));
    }
    return n;
  }

  function renderTree() {
    const path = store.bestPath();
    visible = computeVisible(path);
    const children = tree.children;
    visible.forEach((item, i) => {
      const row = item.group !== undefined ? groupRow(item) : nodeRow(item, path);
      if (children[i] !== row) tree.insertBefore(row, children[i] || null);
    });
    while (children.length > visible.length) tree.lastChild.remove();
    if (!visible.length) tree.replaceChildren(h("div", "ar-empty", "No nodes yet: the baseline starts first."));
  }

  // ---- inspector ----
  function renderInspector() {
    const id = store.ui.selected;
    const rec = id === null ? undefined : store.nodes.get(id);
    const live = rec && rec.status === "running" ? store.live[id] : undefined;
    const tick = rec && rec.status === "running" ? Math.floor(Date.now() / 1000) : 0;
    const sig = rec ? `${id}|${rec.v}|${store.meta.best_id}|${store.meta.metric}|${live?.bytes}|${tick}` : "none";
    if (sig === inspSig) return;
    inspSig = sig;
    if (!rec) {
      insp.replaceChildren(h("div", "ar-empty", "Click a node to see its plan, metric, diff and output."));
      return;
    }
    const m = store.meta;
    const out = [];
    const title = h("div", "ar-insp-title");
    title.append(h("strong", "", `node ${rec.id}`), ` · ${rec.operator} · `, h("span", `ar-badge ar-k-${rec.kind}`, verdict(rec)));
    if (m.best_id === rec.id) title.append(h("span", "ar-star", " ★ best"));
    out.push(title);
    const facts = h("div", "ar-facts");
    if (rec.parent !== null) {
      const link = h("a", "ar-link", `node ${rec.parent}`);
      link.dataset.select = rec.parent;
      link.href = "#";
      facts.append("from ", link, " · ");
    }
    facts.append(`${m.metric || "metric"} ${fmt(rec.metric)}`);
    if (rec.delta !== null) facts.append(` (${fmtDelta(rec.delta)} vs parent)`);
    if (rec.exec_time !== null) facts.append(` · ${rec.exec_time.toFixed(2)} s`);
    if (rec.exit_code !== null && rec.exit_code !== 0) facts.append(` · exit code ${rec.exit_code}`);
    if (rec.usage) facts.append(` · ${rec.usage.prompt_tokens + rec.usage.completion_tokens} tokens`);
    if (rec.where) facts.append(` · on ${rec.where.host}${rec.where.gpus.length ? ` gpu ${rec.where.gpus.join(",")}` : ""}`);
    out.push(facts);
    if (rec.graded) {  // a separate evaluator decided the metric; the node's own number is shown, not used
      const g = rec.graded;
      const bits = [`graded by the evaluator · self-reported ${fmt(g.self_reported)} (ignored)`];
      if (g.holdout !== null || g.holdout_reason) bits.push(`holdout ${fmt(g.holdout)}${g.holdout_reason ? ` (${g.holdout_reason})` : ""}`);
      out.push(h("div", "ar-muted ar-graded", bits.join(" · ")));
    }
    if (rec.status === "running") out.push(runningBar(rec));
    if (rec.reason) out.push(h("div", "ar-reason", rec.reason));
    if (rec.note) out.push(h("div", "ar-muted", rec.note));
    const numbers = [
      ...Object.entries(rec.measured || {}).map(([k, v]) => `${k} ${fmtMeasured(k, v)}`),
      ...Object.entries(rec.metrics || {}).map(([k, v]) => `${k} ${fmt(v)}`),
    ];
    if (numbers.length) out.push(h("div", "ar-h", "Metrics"), h("div", "ar-metrics", numbers.join(" · ")));
    out.push(h("div", "ar-h", "Plan"), h("div", "ar-plan-text", rec.plan || "-"));
    if (rec.parent === null) {
      out.push(h("div", "ar-h", "Script"), h("pre", "ar-code", store.code(rec.id) ?? "(too large to show here)"));
    } else {
      out.push(h("div", "ar-h", `Diff from node ${rec.parent} (+${rec.added} −${rec.removed})`), diffBlock(rec.diff));
    }
    if (live) {
      out.push(h("div", "ar-h", `Output (live, ${fmtBytes(live.bytes)} so far)`), h("pre", "ar-tail ar-live", live.tail));
    } else if (rec.tail) out.push(h("div", "ar-h", "Output (end)"), h("pre", "ar-tail", rec.tail));
    if (rec.graded && rec.graded.eval_tail) out.push(h("div", "ar-h", "Evaluator output (end)"), h("pre", "ar-tail", rec.graded.eval_tail));
    const old = insp.querySelector(".ar-live");
    const stick = old && old.scrollTop + old.clientHeight >= old.scrollHeight - 4; // follow the end
    insp.replaceChildren(...out);
    const pre = insp.querySelector(".ar-live");
    if (pre && (stick || !old)) pre.scrollTop = pre.scrollHeight;
  }

  // "12 s / 60 s budget" and a bar, for a running node (times from the kernel's clock).
  function runningBar(rec) {
    const budget = store.meta.time_budget;
    const start = rec.started_at;
    const box = h("div", "ar-running");
    if (typeof start !== "number") {
      box.textContent = "waiting for a worker";
      return box;
    }
    const elapsed = Math.max(0, Date.now() / 1000 + store.clockOffset - start);
    box.append(h("span", "", `running: ${fmtDur(elapsed)}` + (budget ? ` / ${fmtDur(budget)} budget` : " elapsed")));
    if (budget) {
      const bar = h("span", "ar-meter");
      const fill = h("span", "ar-meter-fill");
      fill.style.width = `${Math.min(100, (100 * elapsed) / budget).toFixed(1)}%`;
      bar.append(fill);
      box.append(bar);
    }
    return box;
  }

  // The runner's measurements: sizes in MiB/GiB, times in seconds.
  function fmtMeasured(name, value) {
    if (name === "time") return `${value.toPrecision(3)} s`;
    for (const [unit, scale] of [["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]]) {
      if (value >= scale) return `${(value / scale).toPrecision(3)} ${unit}`;
    }
    return `${value} B`;
  }

  function diffBlock(diff) {
    const pre = h("pre", "ar-diff");
    if (!diff) {
      pre.textContent = "(no change)";
      return pre;
    }
    let inHunk = false;
    for (const line of diff.replace(/\n$/, "").split("\n")) {
      let cls = "";
      if (line.startsWith("@@")) {
        inHunk = true;
        cls = "ar-hunk";
      } else if (!inHunk) cls = "ar-file";
      else if (line[0] === "+") cls = "ar-add";
      else if (line[0] === "-") cls = "ar-del";
      pre.append(h("span", cls, line || " "));
    }
    return pre;
  }

  // ---- everything ----
  function render() {
    frame = 0;
    const m = store.meta;
    if (!store.ui.picked && m.best_id !== null && m.best_id !== undefined && store.nodes.has(m.best_id) &&
        store.ui.selected !== m.best_id) {
      store.ui.selected = m.best_id; // nothing chosen yet: show the best node
      store.changed(); // listeners (the run view's commands) hear of the selection; renders again once
    }
    renderHead();
    renderBar();
    renderPlot();
    renderTree();
    renderInspector();
  }
  const schedule = () => {
    if (!frame) frame = requestAnimationFrame(render);
  };

  function select(id) {
    store.ui.selected = id;
    store.ui.picked = true;
    store.changed();
  }

  tree.addEventListener("click", (ev) => {
    const row = ev.target.closest(".ar-row");
    if (!row) return;
    if (row.dataset.group !== undefined) {
      const g = Number(row.dataset.group);
      store.ui.unfolded.has(g) ? store.ui.unfolded.delete(g) : store.ui.unfolded.add(g);
      store.changed();
      return;
    }
    const id = Number(row.dataset.id);
    if (ev.target.classList.contains("ar-tog") && store.kids.has(id)) {
      store.ui.collapsed.has(id) ? store.ui.collapsed.delete(id) : store.ui.collapsed.add(id);
      store.changed();
      return;
    }
    select(id);
  });

  tree.addEventListener("keydown", (ev) => {
    const ids = visible.filter((v) => v.group === undefined).map((v) => v.id);
    const at = ids.indexOf(store.ui.selected);
    const rec = store.nodes.get(store.ui.selected);
    let next = null;
    if (ev.key === "ArrowDown") next = ids[Math.min(at + 1, ids.length - 1)];
    else if (ev.key === "ArrowUp") next = ids[Math.max(at - 1, 0)];
    else if (ev.key === "ArrowLeft" && rec) {
      if (store.kids.has(rec.id) && !store.ui.collapsed.has(rec.id)) store.ui.collapsed.add(rec.id);
      else if (rec.parent !== null) next = rec.parent;
    } else if (ev.key === "ArrowRight" && rec) store.ui.collapsed.delete(rec.id);
    else return;
    ev.preventDefault();
    if (next !== null && next !== undefined) select(next);
    else store.changed();
    requestAnimationFrame(() => tree.querySelector(".ar-sel")?.scrollIntoView({ block: "nearest" }));
  });

  insp.addEventListener("click", (ev) => {
    const link = ev.target.closest("[data-select]");
    if (!link) return;
    ev.preventDefault();
    select(Number(link.dataset.select));
  });

  plotBox.addEventListener("change", () => {
    store.ui.plot = plotBox.checked;
    store.changed();
  });

  plot.addEventListener("mouseover", (ev) => {
    const dot = ev.target.closest?.(".ar-pt");
    const hover = plot.querySelector(".ar-plot-hover");
    if (!dot || !hover) return;
    const r = store.nodes.get(Number(dot.dataset.id));
    if (r) hover.textContent = `node ${r.id} · ${label(r.kind)}${r.metric !== null && r.status === "ok" ? ` · ${fmt(r.metric)}` : ""}`;
  });

  plot.addEventListener("click", (ev) => {
    const dot = ev.target.closest("[data-id]");
    if (dot) select(Number(dot.dataset.id));
  });

  foldBox.addEventListener("change", () => {
    store.ui.fold = foldBox.checked;
    store.changed();
  });

  async function exportNode(id) {
    setNote(`exporting ${id === null ? "the best node" : `node ${id}`}…`);
    const slow = setTimeout(() => setNote("waiting for the kernel: it is busy (a blocking search?); the export runs when it is free"), 1500);
    try {
      const reply = await actions.exportNode(id);
      setNote(`node ${reply.node} exported to ${reply.path}`);
    } catch (err) {
      setNote(`export failed: ${err.message}`, true);
    } finally {
      clearTimeout(slow);
    }
  }

  async function copySelected(why = "") {
    const id = store.ui.selected;
    const code = store.code(id);
    if (code === null) {
      setNote(`node ${id}'s code is not in the view (too large): use Export`, true);
      return;
    }
    try {
      await copyText(code);
      setNote(`${why}node ${id}'s code copied (${code.split("\n").length} lines)`);
    } catch (err) {
      setNote(`copy failed: ${err.message}`, true);
    }
  }

  function insertSelected() {
    const id = store.ui.selected;
    const metric = store.nodes.get(id)?.metric ?? null;
    const detail = { nodeId: id, code: store.code(id), runId: store.meta.run_id, metricName: store.meta.metric ?? null, metric };
    const ev = new CustomEvent("autoresearch:insert-node", { detail, bubbles: true, composed: true, cancelable: true });
    el.dispatchEvent(ev);
    if (ev.defaultPrevented) setNote(`node ${id} inserted as a cell`);
    else copySelected("no notebook extension took the cell; ").catch((e) => console.error("copy failed", e));
  }

  async function stop() {
    btn.stop.disabled = true;
    setNote("stopping…");
    const slow = setTimeout(() => setNote("the kernel is busy: interrupt it (■) to stop a blocking run"), 1500);
    try {
      await actions.stop();
      setNote("stop requested: running nodes are being cancelled");
    } catch (err) {
      setNote(`stop failed: ${err.message}`, true);
      btn.stop.disabled = false;
    } finally {
      clearTimeout(slow);
    }
  }

  bar.addEventListener("click", (ev) => {
    const act = ev.target.closest("button")?.dataset.act;
    const run = {
      "export-best": () => exportNode(null),
      "export-sel": () => exportNode(store.ui.selected),
      copy: () => copySelected(),
      insert: async () => insertSelected(),
      stop,
    }[act];
    if (run) run().catch((err) => console.error(`autoresearch: ${act} failed`, err));
  });

  const unsubscribe = store.subscribe(schedule);
  const ticker = setInterval(() => {
    if (store.meta.state !== "running") return;
    renderHead();
    renderInspector(); // a running node's elapsed time
  }, 1000);
  render();
  return () => {
    unsubscribe();
    clearInterval(ticker);
    clearTimeout(plotTimer);
    cancelAnimationFrame(frame);
    el.replaceChildren();
  };
}
