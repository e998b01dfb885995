"""Nodes as compact JSON records for the tree view, and the view's static fallbacks.

The browser side (``static/treeview.js``) keeps a store of these records keyed by node id. A
record carries what the inspector shows (plan, metric, delta to the parent, the diff and the
output tail, both capped) and the node's code in a cheap form: the root carries its code, every
other node the line edits from its parent's code, so a click on "copy code" rebuilds it in the
browser without a kernel round trip and a 1,000-node tree does not store 1,000 scripts.

Nothing here imports ipywidgets: the widget (``widget.py``), the run object's
``_repr_html_`` and a standalone HTML page all use these functions.
"""

from __future__ import annotations

import difflib
import html
import json
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..core.diffs import diff_stats
from ..core.node import Node, Operator, Status, finite, usage_totals
from ..core.protocol import Protocol
from ..core.tree import Tree, best_of, improvement
from .export import delta_to_parent, fmt_delta, fmt_metric

VIEW_VERSION = 1
STATIC = Path(__file__).parent / "static"
TAIL_CAP = 4_000  # characters of output tail per node (the end of it)
DIFF_CAP = 20_000  # characters of diff per node (the start of it)
PLAN_CAP = 4_000
REASON_CAP = 1_000
CODE_CAP = 256_000  # a root script larger than this is not sent; "copy code" says so
LIVE_CAP = 4_000  # bytes of a running node's output.log sent per read (reads are >= 1 s apart)
SVG_MAX_NODES = 300  # larger trees get the text tree in the static fallback: an SVG would be unreadable

Record = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# records


def line_edits(old: str, new: str) -> list[list[Any]]:
    """The change from ``old`` to ``new`` as ``[start, end, new_lines]`` replacements of lines.

    Lines are ``split("\\n")`` pieces, which JavaScript's ``split("\\n")`` cuts identically, so the
    browser rebuilds ``new`` exactly (``apply_edits`` is the reference). Edits are in ascending
    order and apply from the last to the first.
    """
    a, b = old.split("\n"), new.split("\n")
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return [[i1, i2, b[j1:j2]] for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def apply_edits(old: str, edits: Iterable[list[Any]]) -> str:
    lines = old.split("\n")
    for start, end, new in reversed(list(edits)):
        lines[start:end] = new
    return "\n".join(lines)


def _head(text: str, cap: int, what: str) -> str:
    """The start of ``text``, cut at a line end, with a note saying how much is left out."""
    if len(text) <= cap:
        return text
    cut = text.rfind("\n", 0, cap) + 1 or cap
    rest = text[cut:].count("\n") + 1
    return f"{text[:cut]}… {what} truncated: {rest} more line{'s' if rest != 1 else ''} (export the node for all of it)\n"


def _tail(text: str, cap: int) -> str:
    """The end of ``text``, cut at a line start."""
    if len(text) <= cap:
        return text
    start = len(text) - cap
    nl = text.find("\n", start)
    cut = nl + 1 if 0 <= nl < len(text) - 1 else start
    return f"… {text[:cut].count(chr(10))} earlier lines not shown\n{text[cut:]}"


def node_record(node: Node, nodes: Mapping[int, Node], *, v: int = 0) -> Record:
    """One node for the view; ``nodes`` maps ids to nodes (a ``Tree`` or a dict) for the parent.

    ``v`` is the update sequence number the record was built in: the browser keeps, for each
    id, the record with the highest ``v``, so snapshots and updates may arrive in any order.
    """
    added, removed = diff_stats(node.diff)
    rec: Record = {
        "id": node.id,
        "parent": node.parent,
        "operator": node.operator.value,
        "status": node.status.value,
        "kind": node.kind,
        "metric": finite(node.metric),
        "delta": finite(delta_to_parent(nodes, node)),  # type: ignore[arg-type]
        "kept": node.kept,
        "new_best": node.new_best,
        "runs": max(1, len(node.samples)),  # >1: metric is the mean of that many runs (noise floor)
        "plan": _head(node.plan or "", PLAN_CAP, "plan"),
        "reason": (node.reason or "")[:REASON_CAP] or None,
        "exit_code": node.exit_code,
        "exec_time": node.exec_time,
        "started_at": node.started_at,
        "finished_at": node.finished_at,
        "tail": _tail(node.output_tail or "", TAIL_CAP),
        "diff": _head(node.diff or "", DIFF_CAP, "diff"),
        "added": added,
        "removed": removed,
        "usage": node.usage.to_dict() if node.usage is not None else None,
        "metrics": {k: x for k, x in node.metrics.items() if finite(x) is not None},  # the script's other numbers
        "measured": {k: x for k, x in node.measured.items() if finite(x) is not None},  # the runner's
        "v": v,
    }
    if node.where:  # ran elsewhere (Ray): the inspector says on which host and GPUs
        rec["where"] = {"host": node.where.get("host"), "gpus": list(node.where.get("gpus") or [])}
    sd = node.meta.get("sd", node.meta.get("metric_sd"))
    if isinstance(sd, (int, float)) and finite(float(sd)) is not None:
        rec["sd"] = float(sd)
    note = node.meta.get("note") or node.meta.get("policy")
    if note:
        rec["note"] = str(note)[:300]
    grading = graded_record(node)
    if grading is not None:
        rec["graded"] = grading
    learned = node.meta.get("learned_from")  # run ids whose lessons informed this node (--learn-from)
    if learned:
        rec["learned_from"] = [str(r) for r in learned][:8]
    parent = nodes.get(node.parent) if node.parent is not None else None
    if parent is not None:
        edits = line_edits(parent.code, node.code)
        if len(json.dumps(edits)) < len(node.code):
            rec["edits"] = edits
            return rec
    rec["code"] = node.code if len(node.code) <= CODE_CAP else None
    return rec


def graded_record(node: Node) -> Record | None:
    """What the separate evaluator said about a node (None without one): the graded metric is
    ``metric``; here are the node's own number, the holdout score and the evaluator's output."""
    meta = node.meta
    if not meta.get("graded") and not isinstance(meta.get("holdout"), Mapping):
        return None
    raw_eval, raw_hold = meta.get("eval"), meta.get("holdout")
    info: Mapping[str, Any] = raw_eval if isinstance(raw_eval, Mapping) else {}
    hold: Mapping[str, Any] | None = raw_hold if isinstance(raw_hold, Mapping) else None
    return {
        "self_reported": finite(_float(meta.get("self_reported"))),
        "eval_state": info.get("state"),
        "eval_time": info.get("time"),
        "eval_tail": _tail(str(info.get("tail") or ""), TAIL_CAP),
        "holdout": finite(_float(hold.get("metric"))) if hold else None,
        "holdout_reason": (str(hold.get("reason"))[:REASON_CAP] if hold and hold.get("reason") else None),
    }


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def read_live(path: Path, cap: int = LIVE_CAP) -> dict[str, Any] | None:
    """The last ``cap`` characters of a growing log, cut at a line start, and its size; None
    when there is no log yet. Reads only the end of the file, so a big log costs no more."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - cap))
            data = f.read(cap)
    except OSError:
        return None
    text = data.decode("utf-8", "replace")
    if size > cap and "\n" in text[:-1]:
        text = text[text.index("\n") + 1:]
    return {"tail": text, "bytes": size}


def live_tails(run_dir: Path, nodes: Iterable[Node]) -> dict[str, Record]:
    """``{node id: {"tail", "bytes"}}`` for the running nodes that have written output."""
    out: dict[str, Record] = {}
    for node in nodes:
        if node.status is Status.RUNNING:
            rec = read_live(run_dir / "nodes" / str(node.id) / "output.log")
            if rec is not None:
                out[str(node.id)] = rec
    return out


def node_records(nodes: Mapping[int, Node], *, v: int = 0) -> list[Record]:
    return [node_record(n, nodes, v=v) for n in list(nodes.values())]


# ---------------------------------------------------------------------------------------------
# run summary (the header)


def run_meta(
    nodes: Iterable[Node],
    protocol: Protocol,
    *,
    run_id: str,
    state: str,
    steps: int | None,
    reason: str | None = None,
    max_time: float | None = None,
    started: float | None = None,
    finished: float | None = None,
    executor: Mapping[str, Any] | None = None,
) -> Record:
    """Everything the header shows, in constant size: counts, best, improvement, time, tokens,
    and for nodes that run elsewhere the executor, its cluster and the hosts seen so far."""
    nodes = list(nodes)
    root = next((n for n in nodes if n.parent is None), None)
    counts = {s.value: 0 for s in Status}
    for n in nodes:
        counts[n.status.value] += 1
    usage = usage_totals(nodes)
    best = best_of(nodes, protocol)
    base = finite(root.metric) if root is not None and root.is_good else None
    best_metric = finite(best.metric) if best is not None else None
    gain, gain_rel = improvement(protocol, root, best)
    others = [n for n in nodes if n is not root and n.operator is not Operator.ABLATE]  # the step budget's nodes
    return {
        "version": VIEW_VERSION,
        "run_id": run_id,
        "state": state,
        "reason": reason,
        "metric": protocol.metric,
        "direction": protocol.direction,
        "steps": steps,
        "max_time": max_time,
        "time_budget": protocol.time_budget,
        # a noise floor (the sd of the metric over repeated baseline runs), when the run measured
        # one: the progress plot shows it as a band around the baseline
        "noise_sd": _noise_sd(protocol, root),
        "nodes": len(nodes),
        "ablated": sum(1 for n in nodes if n.operator is Operator.ABLATE),  # checks of the best's changes
        "done": sum(1 for n in others if n.status.is_finished()),
        "running": counts[Status.RUNNING.value],
        "counts": counts,
        "baseline_done": root is not None and root.status.is_finished(),
        "best_id": best.id if best is not None else None,
        "best_metric": best_metric,
        "baseline_metric": base,
        "improvement": gain,
        "improvement_rel": gain_rel,
        "tokens": {
            "prompt": usage.prompt_tokens, "completion": usage.completion_tokens, "total": usage.total_tokens,
            "cost": usage.cost,
        } if usage is not None else None,
        "started": started,
        "finished": finished,
        "now": time.time(),
        "executor": executor_meta(nodes, executor),
    }


def executor_meta(nodes: Iterable[Node], executor: Mapping[str, Any] | None) -> Record | None:
    """The executor for the header: None for local runs; name, cluster, dashboard and up to 8
    hosts (with a count) when nodes ran on a cluster."""
    hosts = sorted({str(n.where.get("host")) for n in nodes if n.where and n.where.get("host")})
    if not executor or executor.get("name") in (None, "local"):
        if not hosts:
            return None
        executor = {"name": next(n.where.get("executor", "?") for n in nodes if n.where)}
    cluster = executor.get("cluster") or {}
    return {
        "name": executor.get("name"), "address": executor.get("address"), "dashboard": executor.get("dashboard"),
        "cpus": cluster.get("CPU"), "gpus": cluster.get("GPU"), "cluster_nodes": cluster.get("nodes"),
        "cpus_per_node": executor.get("cpus_per_node"), "gpus_per_node": executor.get("gpus_per_node"),
        "hosts": hosts[:8], "host_count": len(hosts),
    }


def _noise_sd(protocol: Protocol, root: Node | None) -> float | None:
    noise = root.meta.get("noise") if root is not None else None  # the noise floor's baseline runs (core.noise)
    sigma = noise.get("sigma") if isinstance(noise, Mapping) else None
    for source in (getattr(protocol, "noise_sd", None), root.meta.get("noise_sd") if root is not None else None, sigma):
        if isinstance(source, (int, float)) and finite(float(source)) is not None and source > 0:
            return float(source)
    return None


def run_times(nodes: Iterable[Node]) -> tuple[float | None, float | None]:
    """(start, end) of a loaded run from its nodes' timestamps."""
    nodes = list(nodes)
    starts = [t for n in nodes for t in (n.created_at, n.started_at) if t is not None]
    ends = [n.finished_at for n in nodes if n.finished_at is not None]
    return (min(starts) if starts else None, max(ends) if ends else None)


# ---------------------------------------------------------------------------------------------
# the fallbacks: static HTML (nbconvert, GitHub) and a standalone interactive page


def _summary_line(tree: Tree, protocol: Protocol, *, state: str, run_id: str) -> str:
    nodes = list(tree)
    best = tree.best(protocol)
    root = tree.root
    parts = [f"autoresearch run {run_id}" if run_id else "autoresearch run", state]
    parts.append(f"{len(nodes)} nodes (baseline + {max(len(nodes) - 1, 0)})")
    if best is not None:
        parts.append(f"best {protocol.metric} {fmt_metric(best.metric)} (node {best.id})")
        gain, gain_rel = improvement(protocol, root, best)
        if best is not root and gain is not None:
            rel = f", {gain_rel * 100:+.3g}%" if gain_rel is not None else ""
            parts.append(f"improvement over the baseline {fmt_delta(gain)}{rel}")
    else:
        parts.append(f"no usable {protocol.metric} yet")
    return " · ".join(parts)


_XML_PROLOGUE = re.compile(r"^\s*(<\?xml[^>]*>\s*)?(<!DOCTYPE[^>]*>\s*)?(<!--.*?-->\s*)*", re.DOTALL)


def static_html(tree: Tree, protocol: Protocol, *, state: str, run_id: str) -> str:
    """The tree as static HTML: a summary line, the progress plot, then an SVG (Graphviz) or the text tree.

    Used where widgets do not render (nbconvert without widget state, GitHub) and by the run
    object's ``_repr_html_``. SVG needs Graphviz's ``dot``; without it, or above
    ``SVG_MAX_NODES`` nodes, the text tree is shown (a note says why when ``dot`` is missing).
    """
    from .render import GraphvizMissingError, render_svg, render_text_tree

    summary = html.escape(_summary_line(tree, protocol, state=state, run_id=run_id))
    note = ""
    body = ""
    if 0 < len(tree) <= SVG_MAX_NODES:
        try:
            body = _XML_PROLOGUE.sub("", render_svg(tree, protocol), count=1)
        except GraphvizMissingError as err:
            note = str(err)
    if not body:
        text = render_text_tree(tree, protocol, max_nodes=SVG_MAX_NODES)
        body = f'<pre style="margin:0;font-size:12px;line-height:1.35">{html.escape(text)}</pre>'
    note_html = f'<div style="color:#8a6d00;font-size:12px">{html.escape(note)}</div>' if note else ""
    from .plot import progress_svg

    nodes = list(tree)
    root = next((n for n in nodes if n.parent is None), None)
    plot = progress_svg(nodes, protocol, noise_sd=_noise_sd(protocol, root))
    return (
        '<div class="autoresearch-static" style="font-family:sans-serif">'
        f'<div style="font-weight:600;margin:4px 0">{summary}</div>{note_html}'
        f'<div class="autoresearch-plot">{plot}</div>'
        f'<div style="max-height:600px;overflow:auto">{body}</div></div>'
    )


def _script_json(data: Any) -> str:
    """JSON that is safe inside a <script> element."""
    return json.dumps(data).replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def standalone_html(
    tree: Tree, protocol: Protocol, *, state: str, run_id: str, steps: int | None = None, title: str = ""
) -> str:
    """A self-contained HTML page with the interactive tree view of a run (no kernel, no server).

    It inlines ``treeview.js`` and ``treeview.css``, the same renderer as the widget, with a
    snapshot of the run; export and stop are not available there, copy and inspection are.
    """
    started, finished = run_times(tree)
    meta = run_meta(tree, protocol, run_id=run_id, state=state, started=started,
                    finished=None if state == "running" else finished,
                    steps=steps if steps is not None else max(len(tree) - 1, 0))
    data = {"meta": meta, "snapshot": {"seq": 0, "nodes": node_records(tree.nodes)}}
    js = (STATIC / "treeview.js").read_text()
    css = (STATIC / "treeview.css").read_text()
    boot = (
        "const data = JSON.parse(document.getElementById('ar-data').textContent);\n"
        "const store = createStore();\nstore.setMeta(data.meta);\nstore.applySnapshot(data.snapshot);\n"
        "const t0 = performance.now();\n"
        "const cleanup = mountTreeView(document.getElementById('ar-root'), store);\n"
        "window.arView = { store, cleanup, createStore, mountTreeView, buildPlot, mountMs: performance.now() - t0 };\n"
    )
    name = html.escape(title or f"autoresearch {run_id}".strip())
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{name}</title>\n'
        f"<style>{css}</style></head>\n<body>\n<div id=\"ar-root\"></div>\n"
        f'<script type="application/json" id="ar-data">{_script_json(data)}</script>\n'
        f'<script type="module">\n{js}\n{boot}</script>\n</body></html>\n'
    )
