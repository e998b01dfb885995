// The search-tree view: a store of node records and a renderer for it. No dependencies, no build.
// Shared by the notebook widget (widget.js, the anywidget adapter) and the JupyterLab run view.
// Records and the header come from autoresearch_jupyter/viewstate.py (node_record, run_meta).
//
// Hook for the JupyterLab extension: "Insert cell" dispatches a cancelable, bubbling
// CustomEvent "autoresearch:insert-node" with detail {nodeId, code, runId}; a listener that
// inserts the cell calls event.preventDefault(). Without one, the code is copied instead.

const FOLDABLE = new Set(["reverted", "buggy", "timeout", "rejected", "cancelled", "infeasible"]);
const LABEL = { timeout: "timed out", kept: "improved on parent" };
const MAX_INDENT = 24;

export function createStore() {
  const listeners = new Set();
  const nodes = new Map();
  const kids = new Map(); // parent id (null for roots) -> child ids, ascending
  function put(rec) {
    const old = nodes.get(rec.id);
    if (old && old.v > rec.v) return;
    nodes.set(rec.id, rec);
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
    seq: 0,
    clockOffset: 0, // kernel clock minus browser clock, in seconds
    ui: { selected: null, collapsed: new Set(), unfolded: new Set(), fold: true, note: { text: "", error: false } },
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
  root.append(head, bar, body);
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
    insert: button("insert", "Insert cell", "Insert the selected node's code as a notebook cell"),
    stop: button("stop", "Stop", "Stop the search: running nodes are cancelled, the journal is kept"),
  };
  const foldBox = h("input");
  foldBox.type = "checkbox";
  foldBox.checked = store.ui.fold;
  const foldLabel = h("label", "ar-fold");
  foldLabel.append(foldBox, " fold failed and reverted leaves");
  const note = h("span", "ar-note");
  note.setAttribute("role", "status");
  bar.append(foldLabel, note);

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
    if (typeof m.steps === "number") chip(`${m.done ?? 0} / ${m.steps} done`);
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
        if (folded.length < 2) folded = [];
      }
      const open = unfolded.has(item.id);
      const shown = folded.length && !open ? children.filter((c) => !folded.includes(c)) : children;
      // The child on the best path (or an only child) continues at this indent, after the others.
      const next = shown.find((c) => path.has(c)) ?? (shown.length === 1 ? shown[0] : undefined);
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
    const text = item.open ? `▴ fold these ${item.ids.length} leaves` : `⋯ ${item.ids.length} folded leaves (${what})`;
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
    const sig = rec ? `${id}|${rec.v}|${store.meta.best_id}|${store.meta.metric}` : "none";
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
    out.push(facts);
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
    if (rec.tail) out.push(h("div", "ar-h", "Output (end)"), h("pre", "ar-tail", rec.tail));
    insp.replaceChildren(...out);
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
    renderHead();
    renderBar();
    renderTree();
    renderInspector();
  }
  const schedule = () => {
    if (!frame) frame = requestAnimationFrame(render);
  };

  function select(id) {
    store.ui.selected = id;
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
    const detail = { nodeId: id, code: store.code(id), runId: store.meta.run_id };
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
  const ticker = setInterval(() => store.meta.state === "running" && renderHead(), 1000);
  render();
  return () => {
    unsubscribe();
    clearInterval(ticker);
    cancelAnimationFrame(frame);
    el.replaceChildren();
  };
}
