"""Pictures of the search tree: a text tree for terminals and notebooks, DOT/SVG via Graphviz.

Everything walks the tree iteratively in one pass, so 2,000-deep chains and 1,000+ node trees
render quickly. SVG needs Graphviz's ``dot`` program; without it ``render_tree`` falls back to
the text tree and says how to install it, instead of failing.
"""

from __future__ import annotations

import collections
import shutil
import time
from pathlib import Path
from collections.abc import Container, Iterable
from typing import Literal

from ..core.errors import AutoResearchError
from .export import baseline_of, delta_to_parent, fmt_delta, fmt_metric, one_line
from .trust import label
from ..core.node import Node, Status
from ..core.protocol import Protocol
from ..core.tree import Tree
from ..store.runs import RunSummary

DOT_MISSING = (
    "the 'dot' program of Graphviz is not installed (Debian/Ubuntu: apt-get install graphviz; "
    "macOS: brew install graphviz); showing the text tree instead"
)
PACKAGE_MISSING = (
    "the graphviz Python package is not installed (pip install 'autoresearch-jupyter[graphviz]'); "
    "showing the text tree instead"
)
_MAX_INDENT = 32  # deeper levels keep only the nearest guides, so deep chains stay readable
_PLAN_WIDTH = 60


class GraphvizMissingError(AutoResearchError):
    """Graphviz (the ``dot`` program or the Python package) is missing, so no SVG can be drawn."""


# ---------------------------------------------------------------------------------------------
# text tree

_ANSI = {
    "kept": "\x1b[32m",
    "reverted": "\x1b[2m",
    Status.BUGGY.value: "\x1b[31m",
    Status.TIMEOUT.value: "\x1b[33m",
    Status.INFEASIBLE.value: "\x1b[35m",
    Status.REJECTED.value: "\x1b[2m",
    Status.CANCELLED.value: "\x1b[2m",
    Status.RUNNING.value: "\x1b[34m",
    Status.PENDING.value: "",
}
_BOLD, _RESET = "\x1b[1m", "\x1b[0m"


def _node_text(node: Node, tree: Tree, best_id: int | None, on_path: bool, color: bool) -> str:
    parts = [f"{'* ' if on_path else ''}{node.id}", node.operator.value, node.status.value]
    if node.is_good:
        delta = delta_to_parent(tree, node)
        parts.append(fmt_metric(node.metric) + (f" ({fmt_delta(delta)})" if delta is not None else ""))
    if node.is_good and node.parent is not None:
        parts.append(label(node, short=True))
    if node.id == best_id:
        parts.append("best")
    text = " ".join(parts)
    plan = one_line(node.plan, _PLAN_WIDTH)
    if plan:
        text += f"  {plan}"
    if color:
        text = f"{_BOLD if on_path else ''}{_ANSI.get(node.kind, '')}{text}{_RESET}"
    return text


def _prefix(anc: tuple[str, object] | None) -> str:
    """The guide columns of a line, from a linked list of segments (nearest ancestor first)."""
    segs: list[str] = []
    while anc is not None and len(segs) < _MAX_INDENT:
        segs.append(anc[0])
        anc = anc[1]  # type: ignore[assignment]
    return ("⋯ " if anc is not None else "") + "".join(reversed(segs))


def _shown(tree: Tree, roots: list[int], path: set[int], max_nodes: int) -> set[int]:
    """The path to the best plus, breadth first, the first children until ``max_nodes``."""
    shown = set(path) | set(roots)
    budget = max_nodes - len(shown)
    queue = collections.deque(roots)
    while queue:
        for child in tree.children.get(queue.popleft(), []):
            if child not in shown:
                if budget <= 0:
                    continue
                shown.add(child)
                budget -= 1
            queue.append(child)
    return shown


def _subtree_sizes(tree: Tree) -> dict[int, int]:
    size = dict.fromkeys(tree.nodes, 1)
    for node in reversed(list(tree)):  # children were added after their parents
        if node.parent is not None:
            size[node.parent] += size[node.id]
    return size


def render_text_tree(
    tree: Tree, protocol: Protocol, *, max_nodes: int | None = None, color: bool = False
) -> str:
    """The tree like the ``tree`` command: one line per node, ``*`` on the path to the best.

    With ``max_nodes``, only the path to the best and the first children (breadth first) are
    shown, and each collapsed group becomes one ``… N more`` line.
    """
    if not len(tree):
        return "(no nodes yet)"
    best = tree.best(protocol)
    best_id = best.id if best is not None else None
    path = {n.id for n in tree.path(best_id)} if best_id is not None else set()
    base = baseline_of(tree)
    roots = [n.id for n in tree if n.parent is None]
    if base is not None and base.id in roots and roots[0] != base.id:
        roots.remove(base.id)
        roots.insert(0, base.id)
    shown: set[int] | None = None
    sizes: dict[int, int] = {}
    if max_nodes is not None and len(tree) > max_nodes:
        shown = _shown(tree, roots, path, max(max_nodes, 1))
        sizes = _subtree_sizes(tree)
    best_words = "no best node yet"
    if best is not None:
        best_words = f"best: node {best_id} = {fmt_metric(best.metric)}"
    title = f"{protocol.metric} ({protocol.direction}), {len(tree)} nodes, {best_words}"
    lines = [f"{title}; * marks the path to the best"]
    # stack items: (node id, or None for a "… N more" line; ancestor guides; last child?; depth;
    # for "more" lines: hidden children and hidden nodes in their subtrees)
    Item = tuple[int | None, tuple[str, object] | None, bool, int, int, int]
    stack: list[Item] = [(r, None, True, 0, 0, 0) for r in reversed(roots)]
    while stack:
        node_id, anc, last, depth, n_more, n_nodes = stack.pop()
        connector = "└── " if last else "├── "
        if node_id is None:
            extra = f" ({n_nodes} nodes)" if n_nodes > n_more else ""
            lines.append(f"{_prefix(anc)}{connector}… {n_more} more{extra}")
            continue
        node = tree[node_id]
        text = _node_text(node, tree, best_id, node_id in path, color)
        lines.append(f"{_prefix(anc)}{connector}{text}" if depth else text)
        kids = tree.children.get(node_id, [])
        if not kids:
            continue
        child_anc = (("    " if last else "│   "), anc) if depth else None
        visible = kids if shown is None else [k for k in kids if k in shown]
        hidden = [k for k in kids if shown is not None and k not in shown]
        if hidden:
            stack.append((None, child_anc, True, depth + 1, len(hidden), sum(sizes[k] for k in hidden)))
        for i in range(len(visible) - 1, -1, -1):
            stack.append((visible[i], child_anc, i == len(visible) - 1 and not hidden, depth + 1, 0, 0))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# DOT and SVG

# six-digit colours only: dot rejects three-digit ones such as #eef
_FILL = {
    "kept": "#b7e4c7",
    "reverted": "#d9d9d9",
    Status.BUGGY.value: "#f4a6a6",
    Status.TIMEOUT.value: "#ffc48a",
    Status.INFEASIBLE.value: "#e9d5ff",
    Status.REJECTED.value: "#f2f2f2",
    Status.CANCELLED.value: "#f2f2f2",
    Status.RUNNING.value: "#a8c8ff",
    Status.PENDING.value: "#ffffff",
}
_BORDER = {
    "kept": "#2d6a4f",
    "reverted": "#808080",
    Status.BUGGY.value: "#b42318",
    Status.TIMEOUT.value: "#c4620a",
    Status.INFEASIBLE.value: "#7e22ce",
    Status.REJECTED.value: "#a0a0a0",
    Status.CANCELLED.value: "#a0a0a0",
    Status.RUNNING.value: "#1f5fbf",
    Status.PENDING.value: "#606060",
}
_PATH_COLOR = "#1b4332"
_EDGE_COLOR = "#9a9a9a"


def dot_quote(text: str) -> str:
    """``text`` as a DOT double-quoted string that shows exactly that text (newlines as breaks)."""
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("&", "&amp;")
    out = out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\\n")
    return f'"{out}"'


def _dot_node(node: Node, tree: Tree, best_id: int | None, on_path: bool) -> str:
    kind = node.kind
    label = [f"#{node.id} {node.operator.value}"]
    if node.is_good:
        delta = delta_to_parent(tree, node)
        label.append(fmt_metric(node.metric) + (f" ({fmt_delta(delta)})" if delta is not None else ""))
    else:
        label.append(node.status.value)
    if node.id == best_id:
        label.append("best")
    tip = one_line(node.plan, 200) or node.operator.value
    if node.reason:
        tip += f" | {one_line(node.reason, 120)}"
    styles = ["rounded", "filled"]
    if node.status is Status.REJECTED:
        styles.append("dashed")
    elif node.status is Status.CANCELLED:
        styles.append("dotted")
    attrs = [
        f"label={dot_quote(chr(10).join(label))}",
        f"tooltip={dot_quote(tip)}",
        f'fillcolor="{_FILL.get(kind, "#ffffff")}"',
        f'color="{_PATH_COLOR if on_path else _BORDER.get(kind, "#606060")}"',
        f'style="{",".join(styles)}"',
    ]
    if node.id == best_id:
        attrs += ["penwidth=3", "peripheries=2", 'fontname="Helvetica-Bold"']
    elif on_path:
        attrs.append("penwidth=2")
    return f"  n{node.id} [{', '.join(attrs)}];"


def tree_to_dot(tree: Tree, protocol: Protocol) -> str:
    """The tree as DOT source, coloured by status, with the best node and the path to it in bold."""
    best = tree.best(protocol)
    best_id = best.id if best is not None else None
    path = {n.id for n in tree.path(best_id)} if best_id is not None else set()
    title = f"{protocol.metric} ({protocol.direction})"
    if best is not None:
        title += f", best node {best.id}: {fmt_metric(best.metric)}"
    lines = [
        "digraph autoresearch {",
        f'  graph [rankdir=LR, label={dot_quote(title)}, labelloc=t, fontname="Helvetica", fontsize=12];',
        '  node [shape=box, fontname="Helvetica", fontsize=10, margin="0.08,0.04"];',
        f'  edge [color="{_EDGE_COLOR}", arrowsize=0.6];',
    ]
    edges: list[str] = []
    for node in tree:
        lines.append(_dot_node(node, tree, best_id, node.id in path))
        if node.parent is None:
            continue
        if node.id in path:
            edges.append(f'  n{node.parent} -> n{node.id} [color="{_PATH_COLOR}", penwidth=3];')
        elif node.status is Status.REJECTED:
            edges.append(f"  n{node.parent} -> n{node.id} [style=dashed];")
        else:
            edges.append(f"  n{node.parent} -> n{node.id};")
    return "\n".join(lines + edges + ["}"]) + "\n"


def render_svg(tree: Tree, protocol: Protocol) -> str:
    """The tree as SVG text; raises GraphvizMissingError when ``dot`` or the package is missing."""
    try:
        import graphviz  # lazy: an optional dependency
    except ImportError as err:
        raise GraphvizMissingError(PACKAGE_MISSING) from err
    if shutil.which("dot") is None:
        raise GraphvizMissingError(DOT_MISSING)
    try:
        return graphviz.Source(tree_to_dot(tree, protocol)).pipe(format="svg", encoding="utf-8")
    except graphviz.ExecutableNotFound as err:
        raise GraphvizMissingError(DOT_MISSING) from err


def render_tree(
    tree: Tree,
    protocol: Protocol,
    *,
    fmt: Literal["text", "svg", "dot"] = "text",
    max_nodes: int | None = None,
    color: bool = False,
) -> tuple[str, str | None]:
    """(content, warning): the tree in ``fmt``; SVG falls back to the text tree with a warning."""
    if fmt == "text":
        return render_text_tree(tree, protocol, max_nodes=max_nodes, color=color), None
    if fmt == "dot":
        return tree_to_dot(tree, protocol), None
    if fmt == "svg":
        try:
            return render_svg(tree, protocol), None
        except GraphvizMissingError as err:
            return render_text_tree(tree, protocol, max_nodes=max_nodes, color=color), str(err)
    raise ValueError(f"Unknown tree format {fmt!r}. Valid formats: text, svg, dot.")


def runs_table(runs: Iterable[RunSummary], *, running: Container[str] = (), folders: bool = False) -> str:
    """The runs as the one text table of ``autoresearch ls`` and ``%autoresearch list``: one line
    per run, oldest first; ``running`` names runs known to be running (a live run in this kernel)
    whatever their journal says; ``folders`` adds the folder each runs directory is in."""
    where = "  FOLDER" if folders else ""
    lines = [f"{'RUN':<28} {'NAME':<16} {'STATE':<12} {'NODES':>5}  {'METRIC':<18} {'BASELINE':>10} {'BEST':>10}  "
             f"{'CREATED':<16}{where}".rstrip()]
    for r in runs:
        state = "running" if r.id in running else r.state
        metric = f"{r.metric} {'max' if r.maximize else 'min'}" if r.metric else ""
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created_at)) if r.created_at else ""
        lines.append(
            f"{r.id:<28} {(r.name or '')[:16]:<16} {state:<12} {r.nodes:>5}  {metric[:18]:<18} "
            f"{_number(r.baseline_metric):>10} {_number(r.best_metric):>10}  {created:<16}"
            + (f"  {Path(r.path).parent.parent}" if folders else "")
        )
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"

