"""Which kept changes mattered: leave-one-out ablation of the path to the best node.

The changes on the path (each node's edit of its parent) are taken out of the best script one at
a time, greedily: a change whose removal costs no more than the noise floor is dropped for good,
so the next candidate is measured without it too. The last accepted candidate is the minimal
best (it was run, so its metric is known, not assumed); the rows give "change -> effect".

The planner is pure: the search runs each candidate as an ``ablate`` node and reports back.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ..core.changes import revert
from ..core.node import Node
from ..core.protocol import Protocol
from ..core.tree import Tree


@dataclasses.dataclass(frozen=True)
class Step:
    """Run ``code``: the current script without the change of node ``change``."""

    change: int
    code: str


class Ablation:
    """Leave-one-out over the changes on the path from the baseline to ``best``."""

    def __init__(self, *, tree: Tree, protocol: Protocol, best: Node, sigma: float) -> None:
        self.tree, self.protocol, self.best, self.sigma = tree, protocol, best, sigma
        self.changes = [n for n in tree.path(best.id)[1:]]
        self.current = best.code
        self.minimal: int | None = None  # the ablate node holding ``current`` once something was dropped
        self.rows: list[dict[str, Any]] = []
        self._todo = list(self.changes)

    def next(self) -> Step | None:
        """The next candidate to run, or None when every change was looked at."""
        while self._todo:
            change = self._todo.pop(0)
            parent = self.tree[change.parent] if change.parent is not None else None
            code = revert(self.current, parent=parent.code, child=change.code) if parent else None
            if code is None or code == self.current:
                self.rows.append(self._row(change, None, None, "not separable from later changes"))
                continue
            return Step(change.id, code)
        return None

    def record(self, step: Step, node: Node) -> dict[str, Any]:
        """Judge the ablate node that ran ``step``; returns its meta["ablation"]."""
        change = self.tree[step.change]
        if not node.is_good or node.metric is None or self.best.metric is None:
            row = self._row(change, None, None, f"without it the script fails ({node.status.value})")
        else:
            effect = self.protocol.gain(self.best.metric, node.metric)  # what the change is worth
            n_best, n = max(1, len(self.best.samples)), max(1, len(node.samples))
            effect_sd = self.sigma * math.sqrt(1 / n + 1 / n_best) if self.sigma else 0.0
            matters = effect > self.protocol.threshold(self.sigma) + 1e-12 * max(1.0, abs(self.best.metric))
            row = self._row(change, effect, effect_sd, "kept" if matters else "dropped: within the noise floor")
            if not matters:
                self.current, self.minimal = step.code, node.id
        self.rows.append(row)
        return {"of": self.best.id, "without": step.change, **{k: row[k] for k in ("effect", "effect_sd", "verdict")}}

    def _row(self, change: Node, effect: float | None, effect_sd: float | None, verdict: str) -> dict[str, Any]:
        return {"node": change.id, "plan": change.plan, "effect": effect, "effect_sd": effect_sd, "verdict": verdict}

    @property
    def dropped(self) -> list[int]:
        return [r["node"] for r in self.rows if r["verdict"].startswith("dropped")]

