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

import logging
import time

from ..core import noise
from ..core.changes import revert
from ..core.diffs import unified_diff
from ..core.node import Node, Operator, Status
from ..core.protocol import Protocol
from ..core.tree import Tree

logger = logging.getLogger(__name__)


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



def run_ablation(search: Any) -> None:
    """Leave each change on the path to the best out in turn; the ones that do not matter are
    dropped from the exported best. Each candidate is a journaled ``ablate`` node that the search
    runs like any other (same protocol, replicates on a noisy run); a candidate whose code was
    already run reuses that result."""
    tree, protocol = search._tree, search.protocol
    best = tree.best(protocol)
    if best is None or best.parent is None or len(tree.path(best.id)) < 3:
        return  # one change: its effect is the gain over the baseline, nothing to run
    if any(n.operator is Operator.ABLATE and n.meta.get("ablation", {}).get("of") == best.id for n in tree):
        return  # done before (a resumed run)
    plan = Ablation(tree=tree, protocol=protocol, best=best, sigma=search._sigma)
    runs = noise.confirm_runs(tree) if search._sigma else 1
    cost = (best.exec_time or 0.0) * runs * len(plan.changes)
    max_time = search.settings.max_time
    run_id = search.run_dir.id if search.run_dir else "RUN"
    if max_time is not None and cost > max_time - (time.monotonic() - search._started):
        logger.warning("autoresearch: no time left to ablate the %d changes of the best node (about %.0f s); "
                       "run 'autoresearch ablate %s' later", len(plan.changes), cost, run_id)
        return
    journal = search._journal
    assert journal is not None
    while (step := plan.next()) is not None and not search._stop.is_set() and not search._time_up():
        node = Node(
            id=tree.next_id(), parent=best.id, operator=Operator.ABLATE,
            plan=f"ablation: best node {best.id} without the change of node {step.change}",
            code=step.code, code_hash=search._hash(step.code),
            diff=unified_diff(best.code, step.code, f"node {best.id}", "ablated"), created_at=time.time(),
            meta={"ablation": {"of": best.id, "without": step.change}},
        )
        search._add(node)
        earlier = _tried(search, node)
        if earlier is not None:  # never re-run what was tried: the earlier node's result stands
            fields = {"status": Status.OK, "metric": earlier.metric, "samples": list(earlier.samples),
                      "kept": False, "exec_time": 0.0, "finished_at": time.time(),
                      "reason": f"same code as node {earlier.id}; its result is used"}
            for key, value in fields.items():
                setattr(node, key, value)
            journal.node_finished(node.id, **fields)
            search.callbacks.on_node_finished(node=search._publish(node), tree=search._snapshot)
        else:
            search._submit(node)
            search._drain(until_empty=True)
        if node.status is Status.CANCELLED:
            return
        node.meta = {**node.meta, "ablation": plan.record(step, node)}
        journal.node_updated(node.id, meta=node.meta)
        search._publish(node)
    if plan.minimal is not None:
        minimal = tree[plan.minimal]
        minimal.meta = {**minimal.meta, "ablation": {**minimal.meta["ablation"], "minimal": True,
                                                     "dropped": plan.dropped}}
        journal.node_updated(minimal.id, meta=minimal.meta)
        search._publish(minimal)
    search.callbacks.on_ablation_finished(best=best, rows=plan.rows, minimal=plan.minimal, tree=search._snapshot)


def _tried(search: Any, node: Node) -> Node | None:
    """A finished search node with the same code, good enough to stand for ``node``'s run."""
    want = noise.confirm_runs(search._tree) if search._sigma else 1
    for other in search._tree:
        if (other.id != node.id and other.operator is not Operator.ABLATE and node.code_hash
                and other.code_hash == node.code_hash and other.is_good and max(1, len(other.samples)) >= want):
            found: Node = other
            return found
    return None
