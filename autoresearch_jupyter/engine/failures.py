"""The tree remembers why things failed: a change that crashed is not tried again elsewhere.

A change is read from the node's own code against its parent's, as token hunks (core/changes.py),
so it works for any proposer. A failed change is refused when proposed again at any parent:
the same edit, and for a single literal, any value as far or further in the same direction
(``axis: 1 -> 2`` failed, so ``1 -> 3`` is refused too; ``1 -> 0`` is not). Timeouts and
cancellations are not failures of the idea and are not remembered.
"""

from __future__ import annotations

import ast
import dataclasses
import math

from ..core.changes import Hunk, local_hunks
from ..core.node import Node, Status


@dataclasses.dataclass(frozen=True)
class _Failure:
    node_id: int
    what: str  # "axis=1 -> 2" style, for the reason
    reason: str


def _number(text: str) -> float | None:
    try:
        value = ast.literal_eval(text.replace(" ", ""))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def _site(h: Hunk) -> str:
    """The hunk's place with numbers masked, so the same site matches under other literals."""
    def mask(tok: str) -> str:
        return "<n>" if _number(tok) is not None else tok

    return " ".join(map(mask, h.before)) + " <> " + " ".join(map(mask, h.after))


def _describe(h: Hunk) -> str:
    name = next((t for t in reversed(h.before) if t.isidentifier() or t.startswith(("'", '"'))), "")
    where = f"{name}: " if name else ""
    return f"{where}{h.old or '(nothing)'} -> {h.new or '(nothing)'}"[:120]


class FailureMemory:
    """Failed changes by site; :meth:`check` says why a proposal repeats one."""

    def __init__(self) -> None:
        self._exact: dict[frozenset[tuple[str, str, str]], _Failure] = {}
        self._bounds: dict[str, list[tuple[float, float, _Failure]]] = {}  # site -> (old, new, failure)

    def __len__(self) -> int:
        return len(self._exact)

    @staticmethod
    def _change(parent_code: str, code: str) -> list[Hunk] | None:
        try:
            return local_hunks(parent_code, code)
        except SyntaxError:
            return None

    def record(self, node: Node, parent: Node) -> None:
        """Remember ``node``'s change if it failed for a reason other than time."""
        if node.status is not Status.BUGGY or node.operator.value == "ablate":
            return
        change = self._change(parent.code, node.code)
        if not change:
            return
        failure = _Failure(node.id, "; ".join(_describe(h) for h in change[:3]), (node.reason or "failed")[:160])
        self._exact.setdefault(frozenset((_site(h), h.old, h.new) for h in change), failure)
        if len(change) == 1:
            old, new = _number(change[0].old), _number(change[0].new)
            if old is not None and new is not None and old != new:
                self._bounds.setdefault(_site(change[0]), []).append((old, new, failure))

    def check(self, *, parent_code: str, code: str) -> str | None:
        """None, or why ``code`` (a proposal at ``parent_code``) repeats a change that failed."""
        if not self._exact:
            return None
        change = self._change(parent_code, code)
        if not change:
            return None
        failure = self._exact.get(frozenset((_site(h), h.old, h.new) for h in change))
        if failure is None and len(change) == 1:
            failure = self._beyond(change[0])
        if failure is None:
            return None
        return (
            f"failed before: node {failure.node_id} changed {failure.what} and failed "
            f"({failure.reason}); not tried again"
        )

    def _beyond(self, h: Hunk) -> _Failure | None:
        old, new = _number(h.old), _number(h.new)
        if old is None or new is None or old == new:
            return None
        for f_old, f_new, failure in self._bounds.get(_site(h), ()):
            up = f_new > f_old
            # Same direction, as far or further, from a parent still on the working side.
            if (new > old) == up and ((old < f_new <= new) if up else (new <= f_new < old)):
                return failure
        return None
