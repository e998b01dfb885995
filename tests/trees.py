"""Hand-built trees shared by the report and render tests."""

from __future__ import annotations

from autoresearch_jupyter.core.node import Node, Operator, Status
from autoresearch_jupyter.core.tree import Tree

IMPROVE = Operator.IMPROVE


def script(value: float, name: str = "val_acc") -> str:
    return f"x = {value!r}\nprint('{name}: ' + str(x))\n"


def add(tree: Tree, id: int, parent: int | None, status: Status, metric: float | None = None, *,
        kept: bool | None = None, plan: str = "", reason: str | None = None,
        op: Operator = IMPROVE, **kw: object) -> Node:
    node = Node(id=id, parent=parent, operator=op, plan=plan or f"change {id}",
                code=script(metric if metric is not None else 0.0), status=status, metric=metric,
                kept=kept, reason=reason, **kw)  # type: ignore[arg-type]
    tree.add(node)
    return node


def sample_tree() -> Tree:
    """Baseline 0.80; a reverted, a buggy, a timeout, a rejected and a kept child; best is node 6."""
    t = Tree()
    add(t, 0, None, Status.OK, 0.80, op=Operator.BASELINE, plan="baseline")
    add(t, 1, 0, Status.OK, 0.83, kept=False, plan="lower the learning rate")
    add(t, 2, 0, Status.BUGGY, kept=False, reason="ZeroDivisionError: division by zero\nTraceback ...")
    add(t, 3, 0, Status.TIMEOUT, kept=False, reason="timeout after 60.0 s")
    add(t, 4, 0, Status.REJECTED, reason="duplicate of node 1")
    add(t, 5, 0, Status.OK, 0.85, kept=True, plan="add dropout")
    add(t, 6, 5, Status.OK, 0.90, kept=True, plan="wider hidden layer")
    add(t, 7, 6, Status.OK, 0.88, kept=False, plan="more epochs")
    add(t, 8, 5, Status.OK, 0.87, kept=False, plan="backtrack: batch norm")  # parent 5 is not the best (6)
    add(t, 9, 2, Status.BUGGY, kept=False, reason="ZeroDivisionError: division by zero",
        op=Operator.DEBUG, plan="guard the division")
    return t
