"""Journal speed: append 10,000 nodes (created + started + finished), then replay them.

Targets: appending all events <= 2 s with the default durable setting, loading <= 1 s.
Run: ``python benchmarks/bench_journal.py [--nodes N] [--check]`` (``--check`` exits 1 on a miss).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

from autoresearch_jupyter.core.diffs import unified_diff
from autoresearch_jupyter.store.journal import Journal, load_journal
from autoresearch_jupyter.core.node import Node, Operator, Status, Usage

TEMPLATE = '''"""Train a small classifier on the digits data; prints the validation accuracy.

The setup between the freeze markers is the fixed protocol (data split and metric); everything
below it is what the search may change, one idea per node, under the same time budget.
"""
import os
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

# autoresearch: freeze
SEED = int(os.environ.get("AUTORESEARCH_SEED", "0"))
X, y = load_digits(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(X, y, test_size=0.25, random_state=SEED, stratify=y)


def evaluate(model):
    """The fixed validation protocol: accuracy on the held-out quarter."""
    return float((model.predict(X_val) == y_val).mean())
# autoresearch: end

LEARNING_RATE = {lr}
C = {c}
MAX_ITER = {max_iter}
PENALTY = "{penalty}"
HIDDEN = {hidden}


def augment(X, y, noise={noise}, copies={copies}):
    """Jittered copies of the training images: more data for the same budget."""
    rng = np.random.default_rng(SEED)
    parts_X, parts_y = [X], [y]
    for _ in range(copies):
        parts_X.append(np.clip(X + rng.normal(0.0, noise, size=X.shape), 0.0, 16.0))
        parts_y.append(y)
    return np.concatenate(parts_X), np.concatenate(parts_y)


def build():
    """The model under search: every constant above is fair game for a proposer."""
    return make_pipeline(
        StandardScaler(),
        LogisticRegression(C=C, max_iter=MAX_ITER, penalty=PENALTY, random_state=SEED),
    )


def main():
    start = time.time()
    model = build()
    X_aug, y_aug = augment(X_train, y_train)
    model.fit(X_aug, y_aug)
    acc = evaluate(model)
    print(f"train time: {{time.time() - start:.2f}} s")
    print(f"hidden={{HIDDEN}} lr={{LEARNING_RATE}} C={{C}} max_iter={{MAX_ITER}}")
    print(f"val_acc: {{acc:.4f}}")


if __name__ == "__main__":
    main()
'''


def make_nodes(count: int, seed: int = 0) -> tuple[list[Node], list[dict]]:
    """Nodes with ~2 KB scripts and their finish fields (built before any timing)."""
    rng = random.Random(seed)
    nodes: list[Node] = []
    results: list[dict] = []
    for i in range(count):
        code = TEMPLATE.format(
            lr=rng.choice([0.001, 0.003, 0.01, 0.03]), c=round(rng.uniform(0.01, 10), 4),
            max_iter=rng.choice([100, 200, 400]), penalty=rng.choice(["l2", "l1"]), hidden=rng.randint(16, 512),
            noise=round(rng.uniform(0, 1), 3), copies=rng.randint(0, 3),
        )
        parent = None if i == 0 else rng.randrange(i)
        node = Node(
            id=i, parent=parent, operator=Operator.BASELINE if parent is None else Operator.IMPROVE,
            plan=f"try C and max_iter around node {parent}", code=code, code_hash=f"{rng.getrandbits(128):032x}",
            diff="" if parent is None else unified_diff(nodes[parent].code, code, f"node {parent}", f"node {i}"),
            created_at=time.time(), usage=Usage(1200, 300, 0.001), meta={"move": "C", "policy": "greedy"},
        )
        nodes.append(node)
        ok = rng.random() > 0.2
        results.append(dict(
            status=Status.OK if ok else Status.BUGGY, metric=round(rng.uniform(0.9, 0.99), 4) if ok else None,
            kept=ok and rng.random() > 0.5, reason=None if ok else "ValueError: bad penalty", exit_code=0 if ok else 1,
            exec_time=round(rng.uniform(0.3, 3), 4), output_tail="train time: 0.41 s\n" * 20 + "val_acc: 0.9533\n",
            finished_at=time.time(),
        ))
    return nodes, results


def append_all(path: Path, nodes: list[Node], results: list[dict], **options: object) -> float:
    start = time.perf_counter()
    with Journal(path, **options) as journal:  # type: ignore[arg-type]
        journal.run_started()
        for node, fields in zip(nodes, results):
            journal.node_created(node)
            journal.node_started(node.id)
            journal.node_finished(node.id, **fields)
        journal.run_finished("finished", "budget spent")
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    n = args.nodes
    nodes, results = make_nodes(n)
    print(f"journal benchmark: {n:,} nodes, {len(nodes[-1].code):,} characters of code per node, Python {sys.version.split()[0]}")
    missed = []
    with tempfile.TemporaryDirectory() as tmp:
        durable = append_all(Path(tmp) / "durable.jsonl", nodes, results)
        size = (Path(tmp) / "durable.jsonl").stat().st_size
        print(f"append {3 * n + 2:,} events, durable=True (default, grouped fsync): {durable:.3f} s"
              f"  ({durable / n * 1e6:.0f} us/node; file {size / 1e6:.1f} MB)  target <= 2 s")
        fast = append_all(Path(tmp) / "fast.jsonl", nodes, results, durable=False)
        print(f"append {3 * n + 2:,} events, durable=False:                     {fast:.3f} s  ({fast / n * 1e6:.0f} us/node)")
        few = min(n, 1000)
        strict = append_all(Path(tmp) / "strict.jsonl", nodes[:few], results[:few], sync_interval=0)
        print(f"append {few:,} nodes, fsync on every node_finished (sync_interval=0): {strict:.3f} s"
              f"  ({strict / few * 1e6:.0f} us/node, for reference)")
        loads = []
        for _ in range(3):
            start = time.perf_counter()
            replay = load_journal(Path(tmp) / "durable.jsonl")
            loads.append(time.perf_counter() - start)
        assert len(replay.tree) == n and not replay.warnings and replay.state == "finished"
        print(f"load the {n:,}-node journal: best {min(loads):.3f} s, worst {max(loads):.3f} s of 3  target <= 1 s")
    if durable > 2.0 * n / 10_000:
        missed.append("append")
    if min(loads) > 1.0 * n / 10_000:
        missed.append("load")
    print("targets: " + ("met" if not missed else "MISSED: " + ", ".join(missed)))
    return 1 if missed and args.check else 0


if __name__ == "__main__":
    raise SystemExit(main())
