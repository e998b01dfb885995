// A run folder's files (run.json, journal.jsonl) replayed into tree-view records, in the browser.
// The records and the header have the shapes of autoresearch_jupyter/viewstate.py (node_record,
// run_meta); the replay follows journal.py (_Replayer) and the format of journal_format.py.
// No dependencies, no build: the JupyterLab extension bundles it next to treeview.js.
//
// Differences from the Python side, by necessity:
// - A browser cannot ask whether the writing process is alive: a run whose last run event is
//   run_started/run_resumed is "running", or "interrupted" when `modified` (the journal's
//   last-modified time) is older than `staleAfter` seconds.
// - Every record carries its node's full `code` (no line `edits`): store.code() reads both.
// - Lengths are counted in UTF-16 units, not code points (caps differ only for emoji and the like).

export const JOURNAL_VERSION = 1;
export const RUN_VERSION = 1;
export const VIEW_VERSION = 1;
export const RUN_END_STATES = ["finished", "stopped", "failed"];
export const STATUSES = ["pending", "running", "ok", "buggy", "timeout", "rejected", "cancelled", "eval_failed"];
export const OPERATORS = ["baseline", "draft", "improve", "debug"];

const TAIL_CAP = 4000;
const DIFF_CAP = 20000;
const PLAN_CAP = 4000;
const REASON_CAP = 1000;
const CODE_CAP = 256000;
const NONFINITE = { nan: NaN, inf: Infinity, "-inf": -Infinity };
const NODE_FIELDS = new Set([
  "id", "parent", "operator", "plan", "code", "code_hash", "diff", "status", "metric", "kept", "reason",
  "exit_code", "exec_time", "output_tail", "created_at", "started_at", "finished_at", "usage", "meta",
]);
const FINISH_FIELDS = new Set([...NODE_FIELDS].filter((f) => f !== "id" && f !== "parent"));
const UPDATE_FIELDS = new Set([...FINISH_FIELDS].filter((f) => f !== "status"));
const SETUP_BEGIN = "# autoresearch: freeze  (notebook setup: %%autoresearch_setup cells and --use variables)";
const SETUP_END = "# autoresearch: end  (notebook setup)";
const MAX_WARNINGS = 100;

export class JournalError extends Error {
  constructor(message) {
    super(message);
    this.name = "JournalError";
  }
}

const isInt = (v) => Number.isInteger(v);
const finite = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
const tidy = (v) => (v === null ? null : Number(v.toPrecision(12)));
const isFinished = (status) => status !== "pending" && status !== "running";

function untag(key, value) {
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1 && keys[0] === "$float" && value.$float in NONFINITE) return NONFINITE[value.$float];
  }
  return value;
}

// One journal line; {"$float": "nan"} (and "inf", "-inf") come back as numbers.
export function parseLine(line) {
  return line.includes('"$float"') ? JSON.parse(line, untag) : JSON.parse(line);
}

function newNode(data) {
  const node = {
    id: data.id, parent: data.parent ?? null, operator: data.operator, plan: "", code: "", code_hash: "", diff: "",
    status: "pending", metric: null, kept: null, reason: null, exit_code: null, exec_time: null, output_tail: "",
    created_at: null, started_at: null, finished_at: null, usage: null, meta: {},
  };
  for (const [k, v] of Object.entries(data)) if (NODE_FIELDS.has(k) && v !== undefined) node[k] = v;
  if (node.meta === null) node.meta = {};
  return node;
}

function checkNode(data) {
  if (!isInt(data.id) || data.id < 0) return `bad node id ${JSON.stringify(data.id)}`;
  if (data.parent !== null && data.parent !== undefined && !isInt(data.parent)) return `bad parent ${JSON.stringify(data.parent)}`;
  if (!OPERATORS.includes(data.operator)) return `'${data.operator}' is not a valid Operator`;
  if (data.status !== undefined && !STATUSES.includes(data.status)) return `'${data.status}' is not a valid Status`;
  if (data.meta !== undefined && data.meta !== null && (typeof data.meta !== "object" || Array.isArray(data.meta))) {
    return "meta must be an object";
  }
  return null;
}

// Replays journal lines into nodes and the run's state, by the rules of journal.py's _Replayer:
// an unparsable last line is skipped with a warning (a torn write), a bad line with lines after
// it throws JournalError. Feed it the journal in pieces of whole lines as the file grows.
export class JournalReplay {
  constructor(source = "journal.jsonl") {
    this.source = source;
    this.nodes = new Map();
    this.touched = new Map(); // node id -> number of the last event line that changed it
    this.warnings = [];
    this.dropped = 0;
    this.events = 0;
    this.lineno = 0;
    this.pending = null; // {lineno, length, message}: a bad line that is, so far, the last one
    this.updatedAt = null;
    this.run = { last: null, runT: null, startedAt: null, finishedAt: null, reason: null, endState: null, resumes: 0, pid: null, host: null, summary: null };
  }

  warn(n, message) {
    if (this.warnings.length < MAX_WARNINGS) this.warnings.push(`${this.source}:${n}: ${message}`);
    else this.dropped++;
  }

  // Apply `text`, whole lines (a last line without its newline counts as whole).
  feed(text) {
    if (!text) return this;
    const lines = text.split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    for (const line of lines) {
      this.lineno++;
      if (!line.trim()) continue;
      if (this.pending) {
        const p = this.pending;
        throw new JournalError(`${this.source}:${p.lineno}: not a journal event (${p.message}); the journal is damaged in the middle`);
      }
      let ev;
      try {
        ev = parseLine(line);
        if (!ev || typeof ev !== "object" || Array.isArray(ev)) throw new Error("not a JSON object");
      } catch (err) {
        this.pending = { lineno: this.lineno, length: line.length, message: String(err.message).slice(0, 80) };
        continue;
      }
      this.apply(ev, this.lineno);
    }
    return this;
  }

  apply(ev, n) {
    this.events++;
    if (isInt(ev.v) && ev.v > JOURNAL_VERSION) {
      throw new JournalError(`${this.source}:${n}: journal format v${ev.v} is newer than this viewer reads (v${JOURNAL_VERSION})`);
    }
    const handler = typeof ev.event === "string" && Object.hasOwn(HANDLERS, ev.event) ? HANDLERS[ev.event] : undefined;
    if (!handler) {
      this.warn(n, `skipped an event of unknown kind ${JSON.stringify(ev.event)}`);
      return;
    }
    if (ev.t !== undefined) this.updatedAt = ev.t;
    handler(this, ev, n);
  }

  nodeOf(ev, n) {
    const node = isInt(ev.id) ? this.nodes.get(ev.id) : undefined;
    if (!node) this.warn(n, `skipped ${ev.event} of unknown node ${JSON.stringify(ev.id)}`);
    return node;
  }

  fieldsOf(ev, allowed, n) {
    if (!ev.fields || typeof ev.fields !== "object" || Array.isArray(ev.fields)) {
      this.warn(n, `skipped ${ev.event} of node ${ev.id}: no fields`);
      return null;
    }
    const out = {};
    for (const [k, v] of Object.entries(ev.fields)) {
      if (!allowed.has(k)) continue;
      if ((k === "status" && !STATUSES.includes(v)) || (k === "operator" && !OPERATORS.includes(v)) ||
          (k === "meta" && (!v || typeof v !== "object" || Array.isArray(v)))) {
        this.warn(n, `skipped ${ev.event} of node ${ev.id}: bad ${k} ${JSON.stringify(v)}`);
        return null;
      }
      out[k] = v;
    }
    return out;
  }

  // The replay so far, as journal.load_journal's Replay (the state without a liveness check).
  result() {
    const warnings = [...this.warnings];
    if (this.pending) {
      warnings.push(`${this.source}:${this.pending.lineno}: skipped a torn last line (${this.pending.length} bytes; its writer was killed mid-write)`);
    }
    if (this.dropped) warnings.push(`${this.source}: ... and ${this.dropped} more warnings`);
    const run = this.run;
    let state;
    if (run.last === "run_started" || run.last === "run_resumed") state = "running";
    else if (run.last === "run_finished") state = run.endState || "failed";
    else state = "interrupted";
    return {
      nodes: this.nodes, touched: this.touched, warnings, events: this.events, state,
      startedAt: run.startedAt, finishedAt: state === "running" ? null : run.finishedAt,
      reason: run.last === "run_finished" ? run.reason : null, resumes: run.resumes, pid: run.pid, host: run.host,
      updatedAt: this.updatedAt, summary: run.summary,
    };
  }
}

function applyFields(node, fields) {
  for (const [k, v] of Object.entries(fields)) node[k] = k === "meta" ? { ...node.meta, ...v } : v;
}

function runStarted(r, ev) {
  const run = r.run;
  run.last = ev.event;
  run.runT = ev.t ?? null;
  if (run.startedAt === null) run.startedAt = run.runT;
  if (ev.event === "run_resumed") run.resumes += 1;
  run.pid = isInt(ev.pid) ? ev.pid : null;
  run.host = typeof ev.host === "string" ? ev.host : null;
}

const HANDLERS = {
  node_created(r, ev, n) {
    const data = ev.node;
    if (!data || typeof data !== "object") return r.warn(n, "skipped a node_created event without a node");
    const bad = checkNode(data);
    if (bad) return r.warn(n, `skipped a malformed node (${bad})`);
    if (r.nodes.has(data.id)) return r.warn(n, `skipped a second node ${data.id}`);
    const parent = data.parent ?? null;
    if (parent !== null && !r.nodes.has(parent)) return r.warn(n, `skipped node ${data.id}: its parent ${parent} is unknown`);
    r.nodes.set(data.id, newNode(data));
    r.touched.set(data.id, n);
  },
  node_started(r, ev, n) {
    const node = r.nodeOf(ev, n);
    if (!node) return;
    Object.assign(node, { status: "running", started_at: ev.t ?? null, metric: null, kept: null, reason: null });
    r.touched.set(node.id, n);
  },
  node_finished(r, ev, n) {
    const node = r.nodeOf(ev, n);
    const fields = node && r.fieldsOf(ev, FINISH_FIELDS, n);
    if (!fields) return;
    if (!isFinished(fields.status ?? "pending")) return r.warn(n, `skipped node_finished of node ${node.id}: no finished status`);
    if (!("finished_at" in fields)) fields.finished_at = ev.t ?? null;
    applyFields(node, fields);
    r.touched.set(node.id, n);
  },
  node_updated(r, ev, n) {
    const node = r.nodeOf(ev, n);
    const fields = node && r.fieldsOf(ev, UPDATE_FIELDS, n);
    if (!fields) return;
    applyFields(node, fields);
    r.touched.set(node.id, n);
    if ("status" in ev.fields) r.warn(n, `ignored a status change of node ${node.id} in node_updated`);
  },
  run_started: runStarted,
  run_resumed: runStarted,
  run_finished(r, ev, n) {
    const run = r.run;
    run.last = "run_finished";
    run.finishedAt = ev.t ?? null;
    run.reason = typeof ev.reason === "string" ? ev.reason : null;
    run.summary = ev.summary && typeof ev.summary === "object" ? ev.summary : null;
    run.endState = RUN_END_STATES.includes(ev.state) ? ev.state : "failed";
    if (run.endState !== ev.state) r.warn(n, `run_finished with unknown state ${JSON.stringify(ev.state)} read as failed`);
  },
};

// A whole journal's text replayed at once.
export function replayJournal(text, { source = "journal.jsonl" } = {}) {
  return new JournalReplay(source).feed(text).result();
}

// ---- records (viewstate.py) ---------------------------------------------------------------------

function head(text, cap, what) {
  if (text.length <= cap) return text;
  const cut = text.lastIndexOf("\n", cap - 1) + 1 || cap;
  const rest = (text.slice(cut).match(/\n/g) || []).length + 1;
  return `${text.slice(0, cut)}… ${what} truncated: ${rest} more line${rest !== 1 ? "s" : ""} (export the node for all of it)\n`;
}

function tail(text, cap) {
  if (text.length <= cap) return text;
  const start = text.length - cap;
  const nl = text.indexOf("\n", start);
  const cut = nl >= 0 && nl < text.length - 1 ? nl + 1 : start;
  return `… ${(text.slice(0, cut).match(/\n/g) || []).length} earlier lines not shown\n${text.slice(cut)}`;
}

export function diffStats(diff) {
  let added = 0;
  let removed = 0;
  let inHunk = false;
  for (const line of (diff || "").split(/\r\n|\r|\n/)) {
    if (line.startsWith("@@")) inHunk = true;
    else if (inHunk && line.startsWith("+")) added++;
    else if (inHunk && line.startsWith("-")) removed++;
  }
  return [added, removed];
}

const isGood = (node) => node.status === "ok" && node.metric !== null && node.metric !== undefined;
const isKept = (node) => isGood(node) && (Boolean(node.kept) || node.operator === "baseline");

export function kindOf(node) {
  if (node.status === "ok") return isKept(node) ? "kept" : "reverted";
  return node.status;
}

export function deltaToParent(nodes, node) {
  const parent = node.parent === null ? undefined : nodes.get(node.parent);
  if (!parent) return null;
  const mine = finite(node.metric);
  const theirs = finite(parent.metric);
  if (mine === null || theirs === null || !isGood(node) || !isGood(parent)) return null;
  return tidy(mine - theirs);
}

// One node as viewstate.node_record builds it (with `code` always; see the top of this file).
export function nodeRecord(node, nodes, v = 0) {
  const [added, removed] = diffStats(node.diff);
  const rec = {
    id: node.id,
    parent: node.parent,
    operator: node.operator,
    status: node.status,
    kind: kindOf(node),
    metric: finite(node.metric),
    delta: finite(deltaToParent(nodes, node)),
    kept: node.kept,
    plan: head(node.plan || "", PLAN_CAP, "plan"),
    reason: (node.reason || "").slice(0, REASON_CAP) || null,
    exit_code: node.exit_code,
    exec_time: node.exec_time,
    started_at: node.started_at,
    finished_at: node.finished_at,
    tail: tail(node.output_tail || "", TAIL_CAP),
    diff: head(node.diff || "", DIFF_CAP, "diff"),
    added,
    removed,
    usage: node.usage ?? null,
    v,
  };
  const note = node.meta?.note || node.meta?.policy;
  if (note) rec.note = (typeof note === "string" ? note : JSON.stringify(note)).slice(0, 300);
  const graded = gradedRecord(node);
  if (graded) rec.graded = graded;
  rec.code = (node.code || "").length <= CODE_CAP ? node.code || "" : null;
  return rec;
}

// What the separate evaluator said about a node, as views.graded_record builds it (null without one).
function gradedRecord(node) {
  const meta = node.meta || {};
  const hold = meta.holdout && typeof meta.holdout === "object" && !Array.isArray(meta.holdout) ? meta.holdout : null;
  if (!meta.graded && !hold) return null;
  const info = meta.eval && typeof meta.eval === "object" ? meta.eval : {};
  const num = (x) => (typeof x === "number" ? finite(x) : null);
  return {
    self_reported: num(meta.self_reported),
    eval_state: info.state ?? null,
    eval_time: info.time ?? null,
    eval_tail: tail(String(info.tail || ""), TAIL_CAP),
    holdout: hold ? num(hold.metric) : null,
    holdout_reason: hold && hold.reason ? String(hold.reason).slice(0, REASON_CAP) : null,
  };
}

export function bestOf(nodes, maximize) {
  let best = null;
  for (const node of nodes) {
    if (!isGood(node) || !(node.kept || node.operator === "baseline")) continue;
    if (best === null || (maximize ? node.metric > best.metric : node.metric < best.metric)) best = node;
  }
  return best;
}

// The header, as viewstate.run_meta builds it.
export function runMeta(nodes, protocol, { runId, state, steps = null, reason = null, maxTime = null, started = null, finished = null }) {
  nodes = [...nodes];
  const maximize = Boolean(protocol.maximize);
  const root = nodes.find((n) => n.parent === null);
  const counts = Object.fromEntries(STATUSES.map((s) => [s, 0]));
  let prompt = 0;
  let completion = 0;
  const costs = [];
  let used = false;
  for (const n of nodes) {
    counts[n.status] = (counts[n.status] || 0) + 1;
    if (n.usage) {
      used = true;
      prompt += n.usage.prompt_tokens || 0;
      completion += n.usage.completion_tokens || 0;
      if (n.usage.cost !== null && n.usage.cost !== undefined) costs.push(n.usage.cost);
    }
  }
  const best = bestOf(nodes, maximize);
  const base = root && isGood(root) ? finite(root.metric) : null;
  const bestMetric = best ? finite(best.metric) : null;
  let improvement = null;
  let improvementRel = null;
  if (base !== null && bestMetric !== null) {
    improvement = tidy(maximize ? bestMetric - base : base - bestMetric);
    improvementRel = base ? tidy(improvement / Math.abs(base)) : null;
  }
  return {
    version: VIEW_VERSION,
    run_id: runId,
    state,
    reason,
    metric: protocol.metric,
    direction: maximize ? "maximize" : "minimize",
    steps,
    max_time: maxTime,
    nodes: nodes.length,
    done: nodes.filter((n) => n !== root && isFinished(n.status)).length,
    running: counts.running,
    counts,
    baseline_done: Boolean(root) && isFinished(root.status),
    best_id: best ? best.id : null,
    best_metric: bestMetric,
    baseline_metric: base,
    improvement,
    improvement_rel: improvementRel,
    tokens: used ? { prompt, completion, total: prompt + completion, cost: costs.length ? tidy(costs.reduce((a, b) => a + b, 0)) : null } : null,
    started,
    finished,
    now: Date.now() / 1000,
  };
}

// ---- a run folder -------------------------------------------------------------------------------

// Parse run.json text; throws JournalError when it is not a run description.
export function parseRunInfo(text, source = "run.json") {
  let info;
  try {
    info = JSON.parse(text);
  } catch (err) {
    throw new JournalError(`${source} is damaged (${String(err.message).slice(0, 80)})`);
  }
  if (!info || typeof info !== "object" || !info.protocol || typeof info.protocol !== "object") {
    throw new JournalError(`${source} is not a run description (no protocol)`);
  }
  if (isInt(info.version) && info.version > RUN_VERSION) {
    throw new JournalError(`${source} is format v${info.version}, newer than this viewer reads`);
  }
  return info;
}

// A whole run from its files' text: see runView.
export function loadRun({ id, runJson, journal, modified = null, staleAfter = null, now = Date.now() / 1000 }) {
  const info = parseRunInfo(runJson, `${id}/run.json`);
  const replay = replayJournal(journal || "", { source: `${id}/journal.jsonl` });
  return runView({ id, info, replay, modified, staleAfter, now });
}

// A run for the views: {id, name, source, createdAt, info, state, stale, live, meta, records,
// nodes, warnings}, from its run.json (`info`) and a journal replay (JournalReplay.result()).
// `modified` (seconds since the epoch) is the journal's last-modified time: a "running" run
// whose journal is older than `staleAfter` seconds (default: 3 time budgets, at least 10
// minutes) is reported as "interrupted", with `stale: true`.
export function runView({ id, info, replay, modified = null, staleAfter = null, now = Date.now() / 1000 }) {
  const protocol = info.protocol;
  const settings = info.settings && typeof info.settings === "object" ? info.settings : {};
  let state = replay.state;
  let stale = false;
  let reason = replay.reason;
  if (state === "running" && modified !== null) {
    const limit = staleAfter ?? Math.max(600, 3 * (Number(protocol.time_budget) || 60));
    if (now - modified > limit) {
      state = "interrupted";
      stale = true;
      reason = `no journal activity for ${Math.round((now - modified) / 60)} min: its process has probably stopped`;
    }
  }
  const nodes = replay.nodes;
  let started = replay.startedAt;
  let finished = replay.finishedAt;
  if (started === null) {
    const times = [...nodes.values()].flatMap((n) => [n.created_at, n.started_at]).filter((x) => typeof x === "number");
    started = times.length ? Math.min(...times) : null;
  }
  if (finished === null && state !== "running") {
    const ends = [...nodes.values()].map((n) => n.finished_at).filter((x) => typeof x === "number");
    finished = ends.length ? Math.max(...ends) : null;
  }
  const records = [...nodes.values()].map((n) => {
    const parentTouch = n.parent === null ? 0 : replay.touched.get(n.parent) || 0;
    return nodeRecord(n, nodes, Math.max(replay.touched.get(n.id) || 0, parentTouch));
  });
  const runId = typeof info.id === "string" && info.id ? info.id : id;
  const meta = runMeta(nodes.values(), protocol, {
    runId, state, reason, steps: isInt(settings.steps) ? settings.steps : null,
    maxTime: typeof settings.max_time === "number" ? settings.max_time : null, started, finished,
  });
  return {
    id: runId,
    name: typeof info.name === "string" && info.name ? info.name : null,
    source: typeof info.source === "string" && info.source ? info.source : null,
    createdAt: typeof info.created_at === "number" ? info.created_at : null,
    info,
    state,
    stale,
    live: replay.state === "running" && !stale,
    meta,
    records,
    nodes,
    warnings: replay.warnings,
  };
}

// ---- code for a notebook cell ------------------------------------------------------------------

// The training-cell part of a node script (notebook_code.split_script): a script built from a
// notebook starts with the frozen setup block, which a cell must not repeat.
export function cellCode(code) {
  const lines = (code || "").split(/(?<=\n)/);
  if (!lines.length || lines[0].replace(/[\r\n]+$/, "") !== SETUP_BEGIN) return code || "";
  for (let i = 1; i < lines.length; i++) {
    if (lines[i].replace(/[\r\n]+$/, "") === SETUP_END) {
      let rest = lines.slice(i + 1);
      if (rest.length && !rest[0].trim()) rest = rest.slice(1);
      return rest.join("");
    }
  }
  return code;
}

// A node's code as a notebook cell: one provenance comment line, then the cell part, without a
// trailing newline (cells do not end in one).
export function nodeCell({ code, runId = "", nodeId = null, metricName = null, metric = null }) {
  let body = cellCode(code);
  if (body.startsWith("#!")) body = body.slice(body.indexOf("\n") + 1 || body.length);
  const what = [runId ? `run ${runId}` : "", nodeId !== null && nodeId !== undefined ? `node ${nodeId}` : ""].filter(Boolean).join(", ");
  const score = metricName && metric !== null && metric !== undefined ? ` (${metricName} ${Number(metric.toPrecision(6))})` : "";
  return `# autoresearch ${what}${score}\n${body.replace(/\n+$/, "")}`;
}
