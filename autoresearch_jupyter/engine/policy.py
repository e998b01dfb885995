"""Which node to expand next, and with which operator.

The default is AIDE's greedy scheme made better: a few drafts first (start broad), then mostly
improve the best node, sometimes debug a failed leaf (depth-limited), and when the node being
improved has had ``patience`` finished children in a row without improvement, backtrack to the
best node that still has unexplored moves instead of tweaking a plateau.
"""

from __future__ import annotations

import abc
import dataclasses
import random
from typing import AbstractSet

from ..core.node import Node, Operator, Status
from ..core.protocol import Protocol
from ..core.tree import Tree


@dataclasses.dataclass(frozen=True)
class Decision:
    """Expand ``parent`` with ``operator``; ``note`` says why when it is not the obvious choice."""

    parent: int
    operator: Operator
    note: str = ""
    backtrack: bool = False


class Policy(abc.ABC):
    """Chooses the next expansion; returns None when nothing is left to try."""

    @abc.abstractmethod
    def next(
        self,
        *,
        tree: Tree,
        protocol: Protocol,
        operators: AbstractSet[Operator],
        exhausted: AbstractSet[tuple[int, Operator]],
    ) -> Decision | None:
        """Called whenever a worker is free; must not change the tree.

        ``operators`` are those the proposer serves; ``exhausted`` holds (node, operator) pairs
        for which the proposer said it has nothing left.
        """

    def reseed_rng(self, seed: int) -> None:
        """Reset randomness; the search calls it when it resumes a run, with a seed of that session's own."""


def failure_streak(tree: Tree, node_id: int) -> int:
    """Finished children of ``node_id`` since its last kept child (rejected/cancelled ones aside)."""
    streak = 0
    for child in tree.kids(node_id):
        if child.operator is Operator.ABLATE:
            continue
        if child.status in (Status.REJECTED, Status.CANCELLED) or not child.status.is_finished():
            continue
        streak = 0 if child.kept else streak + 1
    return streak


def _continues(tree: Tree, target: Node) -> bool:
    """True if expanding ``target`` goes on where the last expansion left off (not a backtrack)."""
    for node in reversed(list(tree)):
        if node.parent is None or node.status is Status.REJECTED or node.operator is Operator.ABLATE:
            continue
        # Down the chain it just grew, or another sibling after a child that was not kept.
        return target.id == node.id or (target.id == node.parent and not node.kept)
    return False


class GreedyTreePolicy(Policy):
    """Drafts first, then improve the best; debug with a probability; backtrack on plateaus."""

    def __init__(
        self,
        *,
        num_drafts: int = 3,
        debug_prob: float = 0.3,
        max_debug_depth: int = 3,
        patience: int = 3,
        seed: int = 0,
    ) -> None:
        if num_drafts < 0 or patience < 1 or max_debug_depth < 0 or not 0 <= debug_prob <= 1:
            raise ValueError("policy settings out of range")
        self.num_drafts = num_drafts
        self.debug_prob = debug_prob
        self.max_debug_depth = max_debug_depth
        self.patience = patience
        self.reseed_rng(seed)

    def reseed_rng(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def next(
        self,
        *,
        tree: Tree,
        protocol: Protocol,
        operators: AbstractSet[Operator],
        exhausted: AbstractSet[tuple[int, Operator]],
    ) -> Decision | None:
        root = tree.root
        if root is None:
            return None
        if Operator.DRAFT in operators and (0, Operator.DRAFT) not in exhausted:
            drafts = sum(1 for n in tree if n.operator is Operator.DRAFT)
            if drafts < self.num_drafts:
                return Decision(0, Operator.DRAFT, f"draft {drafts + 1} of {self.num_drafts}")
        if Operator.DEBUG in operators and self._rng.random() < self.debug_prob:
            target = self._debug_target(tree, exhausted)
            if target is not None:
                return Decision(target.id, Operator.DEBUG, f"debug node {target.id} ({target.status.value})")
        if Operator.IMPROVE in operators:
            return self._improve(tree, protocol, exhausted)
        return None

    def _debug_target(self, tree: Tree, exhausted: AbstractSet[tuple[int, Operator]]) -> Node | None:
        """The most recent failed leaf that is still within the debug depth limit."""
        for node in reversed(list(tree)):
            if (
                node.status.is_failure()
                and node.parent is not None
                and node.operator is not Operator.ABLATE
                and not tree.children.get(node.id)
                and (node.id, Operator.DEBUG) not in exhausted
                and tree.debug_depth(node.id) < self.max_debug_depth
            ):
                return node
        return None

    def _improve(
        self, tree: Tree, protocol: Protocol, exhausted: AbstractSet[tuple[int, Operator]]
    ) -> Decision | None:
        # Infeasible nodes (a constraint broken) may still lead to feasible ones, but come last.
        candidates = [
            n for n in tree
            if (n.is_good or (n.is_infeasible and n.metric is not None)) and n.operator is not Operator.ABLATE
            and (n.id, Operator.IMPROVE) not in exhausted
        ]
        if not candidates:
            return None
        best = tree.best(protocol)
        # Kept nodes (and the baseline) first, then reverted ones; within each, best metric first.
        candidates.sort(
            key=lambda n: (n.is_infeasible, not n.is_kept, protocol.sort_key(n.metric), n.id)  # type: ignore[arg-type]
        )
        fresh = [n for n in candidates if failure_streak(tree, n.id) < self.patience]
        if best is not None and any(n.id == best.id for n in fresh):
            return Decision(best.id, Operator.IMPROVE)
        target = fresh[0] if fresh else candidates[0]
        if best is None or target.id == best.id:
            return Decision(target.id, Operator.IMPROVE)
        if _continues(tree, target):
            return Decision(target.id, Operator.IMPROVE, note=f"working on node {target.id}; best node {best.id} plateaued")
        why = (
            f"{self.patience} children in a row without improvement"
            if (best.id, Operator.IMPROVE) not in exhausted
            else "no unexplored moves left"
        )
        return Decision(
            target.id,
            Operator.IMPROVE,
            note=f"backtrack to node {target.id}: best node {best.id} had {why}",
            backtrack=True,
        )
