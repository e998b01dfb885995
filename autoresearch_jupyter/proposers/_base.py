"""The proposer interface: given the tree and a parent, propose one code change.

Call order, from the search loop's side (an ask/tell loop)::

    proposal = proposer.propose(context=Context(...))    # ask: one change to context.parent
    ... the guard checks it, the executor runs it ...
    proposer.on_node_finished(node=node, tree=tree)      # tell: optional hook, no-op by default

``propose`` returns ``None`` when it has nothing left to try from ``context.parent``; the policy
then treats that parent as exhausted and backtracks. A proposer must not change the tree, the
nodes or the protocol it is given: take a copy before modifying anything.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Any, Callable, ClassVar

from ..core.node import Node, Operator, Usage
from ..core.protocol import Protocol
from ..core.tree import Tree


@dataclasses.dataclass(frozen=True)
class Context:
    """What a proposer may look at; all of it read-only."""

    protocol: Protocol
    tree: Tree
    parent: Node  # the node to change (the baseline for drafts)
    operator: Operator
    progress: float  # 0.0 at the start of the search, 1.0 at the end of its budget
    is_known: Callable[[str], bool]  # True if this code (normalised) was already tried
    goal: str = ""  # what the user is after, in words (LLM proposers)
    grading: str = ""  # how a separate evaluator grades nodes (its contract, never its data); "" without one

    @property
    def early(self) -> bool:
        """Early phase: high-variance changes; late phase: fine-tuning."""
        return self.progress < 0.5


@dataclasses.dataclass(frozen=True)
class Proposal:
    """One proposed change: the full new script, and what it tries and why in one line."""

    operator: Operator
    plan: str
    code: str
    usage: Usage | None = None
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)  # JSON-safe; stored on the node
    rejected: str | None = None  # set when the proposer itself gave up on this answer (the reason)


class Proposer(abc.ABC):
    """Proposes changes; see the module docstring for the call order."""

    name: ClassVar[str] = "base"
    operators: ClassVar[frozenset[Operator]] = frozenset({Operator.IMPROVE})
    """The operators this proposer can serve; the policy asks for no others."""

    @abc.abstractmethod
    def propose(self, *, context: Context) -> Proposal | None:
        """Called when the loop has a free worker and the policy chose a parent and operator."""

    def on_node_finished(self, *, node: Node, tree: Tree) -> None:
        """Called after a proposed node finished and the journal recorded it. Optional."""

    def learn(self, *, lessons: list[dict[str, Any]]) -> None:
        """Called once before the first proposal with the lessons of earlier runs whose protocol
        matches (``core/lessons.py``: observations as prior trials, best values, domains). Optional;
        earlier failures are already kept out by the search, whatever the proposer does."""

    def reseed_rng(self, seed: int) -> None:
        """Reset randomness; the search calls it when it resumes a run, with a seed of that session's own."""
