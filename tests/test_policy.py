"""The default policy: drafts first, improve the best, debug failures, backtrack on plateaus."""

from __future__ import annotations

from autoresearch_jupyter.core.node import Node, Operator, Status
from autoresearch_jupyter.engine.policy import GreedyTreePolicy, failure_streak
from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.core.tree import Tree

P = Protocol(metric="acc", maximize=True)
IMPROVE = frozenset({Operator.IMPROVE})
ALL = frozenset(Operator) - {Operator.BASELINE}


def add(tree: Tree, parent, status=Status.OK, metric=None, kept=None, op=Operator.IMPROVE) -> Node:
    node = Node(id=tree.next_id(), parent=parent, operator=op if parent is not None else Operator.BASELINE,
                plan="", code="", status=status, metric=metric, kept=kept)
    tree.add(node)
    return node


def baseline(metric=0.5) -> Tree:
    tree = Tree()
    add(tree, None, metric=metric, kept=True)
    return tree


def test_drafts_come_first_when_the_proposer_can_draft():
    tree = baseline()
    policy = GreedyTreePolicy(num_drafts=2, debug_prob=0)
    assert policy.next(tree=tree, protocol=P, operators=ALL, exhausted=set()).operator is Operator.DRAFT
    add(tree, 0, op=Operator.DRAFT, metric=0.4, kept=False)
    add(tree, 0, op=Operator.DRAFT, metric=0.6, kept=True)
    decision = policy.next(tree=tree, protocol=P, operators=ALL, exhausted=set())
    assert decision.operator is Operator.IMPROVE and decision.parent == 2


def test_no_drafts_for_a_proposer_that_cannot_draft():
    decision = GreedyTreePolicy().next(tree=baseline(), protocol=P, operators=IMPROVE, exhausted=set())
    assert (decision.parent, decision.operator) == (0, Operator.IMPROVE)


def test_improves_the_best_kept_node():
    tree = baseline()
    add(tree, 0, metric=0.7, kept=True)
    add(tree, 0, metric=0.6, kept=True)
    add(tree, 1, metric=0.65, kept=False)
    decision = GreedyTreePolicy().next(tree=tree, protocol=P, operators=IMPROVE, exhausted=set())
    assert decision.parent == 1 and not decision.backtrack


def test_backtracks_after_patience_children_without_improvement():
    tree = baseline()
    add(tree, 0, metric=0.7, kept=True)  # 1: best
    add(tree, 0, metric=0.6, kept=True)  # 2: second best kept
    for _ in range(3):
        add(tree, 1, metric=0.65, kept=False)
    assert failure_streak(tree, 1) == 3
    decision = GreedyTreePolicy(patience=3).next(tree=tree, protocol=P, operators=IMPROVE, exhausted=set())
    assert decision.parent == 2 and decision.backtrack
    assert "3 children in a row" in decision.note


def test_a_kept_child_resets_the_streak():
    tree = baseline()
    add(tree, 0, metric=0.4, kept=False)
    add(tree, 0, status=Status.BUGGY, kept=False)
    add(tree, 0, metric=0.6, kept=True)
    assert failure_streak(tree, 0) == 0


def test_exhausted_best_sends_the_search_elsewhere_and_everything_exhausted_ends_it():
    tree = baseline()
    add(tree, 0, metric=0.7, kept=True)
    policy = GreedyTreePolicy()
    decision = policy.next(tree=tree, protocol=P, operators=IMPROVE, exhausted={(1, Operator.IMPROVE)})
    assert decision.parent == 0 and decision.backtrack and "no unexplored moves" in decision.note
    done = {(0, Operator.IMPROVE), (1, Operator.IMPROVE)}
    assert policy.next(tree=tree, protocol=P, operators=IMPROVE, exhausted=done) is None


def test_reverted_nodes_are_used_only_when_nothing_kept_is_left():
    tree = baseline()
    add(tree, 0, metric=0.9, kept=False)  # reverted (e.g. below min_delta)
    policy = GreedyTreePolicy(patience=1)
    decision = policy.next(tree=tree, protocol=P, operators=IMPROVE, exhausted=set())
    assert decision.parent == 1  # baseline's streak is 1 = patience: the reverted node is the fallback
    decision = policy.next(tree=tree, protocol=P, operators=IMPROVE, exhausted={(1, Operator.IMPROVE)})
    assert decision.parent == 0


def test_debugs_a_failed_leaf_within_the_depth_limit():
    tree = baseline()
    add(tree, 0, status=Status.BUGGY)  # 1
    add(tree, 1, status=Status.BUGGY, op=Operator.DEBUG)  # 2: debug depth 1
    policy = GreedyTreePolicy(debug_prob=1.0, max_debug_depth=2)
    decision = policy.next(tree=tree, protocol=P, operators=ALL - {Operator.DRAFT}, exhausted=set())
    assert (decision.parent, decision.operator) == (2, Operator.DEBUG)
    add(tree, 2, status=Status.TIMEOUT, op=Operator.DEBUG)  # 3: depth 2 = limit
    decision = policy.next(tree=tree, protocol=P, operators=ALL - {Operator.DRAFT}, exhausted=set())
    assert decision.operator is Operator.IMPROVE


def test_minimize_picks_the_lowest():
    tree = baseline(metric=1.0)
    add(tree, 0, metric=0.5, kept=True)
    add(tree, 0, metric=0.7, kept=True)
    decision = GreedyTreePolicy().next(
        tree=tree, protocol=Protocol(metric="loss", maximize=False), operators=IMPROVE, exhausted=set()
    )
    assert decision.parent == 1


def test_same_seed_same_decisions():
    def decisions(seed):
        tree = baseline()
        for _ in range(4):
            add(tree, 0, status=Status.BUGGY)
        policy = GreedyTreePolicy(seed=seed, debug_prob=0.5)
        return [policy.next(tree=tree, protocol=P, operators=ALL - {Operator.DRAFT}, exhausted=set()).operator
                for _ in range(20)]

    assert decisions(1) == decisions(1)
    assert decisions(1) != decisions(2)
