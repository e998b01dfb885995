"""What a run produced, as data first: the report, the best script, a notebook cell.

Operations here return data (``Report``, strings of code); rendering the report as text or as a
versioned JSON envelope is a separate step, so the CLI, the notebook and tests share one source.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import Any, Iterable

from ..core import noise
from ..core.constraints import format_value, ruled_out
from ..core.errors import NodeNotFoundError
from ..core.node import Node, Operator, Status, UsageTotals, finite, tidy, usage_totals
from ..core.protocol import Protocol
from ..core.tree import Tree, improvement
from .trust import render_trust_lines, trust_facts

TOOL = "autoresearch-jupyter"
REPORT_RESULT_VERSION = 1
_LINEAGE_LINES = 40  # longer lineages keep their ends and elide the middle
_EXAMPLE_IDS = 5

_HEX = re.compile(r"0x[0-9a-fA-F]+")
_NUM = re.compile(r"(?<![A-Za-z_\d])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_EXC_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit)\b")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)?")
_CODING = re.compile(r"^[ \t\f]*#.*?coding[:=][ \t]*[-\w.]+")


# ---------------------------------------------------------------------------------------------
# small shared helpers (render.py uses them too)


def one_line(text: str | None, width: int = 80) -> str:
    """Any text as one printable line of at most ``width`` characters (plans, reasons)."""
    if not text:
        return ""
    clean = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return clean if len(clean) <= width else clean[: max(width - 1, 0)] + "…"


def fmt_metric(value: float | None) -> str:
    """A metric for people: six significant digits, '-' when there is none."""
    return "-" if value is None else f"{value:.6g}"


def fmt_delta(value: float | None) -> str:
    return "" if value is None else f"{value:+.6g}"


def delta_to_parent(tree: Tree, node: Node) -> float | None:
    """The node's metric minus its parent's (raw, in metric units), when both are usable."""
    if node.parent is None or node.parent not in tree:
        return None
    mine, theirs = finite(node.metric), finite(tree[node.parent].metric)
    if mine is None or theirs is None or not node.is_good or not tree[node.parent].is_good:
        return None
    return tidy(mine - theirs)


def baseline_of(tree: Tree) -> Node | None:
    """Node 0, or the first root for trees imported with several roots."""
    if tree.root is not None:
        return tree.root
    return next((n for n in tree if n.parent is None), None)


def failure_reason(node: Node) -> str:
    """A failed node's reason, normalised so that alike failures group: one line, numbers as N."""
    if node.status is Status.TIMEOUT:
        return "timeout"
    if node.status is Status.CANCELLED:
        return "cancelled"
    text = next((ln for ln in (node.reason or "").splitlines() if ln.strip()), "")
    if not text and node.output_tail:
        text = next((ln for ln in reversed(node.output_tail.splitlines()) if _EXC_LINE.match(ln.strip())), "")
    if not text:
        text = f"exit code {node.exit_code}" if node.exit_code else "no reason recorded"
    text = one_line(_NUM.sub("N", _HEX.sub("N", text)), 120)
    if node.status is Status.REJECTED and not text.lower().startswith("rejected"):
        text = f"rejected: {text}"
    return text


# ---------------------------------------------------------------------------------------------
# the report


@dataclasses.dataclass(frozen=True)
class Step:
    """One node on the path from the baseline to the best."""

    node_id: int
    operator: str
    plan: str
    metric: float | None
    delta: float | None  # metric minus the parent's metric; None for the baseline


@dataclasses.dataclass(frozen=True)
class FailureGroup:
    """Failed nodes that share a normalised reason."""

    reason: str
    count: int
    node_ids: tuple[int, ...]  # the first few, as examples


@dataclasses.dataclass(frozen=True)
class RevertedChange:
    """A change that ran fine but did not improve on its parent, so it was reverted."""

    node_id: int
    parent: int | None
    plan: str
    metric: float | None
    delta: float | None


@dataclasses.dataclass(frozen=True)
class ConstraintCount:
    """A constraint of the protocol and the number of nodes it made infeasible."""

    constraint: str
    ruled_out: int


@dataclasses.dataclass(frozen=True)
class Report:
    """Everything the end-of-run summary says, as data.

    ``experiments`` counts the nodes after the baseline and ``counts`` splits them by status.
    ``kept`` are nodes that improved on their parent; ``reverted`` ran fine but did not.
    ``branches`` is the number of leaves (root-to-leaf paths) after the baseline. ``improvement``
    is the gain in the protocol's direction (positive = better) and ``improvement_rel`` that gain
    over ``|baseline|`` (None when the baseline is 0 or missing).
    """

    run_id: str
    run_name: str
    state: str
    metric: str
    direction: str
    time_budget: float
    seed: int
    experiments: int
    counts: dict[str, int]
    kept: int
    reverted: int
    branches: int
    max_depth: int
    backtracks: int
    baseline_id: int | None
    baseline_status: str | None
    baseline_metric: float | None
    best_id: int | None
    best_metric: float | None
    improvement: float | None
    improvement_rel: float | None
    best_path: tuple[Step, ...]
    failures: tuple[FailureGroup, ...]
    reverted_changes: tuple[RevertedChange, ...]
    usage: UsageTotals | None
    constraints: tuple[ConstraintCount, ...] = ()  # each constraint and how many nodes it ruled out
    baseline_values: dict[str, float] = dataclasses.field(default_factory=dict)  # measured, then printed
    best_values: dict[str, float] = dataclasses.field(default_factory=dict)
    trust: Any = None  # trust.Trust: noise floor, significance, new bests, ablation table

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _depths(tree: Tree) -> dict[int, int]:
    """Depth of every node in one pass (parents are always added before their children)."""
    depth: dict[int, int] = {}
    for node in tree:
        depth[node.id] = 0 if node.parent is None else depth[node.parent] + 1
    return depth


def count_backtracks(tree: Tree, protocol: Protocol) -> int:
    """Improve steps taken from a node other than the best one known when the step was created.

    A node's ``meta["backtrack"]`` (recorded by the search) wins. Otherwise the best-so-far is
    rebuilt from timestamps when every node has them (so parallel siblings are not miscounted),
    else from id order. Drafts and debug steps are never backtracks.
    """
    nodes = list(tree)
    finishers = [n for n in nodes if n.is_kept and finite(n.metric) is not None]
    timed = all(n.created_at is not None for n in nodes) and all(n.finished_at is not None for n in finishers)
    if timed:
        nodes.sort(key=lambda n: (n.created_at, n.id))
        finishers.sort(key=lambda n: (n.finished_at, n.id))
    else:
        nodes.sort(key=lambda n: n.id)
        finishers.sort(key=lambda n: n.id)
    best: Node | None = None
    i = count = 0
    for node in nodes:
        while i < len(finishers) and (
            finishers[i].finished_at <= node.created_at  # type: ignore[operator]
            if timed
            else finishers[i].id < node.id
        ):
            if best is None or protocol.better(finishers[i].metric, best.metric):  # type: ignore[arg-type]
                best = finishers[i]
            i += 1
        flag = node.meta.get("backtrack")
        if flag is not None:
            count += bool(flag)
        elif node.operator is Operator.IMPROVE and best is not None and node.parent != best.id:
            count += 1
    return count


def _failures(nodes: Iterable[Node]) -> tuple[FailureGroup, ...]:
    groups: dict[str, list[int]] = {}
    for node in nodes:
        if node.status in (Status.BUGGY, Status.TIMEOUT, Status.REJECTED):
            groups.setdefault(failure_reason(node), []).append(node.id)
    ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[1][0]))
    return tuple(FailureGroup(reason, len(ids), tuple(ids[:_EXAMPLE_IDS])) for reason, ids in ordered)


def build_report(
    tree: Tree, protocol: Protocol, *, run_id: str = "", run_name: str = "", state: str = ""
) -> Report:
    """Summarise a run's tree: counts, best and improvement, the path to it, what did not work."""
    base = baseline_of(tree)
    others = sorted((n for n in tree if n is not base and n.operator is not Operator.ABLATE), key=lambda n: n.id)
    counts = {s.value: 0 for s in Status}
    for node in others:
        counts[node.status.value] += 1
    best = tree.best(protocol)
    base_metric = finite(base.metric) if base is not None and base.is_good else None
    best_metric = finite(best.metric) if best is not None else None
    gain, gain_rel = improvement(protocol, base, best)
    path = tree.path(best.id) if best is not None else []
    reverted = [n for n in others if n.is_good and not n.kept]
    return Report(
        run_id=run_id,
        run_name=run_name,
        state=state,
        metric=protocol.metric,
        direction=protocol.direction,
        time_budget=protocol.time_budget,
        seed=protocol.seed,
        experiments=len(others),
        counts=counts,
        kept=sum(1 for n in others if n.is_good and n.kept),
        reverted=len(reverted),
        branches=sum(1 for n in others if not tree.children.get(n.id)),
        max_depth=max(_depths(tree).values(), default=0),
        backtracks=count_backtracks(tree, protocol),
        baseline_id=base.id if base is not None else None,
        baseline_status=base.status.value if base is not None else None,
        baseline_metric=base_metric,
        best_id=best.id if best is not None else None,
        best_metric=best_metric,
        improvement=gain,
        improvement_rel=gain_rel,
        best_path=tuple(
            Step(n.id, n.operator.value, one_line(n.plan, 200), finite(n.metric), delta_to_parent(tree, n))
            for n in path
        ),
        failures=_failures(others),
        reverted_changes=tuple(
            RevertedChange(n.id, n.parent, one_line(n.plan, 120), finite(n.metric), delta_to_parent(tree, n))
            for n in reverted
        ),
        usage=usage_totals(tree),
        constraints=tuple(ConstraintCount(t, n) for t, n in ruled_out(protocol.parsed_constraints, tree)),
        baseline_values=_values(base),
        best_values=_values(best),
        trust=trust_facts(tree, protocol),
    )


def _values(node: Node | None) -> dict[str, float]:
    """A node's measurements and metrics, finite ones only, for the report."""
    if node is None:
        return {}
    return {k: v for k, v in {**node.measured, **node.metrics}.items() if finite(v) is not None}


# ---------------------------------------------------------------------------------------------
# rendering the report


def _pct(rel: float | None, sep: str = "") -> str:
    """A relative gain as a percentage: " (+12.5%)", or ", +12.5%" with ``sep=", "``."""
    if rel is None:
        return ""
    return f"{sep}{rel * 100:+.3g}%" if sep else f" ({rel * 100:+.3g}%)"


def render_report_text(report: Report, *, max_items: int = 20) -> str:
    """The report as markdown-ish text for the terminal and the notebook."""
    r = report
    title = r.run_name or r.run_id
    lines = [f"# autoresearch report{': ' + title if title else ''}"]
    run_bits = [f"run {r.run_id}" + (f" ({r.run_name})" if r.run_name else "") if r.run_id else ""]
    run_bits.append(f"state: {r.state}" if r.state else "")
    if any(run_bits):
        lines.append(", ".join(b for b in run_bits if b))
    lines.append(f"protocol: {r.direction} {r.metric}, time budget {r.time_budget:g} s, seed {r.seed}")
    if r.constraints:
        lines.append("constraints: " + ", ".join(
            f"{c.constraint} (ruled out {c.ruled_out} node{'s' if c.ruled_out != 1 else ''})" for c in r.constraints
        ))
    lines += ["", "## Summary"]
    by_status = ", ".join(f"{k} {v}" for k, v in r.counts.items() if v)
    lines.append(f"experiments: {r.experiments}" + (f" ({by_status})" if by_status else ""))
    lines.append(
        f"kept {r.kept}, reverted {r.reverted}; branches {r.branches}, max depth {r.max_depth}, "
        f"backtracks {r.backtracks}"
    )
    base_note = "" if r.baseline_status in (None, Status.OK.value) else f" (baseline {r.baseline_status})"
    t = r.trust
    sd = (lambda v: f" ± {v:.2g}" if v else "") if t is not None and t.noisy else (lambda v: "")
    runs = f", mean of {t.baseline_runs} runs" if t is not None and t.noisy else ""
    lines.append(f"baseline {r.metric}: {fmt_metric(r.baseline_metric)}{sd(t and t.baseline_sd)}{runs}{base_note}")
    if r.best_id is None:
        none = "no node meets the constraints" if r.counts.get("infeasible") or r.baseline_status == "infeasible" else (
            "no node has a usable metric")
        lines.append(f"best {r.metric}: - ({none})")
    else:
        runs = f", mean of {t.best_runs} runs" if t is not None and t.noisy and t.best_runs > 1 else ""
        lines.append(f"best {r.metric}: {fmt_metric(r.best_metric)}{sd(t and t.best_sd)} (node {r.best_id}{runs})")
    if r.improvement is not None:
        lines.append(f"improvement over the baseline: {fmt_delta(r.improvement)}{_pct(r.improvement_rel)}")
    if t is not None:
        lines += render_trust_lines(t, r.metric)
    if r.baseline_values or r.best_values:
        lines += ["", "## Metrics"]
        for who, node_id, values in (("baseline", r.baseline_id, r.baseline_values), ("best", r.best_id, r.best_values)):
            if values and not (who == "best" and r.best_id == r.baseline_id):
                shown = ", ".join(f"{k} {format_value(k, v)}" for k, v in values.items())
                lines.append(f"{who} (node {node_id}): {shown}")
    if r.best_path:
        lines += ["", "## Path from the baseline to the best"]
        for s in r.best_path:
            change = f" ({fmt_delta(s.delta)})" if s.delta is not None else ""
            plan = f": {s.plan}" if s.plan else ""
            lines.append(f"- node {s.node_id} {s.operator}{plan} -> {fmt_metric(s.metric)}{change}")
    if r.failures or r.reverted_changes:
        lines += ["", "## What did not work"]
    if r.failures:
        lines.append("failures:")
        for g in r.failures[:max_items]:
            more = ", ..." if g.count > len(g.node_ids) else ""
            ids = ", ".join(str(i) for i in g.node_ids)
            lines.append(f"- {g.count}x {g.reason} (node{'s' if g.count > 1 else ''} {ids}{more})")
        if len(r.failures) > max_items:
            lines.append(f"- ... {len(r.failures) - max_items} more kinds of failure")
    if r.reverted_changes:
        lines.append("reverted (ran, did not improve):")
        for c in r.reverted_changes[:max_items]:
            change = f" ({fmt_delta(c.delta)})" if c.delta is not None else ""
            plan = c.plan or "-"
            lines.append(f"- node {c.node_id} (from {c.parent}): {plan} -> {fmt_metric(c.metric)}{change}")
        if len(r.reverted_changes) > max_items:
            lines.append(f"- ... {len(r.reverted_changes) - max_items} more")
    if r.usage is not None:
        u = r.usage
        cost = f", cost {u.cost:g}" if u.cost is not None else ""
        lines += ["", "## Tokens"]
        lines.append(
            f"{u.total_tokens} tokens ({u.prompt_tokens} prompt, {u.completion_tokens} completion) "
            f"over {u.nodes} node{'s' if u.nodes != 1 else ''}{cost}"
        )
    return "\n".join(lines)


def report_envelope(report: Report) -> dict[str, Any]:
    """The report as a versioned machine-readable envelope."""
    return {
        "report_result_version": REPORT_RESULT_VERSION,
        "status": "ok",
        "exit_code": 0,
        "data": report.to_dict(),
        "errors": [],
    }


def _json_default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def to_json(obj: Any) -> str:
    """Machine output: stable key order and indentation, so diffs and tests stay readable."""
    return json.dumps(obj, indent=2, sort_keys=True, default=_json_default)


def render_node_text(node: Node, tree: Tree, protocol: Protocol, *, tail_lines: int = 30) -> str:
    """One node in full for ``show --node``: what was tried, the result, the diff, the output tail."""
    delta = delta_to_parent(tree, node)
    kept = "" if node.kept is None else (" kept" if node.kept else " reverted")
    best = tree.best(protocol)
    lines = [
        f"node {node.id} ({node.operator.value}, from {node.parent if node.parent is not None else '-'})"
        f"{' best' if best is not None and best.id == node.id else ''}",
        f"status: {node.status.value}{kept}",
        f"{protocol.metric}: {fmt_metric(node.metric)}"
        + (f" ({fmt_delta(delta)} vs parent)" if delta is not None else ""),
    ]
    if node.reason:
        lines.append(f"reason: {one_line(node.reason, 300)}")
    if node.exec_time is not None:
        lines.append(f"time: {node.exec_time:.3g} s")
    if node.measured:
        lines.append("measured: " + ", ".join(f"{k} {format_value(k, v)}" for k, v in node.measured.items()))
    if node.metrics:
        lines.append("metrics: " + ", ".join(f"{k} {v:.6g}" for k, v in node.metrics.items()))
    if node.meta.get("note"):
        lines.append(f"note: {one_line(str(node.meta['note']), 300)}")
    lines += ["", "plan:", node.plan.strip() or "-"]
    if node.diff:
        lines += ["", "diff:", node.diff.rstrip("\n")]
    if node.output_tail:
        tail = node.output_tail.rstrip("\n").splitlines()[-tail_lines:]
        lines += ["", f"output (last {len(tail)} lines):", *tail]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# exporting code


def _pick(tree: Tree, protocol: Protocol, node_id: int | None, run_id: str) -> Node:
    where = f" in run {run_id}" if run_id else ""
    if node_id is None:
        best = noise.minimal_best(tree, protocol)  # the ablation's minimal script when it dropped changes
        if best is None:
            raise NodeNotFoundError(
                f"no node{where} has a usable metric yet, so there is no best node to export; give a node id"
            )
        return best
    if node_id not in tree:
        ids = f" (nodes {min(tree.nodes)}-{max(tree.nodes)})" if len(tree) else " (it has no nodes)"
        raise NodeNotFoundError(f"no node {node_id}{where}{ids}")
    return tree[node_id]


def _result_words(node: Node, tree: Tree, protocol: Protocol) -> str:
    """'val_acc 0.9 (baseline 0.8, improvement +0.1, +12.5%)' or the node's failure."""
    base = baseline_of(tree)
    if not node.is_good:
        reason = f": {one_line(node.reason, 100)}" if node.reason else ""
        return f"status {node.status.value}{reason} - this node has no usable {protocol.metric}"
    out = f"{protocol.metric} {fmt_metric(node.metric)}"
    gain, gain_rel = improvement(protocol, base, node)
    if base is not None and base is not node and gain is not None:
        out += f" (baseline {fmt_metric(base.metric)}, improvement {fmt_delta(gain)}{_pct(gain_rel, ', ')})"
    return out


def _lineage(tree: Tree, node: Node, metric: str) -> list[str]:
    path = tree.path(node.id)
    rows = []
    for n in path:
        value = fmt_metric(n.metric) if n.is_good else n.status.value
        rows.append(f"{n.id:>5}  {n.operator.value:<8} {metric} {value:<10} {one_line(n.plan, 70) or '-'}")
    if len(rows) > _LINEAGE_LINES:
        keep = _LINEAGE_LINES // 2
        rows = rows[:keep] + [f"  ... {len(rows) - 2 * keep} more steps ..."] + rows[-keep:]
    return rows


def _header(tree: Tree, protocol: Protocol, node: Node, run_id: str) -> list[str]:
    best = tree.best(protocol)
    role = " (the best node)" if best is not None and best.id == node.id else ""
    info = node.meta.get("ablation") if node.operator is Operator.ABLATE else None
    if isinstance(info, Mapping) and info.get("minimal"):
        dropped = ", ".join(str(i) for i in info.get("dropped", ()))
        role = f" (the best node {info.get('of')} without the changes of node(s) {dropped}, which did not matter)"
    kept = "" if node.kept is None else (", kept" if node.kept else ", reverted")
    return [
        f"Exported by {TOOL}",
        f"run: {one_line(run_id, 80) or '-'}",
        f"node: {node.id}{role}, {node.operator.value}, {node.status.value}{kept}",
        f"protocol: {protocol.direction} {protocol.metric}, time budget {protocol.time_budget:g} s, "
        f"seed {protocol.seed}",
        f"result: {_result_words(node, tree, protocol)}",
        f"the search ran it with AUTORESEARCH_SEED={protocol.seed} "
        f"AUTORESEARCH_TIME_BUDGET={protocol.time_budget:g}",
        "lineage (from the baseline):",
        *_lineage(tree, node, protocol.metric),
    ]


def _split_leading(code: str) -> tuple[str, str]:
    """The lines that must stay first (a shebang, a PEP 263 coding line) and the rest."""
    first = _LINE.match(code)
    assert first is not None  # _LINE matches the empty string too
    second = _LINE.match(code, first.end())
    assert second is not None
    if _CODING.match(first.group(0)):
        lead = first.group(0)
    elif first.group(0).lstrip().startswith("#") and _CODING.match(second.group(0)):
        lead = first.group(0) + second.group(0)  # PEP 263 allows the cookie on line 2
    elif first.group(0).startswith("#!"):
        lead = first.group(0)
    else:
        lead = ""
    body = code[len(lead) :]
    if lead and not lead.endswith(("\n", "\r")):
        lead += "\n"  # the code was only that line
    return lead, body


def export_script(
    tree: Tree, protocol: Protocol, node_id: int | None = None, *, run_id: str = "", source: str | None = None
) -> str:
    """A node's code (default: the best node) as a self-contained script with a provenance header.

    The body after the header is exactly the node's code (or ``source``: the node's script as
    stored on disk), so it runs on its own and prints the same metric. A shebang and a coding
    line stay first; comments may precede ``from __future__`` imports, so those stay valid.
    """
    node = _pick(tree, protocol, node_id, run_id)
    code = node.code if source is None else source
    lead, body = _split_leading(code)
    header = _header(tree, protocol, node, run_id)
    if not code.strip():
        header.append("this node has no code")
    text = "".join(f"# {line}\n" if line else "#\n" for line in header)
    return f"{lead}{text}\n{body}"


def export_cell(
    tree: Tree, protocol: Protocol, node_id: int | None = None, *, run_id: str = "", source: str | None = None
) -> str:
    """A node's code for a notebook cell: the same provenance, as a shorter comment block."""
    node = _pick(tree, protocol, node_id, run_id)
    code = node.code if source is None else source
    first = _LINE.match(code)
    body = code[first.end() :] if first and code.startswith("#!") else code
    path = tree.path(node.id)
    steps = [f"{n.id} ({fmt_metric(n.metric) if n.is_good else n.status.value})" for n in path]
    if len(steps) > 8:
        steps = steps[:3] + [f"... {len(steps) - 6} more"] + steps[-3:]
    lines = [
        f"# {TOOL} run {one_line(run_id, 80) or '-'}, node {node.id} "
        f"({node.operator.value}, {node.status.value}): {_result_words(node, tree, protocol)}",
        f"# protocol: {protocol.direction} {protocol.metric}, time budget {protocol.time_budget:g} s, "
        f"seed {protocol.seed}",
        f"# lineage: {' -> '.join(steps)}",
    ]
    if not code.strip():
        lines.append("# this node has no code")
    return "\n".join(lines) + "\n" + body
