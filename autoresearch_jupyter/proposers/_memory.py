"""Bounded memory: what was tried so far, summarised to fit a token budget.

AIDE puts every good node's plan and metric into each prompt, so a prompt grows with the tree
and the tokens of a run grow quadratically (FACTS.md: +253 characters per good node, no cap).
Here the memory is a few short sections, each ordered most useful first:

- tried here: the children of the node being changed (what was already tried from it, with the
  outcome), so the model does not propose the same direction twice;
- path to the best: the chain of kept changes from the baseline to the best node, with deltas;
- other good results: the best nodes off that path (ideas that worked elsewhere);
- recent failures: crashed or timed-out nodes with a one-line reason (mistakes not to repeat).

Items are taken round-robin from the sections (the most useful item of each first) while they
fit the budget; what does not fit is dropped, so the oldest and least useful go first. A prompt
then costs the same at node 10 and at node 1,000.
"""

from __future__ import annotations

from ..core.node import Node, Operator, Status
from ..core.protocol import Protocol
from ..core.tree import Tree

__all__ = ["aide_memory", "estimate_tokens", "memory_sections", "render_memory"]

PLAN_CHARS = 140
REASON_CHARS = 120
# Most items a section may hold even when the cap leaves room: beyond these an item is worth less
# than its tokens (an old sibling, a step deep down the path), so a prompt stops growing by itself.
LIMITS = {"tried": 20, "path": 15, "others": 8, "failures": 8}
TITLES = {
    "tried": "Already tried from the current script (do not repeat these)",
    "path": "Path from the baseline to the best node (kept changes)",
    "others": "Other good results",
    "failures": "Recent failures (do not repeat these mistakes)",
}
ORDER = ("tried", "path", "others", "failures")  # the order sections are rendered in
SUFFIX_RESERVE = 12  # tokens kept back for the "(+N not shown)" notes


def estimate_tokens(text: str) -> int:
    """A cheap token estimate (about 4 characters a token for English and code)."""
    return (len(text) + 3) // 4


def _short(text: str | None, limit: int) -> str:
    line = next((ln.strip() for ln in (text or "").splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 3].rstrip() + "..."


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


def _delta(tree: Tree, node: Node) -> str:
    if node.parent is None or node.metric is None:
        return ""
    parent = tree[node.parent]
    if parent.metric is None:
        return ""
    return f" ({node.metric - parent.metric:+.4g})"


def _outcome(tree: Tree, node: Node, protocol: Protocol) -> str:
    if node.status is Status.OK and node.metric is not None:
        verdict = "kept" if node.is_kept else "reverted"
        return f"{protocol.metric} {_fmt(node.metric)}{_delta(tree, node)}, {verdict}"
    if node.status.is_finished():
        return f"{node.status.value}: {_short(node.reason, REASON_CHARS)}" if node.reason else node.status.value
    return "running"


def _line(tree: Tree, node: Node, protocol: Protocol) -> str:
    plan = _short(node.plan, PLAN_CHARS) or "-"
    return f"- node {node.id} {node.operator.value}: {plan} -> {_outcome(tree, node, protocol)}"


def memory_sections(tree: Tree, protocol: Protocol, parent: Node) -> tuple[dict[str, list[str]], dict[str, int]]:
    """Each section's lines, most useful first and at most ``LIMITS`` of them (rendering keeps those
    that fit and restores a natural order), and how many items each section has in all."""
    best = tree.best(protocol)
    path = tree.path(best.id) if best is not None else ([tree.root] if tree.root else [])
    on_path = {n.id for n in path}
    tried = [n for n in tree.kids(parent.id) if n.status.is_finished() or n.status is Status.RUNNING]
    tried_ids = {n.id for n in tried}
    # The baseline and the best first, then the path from the best backwards (recent first).
    path_order = path[:1] + path[:0:-1]
    others = sorted(
        (n for n in tree if n.is_good and n.id not in on_path and n.id not in tried_ids),
        key=lambda n: (protocol.sort_key(n.metric), -n.id),  # type: ignore[arg-type]
    )
    failures = [n for n in reversed(list(tree)) if n.status.is_failure() and n.id not in tried_ids]
    nodes = {"tried": tried[::-1], "path": path_order, "others": others, "failures": failures}
    lines = {name: [_line(tree, n, protocol) for n in found[: LIMITS[name]]] for name, found in nodes.items()}
    return lines, {name: len(found) for name, found in nodes.items()}


def _node_id(line: str) -> int:
    try:
        return int(line.split()[2])
    except (IndexError, ValueError):
        return 0


def render_memory(tree: Tree, protocol: Protocol, parent: Node, budget_tokens: int) -> tuple[str, int]:
    """The memory text within ``budget_tokens`` (estimated), and how many items it holds."""
    sections, total = memory_sections(tree, protocol, parent)
    budget_tokens -= SUFFIX_RESERVE
    chosen: dict[str, list[str]] = {name: [] for name in ORDER}
    used = 0
    cursor = {name: 0 for name in ORDER}
    open_ = [name for name in ORDER if sections[name]]
    while open_:
        for name in list(open_):
            line = sections[name][cursor[name]]
            cost = estimate_tokens(line + "\n") + (0 if chosen[name] else estimate_tokens(f"## {TITLES[name]}\n\n"))
            if used + cost > budget_tokens:
                open_.remove(name)  # the rest of this section is less useful than what is in
                continue
            chosen[name].append(line)
            used += cost
            cursor[name] += 1
            if cursor[name] >= len(sections[name]):
                open_.remove(name)
    parts = []
    for name in ORDER:
        if not chosen[name]:
            continue
        lines = chosen[name] if name == "failures" else sorted(chosen[name], key=_node_id)
        dropped = total[name] - len(lines)
        more = f" (+{dropped} not shown)" if dropped and name in ("tried", "path") else ""
        parts.append(f"## {TITLES[name]}{more}\n" + "\n".join(lines))
    items = sum(len(v) for v in chosen.values())
    return "\n\n".join(parts), items


def aide_memory(tree: Tree, protocol: Protocol) -> str:
    """AIDE's uncapped memory, for comparison: every good node's plan, result and metric."""
    parts = []
    for node in tree:
        if node.is_good and node.operator is not Operator.BASELINE:
            parts.append(
                f"Design: {node.plan}\nResults: the script ran; {protocol.metric} is "
                f"{_fmt(node.metric)} ({'kept' if node.kept else 'reverted'}).\n"
                f"Validation Metric: {node.metric}\n" + "-" * 31
            )
    return "\n".join(parts)
