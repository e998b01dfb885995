"""Making new nodes: the baseline's, and one from a policy decision and a proposal.

A node is born with everything the report and the journal later read about where it came from:
its parent and operator, the plan, the code and its hash, the diff from its parent, the policy's
note and whether it backtracked, and, when the proposal cannot run (the proposer gave up on it,
the guard refused it, or earlier runs' lessons say it fails), its rejection. Building that record
is separate from the loop, which alone adds nodes to the tree, writes them and publishes them;
the checks that may reject a proposal are handed in, so this module knows no guard or lessons.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ..core.diffs import unified_diff
from ..core.node import Node, Operator, Status
from .guard import code_hash
from .policy import Decision

__all__ = ["baseline_node", "node_hash", "proposed_node"]


def node_hash(code: str) -> str:
    """The normalised hash of ``code`` that tells a retried change; "" for code that does not parse."""
    try:
        return code_hash(code)
    except SyntaxError:
        return ""


def baseline_node(code: str) -> Node:
    """Node 0: the baseline script, not yet run."""
    return Node(
        id=0, parent=None, operator=Operator.BASELINE, plan="baseline", code=code,
        code_hash=node_hash(code), created_at=time.time(),
    )


def proposed_node(
    node_id: int, decision: Decision, parent: Node, proposal: Any, *, reject: Callable[[str, str], str | None],
) -> Node:
    """Node ``node_id``: ``proposal`` (a Proposal) applied to ``parent`` as ``decision`` chose;
    rejected with ``proposal.rejected`` or ``reject(parent_code, code)`` when either gives a reason."""
    meta = dict(proposal.meta)
    if decision.note:
        meta["policy"] = decision.note
    meta["backtrack"] = decision.backtrack  # the report counts these, not a guess
    node = Node(
        id=node_id, parent=parent.id, operator=proposal.operator, plan=proposal.plan,
        code=proposal.code, code_hash=node_hash(proposal.code),
        diff=unified_diff(parent.code, proposal.code, f"node {parent.id}", "proposed"),
        created_at=time.time(), usage=proposal.usage, meta=meta,
    )
    reason = proposal.rejected or reject(parent.code, proposal.code)
    if reason:
        node.status, node.reason, node.finished_at = Status.REJECTED, reason, time.time()
    return node
