"""The separate evaluator in reports: graded vs self-reported, and validation vs holdout.

A run with ``--eval`` records on each graded node ``meta["graded"]``, ``meta["self_reported"]``
(the node's own number, never used to decide), ``meta["eval"]`` (the evaluator's state, time and
output tail) and, for the few scored at the end, ``meta["holdout"]``. This module turns those into
report data and text; ``export.py`` and ``views.py`` call it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from ..core.node import Node
from ..core.protocol import Protocol
from ..core.tree import Tree


@dataclasses.dataclass(frozen=True)
class GradedRow:
    """One node scored on the holdout (or the baseline/best of a run without a holdout)."""

    node_id: int
    role: str  # baseline | best | next best N
    validation: float | None  # the evaluator's metric: the one that decided
    self_reported: float | None  # what the node printed itself
    holdout: float | None
    holdout_problem: str | None


@dataclasses.dataclass(frozen=True)
class GradingSummary:
    """How the run was graded; ``rows`` put validation and holdout side by side."""

    graded_nodes: int
    eval_failed: int
    self_reported_differs: int  # graded nodes whose own number is not the evaluator's
    has_holdout: bool
    rows: tuple[GradedRow, ...]


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def is_graded(node: Node) -> bool:
    return bool(node.meta.get("graded"))


def self_reported(node: Node) -> float | None:
    return _num(node.meta.get("self_reported"))


def holdout_of(node: Node) -> tuple[float | None, str | None]:
    """(holdout metric, problem) of a node; (None, None) when it was not scored."""
    data = node.meta.get("holdout")
    if not isinstance(data, Mapping):
        return None, None
    return _num(data.get("metric")), (str(data["reason"]) if data.get("reason") else None)


def summarize_grading(tree: Tree, protocol: Protocol) -> GradingSummary | None:
    """None for a run without a separate evaluator."""
    graded = [n for n in tree if is_graded(n)]
    if not graded:
        return None
    differs = 0
    for n in graded:
        mine, theirs = self_reported(n), _num(n.metric)
        if mine is not None and theirs is not None and not math.isclose(mine, theirs, rel_tol=1e-9, abs_tol=1e-12):
            differs += 1
    scored = [n for n in tree if isinstance(n.meta.get("holdout"), Mapping)]
    chosen: list[tuple[Node, str]] = []
    if scored:
        chosen = [(n, str(n.meta["holdout"].get("role") or "")) for n in scored]
        order = {"baseline": 0, "best": 1}
        chosen.sort(key=lambda pair: (order.get(pair[1], 2), pair[1], pair[0].id))
    else:
        root, best = tree.root, tree.best(protocol)
        chosen = [(n, role) for n, role in ((root, "baseline"), (best, "best")) if n is not None]
        if len(chosen) == 2 and chosen[0][0] is chosen[1][0]:
            chosen = [(chosen[0][0], "baseline, best")]
    best = tree.best(protocol)
    rows = []
    for node, role in chosen:
        if best is not None and node.id == best.id and "best" not in role:
            role = f"{role}, best" if role else "best"
        value, problem = holdout_of(node)
        rows.append(GradedRow(node.id, role, _num(node.metric) if node.is_good else None, self_reported(node),
                              value, problem))
    eval_failed = sum(1 for n in tree if n.status.value == "eval_failed")
    return GradingSummary(len(graded), eval_failed, differs, bool(scored), tuple(rows))


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def grading_lines(summary: GradingSummary, metric: str) -> list[str]:
    """The report's section on grading, as text lines."""
    lines = ["", "## Graded by the separate evaluator"]
    lines.append(
        f"{metric} is what the evaluator reported; numbers the nodes printed themselves are "
        f"self-reported and never decided anything ({summary.graded_nodes} graded"
        + (f", {summary.eval_failed} the evaluator could not grade" if summary.eval_failed else "")
        + (f", {summary.self_reported_differs} self-reported a different number" if summary.self_reported_differs else "")
        + ")"
    )
    head = ["node", "role", f"{metric} (graded)", "self-reported"] + (["holdout"] if summary.has_holdout else [])
    table = [head]
    for r in summary.rows:
        row = [str(r.node_id), r.role or "-", _fmt(r.validation), _fmt(r.self_reported)]
        if summary.has_holdout:
            row.append(_fmt(r.holdout) if r.holdout_problem is None else f"- ({r.holdout_problem[:60]})")
        table.append(row)
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    if summary.has_holdout:
        lines.append("holdout: data the search never used, scored once at the end "
                     "(a best far below its validation score overfitted the validation set)")
    return lines


def node_lines(node: Node, metric: str) -> list[str]:
    """``show --node``: the graded metric's provenance, the self-reported number, the holdout."""
    if not is_graded(node) and "holdout" not in node.meta:
        return []
    out = [f"graded by the evaluator: {metric} {_fmt(_num(node.metric)) if node.is_good else '-'}"
           f"; self-reported (ignored): {_fmt(self_reported(node))}"]
    value, problem = holdout_of(node)
    if value is not None or problem:
        out.append(f"holdout {metric}: {_fmt(value)}" + (f" ({problem})" if problem else ""))
    raw = node.meta.get("eval")
    info: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    if info.get("time") is not None:
        out.append(f"evaluation: {info.get('state')}, {float(info['time']):.3g} s")
    return out


def eval_tail(node: Node) -> str:
    info = node.meta.get("eval")
    return str(info.get("tail") or "") if isinstance(info, Mapping) else ""
