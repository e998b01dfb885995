"""Proposal time of the offline proposer (fit + ask) on a grown tree, TPE next to the hill climb.

    python benchmarks/bench_mutate.py [--nodes 200] [--sites 20] [--repeat 20]

A script with ``--sites`` tunable literals; a tree of ``--nodes`` nodes, each one literal changed
from an earlier node, with metrics; then ``--repeat`` proposals at the best node, timed. The
target (issue: offline search as strong as model-based HPO) is <= 30 ms per proposal at 200
nodes and 20 sites.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from autoresearch_jupyter.core.node import Node, Operator, Status
from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.core.tree import Tree
from autoresearch_jupyter.engine.guard import Guard
from autoresearch_jupyter.proposers import Context, MutateProposer


def script(sites: int) -> str:
    lines = ["import math"]
    for i in range(sites):
        kind = i % 4
        value = ["0.01", "8", "True", "0.5"][kind]
        decl = "  # search: log(1e-4, 1)" if kind == 3 else ""
        lines.append(f"p{i} = {value}{decl}")
    lines.append("score = sum([" + ", ".join(f"float(p{i})" for i in range(sites)) + "])")
    lines.append('print(f"score: {score}")')
    return "\n".join(lines) + "\n"


def grow(nodes: int, sites: int, seed: int = 0) -> tuple[Tree, Protocol, Guard]:
    code = script(sites)
    protocol = Protocol.for_script(code, metric="score", maximize=True)
    guard = Guard(protocol=protocol, known=[code])
    tree = Tree()
    tree.add(Node(id=0, parent=None, operator=Operator.BASELINE, plan="baseline", code=code,
                  status=Status.OK, metric=0.5, kept=True))
    rng = random.Random(seed)
    proposer = MutateProposer(seed=seed, sampler="hill")
    while len(tree) < nodes:
        parent = tree[rng.choice([n.id for n in tree if n.is_good])]
        context = Context(protocol=protocol, tree=tree, parent=parent, operator=Operator.IMPROVE,
                          progress=len(tree) / nodes, is_known=guard.is_known)
        proposal = proposer.propose(context=context)
        if proposal is None:
            continue
        guard.remember(proposal.code)
        failed = rng.random() < 0.1
        tree.add(Node(id=tree.next_id(), parent=parent.id, operator=proposal.operator, plan=proposal.plan,
                      code=proposal.code, meta=proposal.meta, status=Status.BUGGY if failed else Status.OK,
                      metric=None if failed else rng.random(), kept=not failed and rng.random() < 0.3))
    return tree, protocol, guard


def time_proposals(tree: Tree, protocol: Protocol, guard: Guard, sampler: str, repeat: int,
                   late: bool = False) -> list[float]:
    best = tree.best(protocol)
    assert best is not None
    proposer = MutateProposer(seed=1, sampler=sampler)
    out = []
    for i in range(repeat):
        context = Context(protocol=protocol, tree=tree, parent=best, operator=Operator.IMPROVE,
                          progress=0.5 + 0.5 * i / repeat if late else i / repeat, is_known=guard.is_known)
        started = time.perf_counter()
        proposer.propose(context=context)
        out.append(time.perf_counter() - started)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    tree, protocol, guard = grow(args.nodes, args.sites)
    time_proposals(tree, protocol, guard, "tpe", 2)  # first use: import optuna, warm caches
    print(f"proposal time at {len(tree)} nodes, {args.sites} sites (median / max of {args.repeat})")
    for sampler, late, label in (("hill", False, "hill climb"), ("tpe", False, "tpe, whole search"),
                                 ("tpe", True, "tpe, late (the model asked first)")):
        times = time_proposals(tree, protocol, guard, sampler, args.repeat, late)
        print(f"  {label:<36} {statistics.median(times) * 1e3:7.1f} ms  {max(times) * 1e3:7.1f} ms")


if __name__ == "__main__":
    main()
