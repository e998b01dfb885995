"""Prompt size per node against tree size: the bounded memory against AIDE's uncapped one.

For trees of 10, 50 and 200 nodes (plans, metrics, failures, rejections; built by hand, no model),
it prints the estimated prompt tokens (chars / 4) of the LLM proposer's IMPROVE prompt for the best
node under the cap, and beside it an AIDE-style prompt: the same fixed parts plus AIDE's memory
(every good node's plan and metric, no cap). Cumulative figures are the sum over a whole run that
grows to that size (one prompt per node). No network; runs in about a second.

Run: ``python benchmarks/bench_prompt.py [--caps 6000,1500] [--script PATH] [--check]``
(``--check`` exits 1 if any capped prompt is over the cap).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from autoresearch_jupyter.core.node import Node, Operator, Status
from autoresearch_jupyter.proposers import Context
from autoresearch_jupyter.proposers._memory import aide_memory, estimate_tokens
from autoresearch_jupyter.proposers._prompts import build_messages
from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.core.tree import Tree

DIGITS = Path(__file__).resolve().parents[1] / "example_notebooks" / "digits.py"
IDEAS = [
    "raise C from {a} to {b}: the model underfits", "switch the solver to saga with {a} iterations",
    "add PCA to {a} components before the classifier", "use an MLP with {a} hidden units",
    "standardise then add polynomial features of degree {a}", "class_weight=balanced and C={b}",
    "gradient boosting with {a} trees of depth {b}", "random forest with {a} trees",
    "augment with {a} jittered copies of the training images", "lower the tolerance to 1e-{a}",
]
ERRORS = [
    "ValueError: Solver lbfgs supports only 'l2' or None penalties, got l1 penalty.",
    "MemoryError: Unable to allocate 3.2 GiB for an array with shape (54000, 8000)",
    "ConvergenceWarning promoted to error: lbfgs failed to converge (status=1)",
    "TypeError: __init__() got an unexpected keyword argument 'n_estimator'",
]


def grow(code: str, protocol: Protocol, n: int, seed: int = 0) -> Iterator[Tree]:
    """The same tree after each new node, up to ``n`` nodes, grown like a search: mostly improve
    the best, sometimes another good node; some failures and rejections."""
    rng = random.Random(seed)
    tree = Tree()
    tree.add(Node(id=0, parent=None, operator=Operator.BASELINE, plan="baseline", code=code,
                  status=Status.OK, metric=0.90, kept=True))
    best, metric = 0, 0.90
    for i in range(1, n):
        parent = best if rng.random() < 0.8 else rng.randrange(i)
        while not tree[parent].is_good:
            parent = tree[parent].parent or 0
        plan = rng.choice(IDEAS).format(a=rng.randint(2, 500), b=rng.randint(2, 50))
        roll = rng.random()
        node = Node(id=i, parent=parent, operator=Operator.IMPROVE, plan=plan, code=code + f"# {i}\n")
        if roll < 0.15:
            node.status, node.kept, node.reason = Status.BUGGY, False, rng.choice(ERRORS)
        elif roll < 0.20:
            node.status, node.reason = Status.REJECTED, "duplicate: this code was already tried"
        else:
            node.status = Status.OK
            node.metric = round(tree[parent].metric + rng.gauss(-0.002, 0.006), 4)  # type: ignore[operator]
            node.kept = node.metric > tree[parent].metric  # type: ignore[operator]
        tree.add(node)
        if node.kept and node.metric is not None and node.metric > metric:
            best, metric = i, node.metric
        yield tree


def prompt_tokens(tree: Tree, protocol: Protocol, cap: int) -> tuple[int, int, int]:
    """(capped prompt tokens, memory items in it, AIDE-style prompt tokens) for improving the best."""
    best = tree.best(protocol)
    assert best is not None
    context = Context(protocol=protocol, tree=tree, parent=best, operator=Operator.IMPROVE, progress=0.5,
                      is_known=lambda code: False, goal="the best validation accuracy on digits")
    prompt = build_messages(context, max_prompt_tokens=cap)
    fixed = build_messages(context, max_prompt_tokens=0)  # no room: the fixed parts alone
    aide = fixed.tokens + estimate_tokens(aide_memory(tree, protocol))
    return prompt.tokens, prompt.memory_items, aide


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--caps", default="6000,1500",
                        help="max prompt tokens to compare, comma-separated (6000 is the default cap)")
    parser.add_argument("--script", type=Path, default=DIGITS, help="baseline script (example digits.py)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a capped prompt exceeds the cap")
    args = parser.parse_args(argv)
    code = args.script.read_text()
    protocol = Protocol.for_script(code, metric="val_acc", maximize=True)
    sizes = (10, 50, 200)
    start = time.perf_counter()
    print(f"script {args.script.name}: {estimate_tokens(code)} tokens; tokens estimated as chars/4; "
          "prompt for IMPROVE of the best node")
    over = 0
    tree = Tree()
    for cap in (int(c) for c in args.caps.split(",")):
        print(f"\ncap {cap:,} tokens")
        print(f"{'nodes':>6} {'capped prompt':>14} {'memory items':>13} {'AIDE-style prompt':>18} "
              f"{'run total capped':>17} {'run total AIDE':>15}")
        cum_capped = cum_aide = 0
        for tree in grow(code, protocol, max(sizes)):
            capped, items, aide = prompt_tokens(tree, protocol, cap)
            over += capped > cap
            cum_capped += capped
            cum_aide += aide
            if len(tree) in sizes:
                print(f"{len(tree):>6} {capped:>14,} {items:>13} {aide:>18,} {cum_capped:>17,} {cum_aide:>15,}")
        t0 = time.perf_counter()
        for _ in range(20):
            prompt_tokens(tree, protocol, cap)
        per = (time.perf_counter() - t0) / 20 * 1000
        print(f"building one prompt at {len(tree)} nodes: {per:.1f} ms")
    print(f"\nwhole benchmark {time.perf_counter() - start:.2f} s")
    if args.check and over:
        print(f"FAIL: {over} prompt(s) over the cap", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
