"""Hybrid proposer: the LLM for ideas, the offline mutate proposer for late fine-tuning.

Late in a search most useful moves are small steps of numbers the script already has (a learning
rate, a depth, a regularisation strength). The mutate proposer makes exactly those moves, with no
tokens, and never repeats one; the LLM is worth its tokens for new ideas and for fixing bugs.

The rule (setting ``hybrid_after``, CLI ``--hybrid-after F``): once the search has spent the
fraction F of its budget (``Context.progress >= F``, steps or time, whichever is further),

- IMPROVE goes to mutate when the parent has tunable literals left to move (numbers and booleans
  assigned to names, keyword arguments, dict entries, or ``# search:`` declared sites; seeds and
  evaluation settings excluded); when mutate has nothing left there, the LLM gets the request;
- DEBUG of a node that mutate produced goes to mutate first (it bisects the failed move back
  towards the working value), the LLM otherwise;
- DRAFT always goes to the LLM.

Before F everything goes to the LLM. Nodes record who proposed them (``meta["hybrid"]``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..core.node import Node, Operator
from ..core.tree import Tree
from ._base import Context, Proposal, Proposer

__all__ = ["HybridProposer"]


class HybridProposer(Proposer):
    """Wraps an LLM proposer and a mutate proposer; see the module docstring for the rule."""

    def __init__(self, llm: Proposer, mutate: Proposer, *, after: float) -> None:
        if not 0 <= after <= 1:
            raise ValueError(f"hybrid_after must be between 0 and 1, got {after}")
        self.llm = llm
        self.mutate = mutate
        self.after = after
        self.name = f"{llm.name}; mutate for late fine-tuning after {after:.0%} of the budget"  # type: ignore[misc]
        self.operators = frozenset(llm.operators)  # type: ignore[misc]

    def propose(self, *, context: Context) -> Proposal | None:
        """Mutate first for late IMPROVE (and DEBUG of mutate's own nodes), else the LLM."""
        late = context.progress >= self.after
        if late and context.operator in self.mutate.operators and (
            context.operator is Operator.IMPROVE or "mutate" in context.parent.meta
        ):
            proposal = self.mutate.propose(context=context)
            if proposal is not None:
                return dataclasses.replace(proposal, meta={**proposal.meta, "hybrid": "mutate"})
        proposal = self.llm.propose(context=context)
        if proposal is None:
            return None
        return dataclasses.replace(proposal, meta={**proposal.meta, "hybrid": "llm"})

    def on_node_finished(self, *, node: Node, tree: Tree) -> None:
        self.llm.on_node_finished(node=node, tree=tree)
        self.mutate.on_node_finished(node=node, tree=tree)

    def learn(self, *, lessons: list[dict[str, Any]]) -> None:
        self.llm.learn(lessons=lessons)
        self.mutate.learn(lessons=lessons)

    def reseed_rng(self, seed: int) -> None:
        self.llm.reseed_rng(seed)
        self.mutate.reseed_rng(seed)
