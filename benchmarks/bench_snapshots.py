"""What the frozen snapshots cost the loop, and what the lab endpoint's cursor saves.

    python benchmarks/bench_snapshots.py [--repeat 200]

(1) Per event, the search freezes the changed node (``Node.snapshot``) and derives the next
tree snapshot (``TreeSnapshot.with_node``: two dictionary copies). Printed for trees of 100,
1,000 and 10,000 nodes, beside what one node costs the loop anyway (a bare ``python -c pass``,
the cheapest node there is), as a ratio.
(2) The JupyterLab endpoint's records (lab/views.py) for a 1,000-node run: the first read (every
record) against a read after one more node finished (only the changed records), in time and in
JSON bytes, side by side.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autoresearch_jupyter.core.node import Node, Operator, Status  # noqa: E402
from autoresearch_jupyter.core.protocol import Protocol  # noqa: E402
from autoresearch_jupyter.core.tree import Tree  # noqa: E402
from autoresearch_jupyter.lab.views import RunViews  # noqa: E402
from autoresearch_jupyter.store.journal import Journal  # noqa: E402
from autoresearch_jupyter.store.runs import RunDir  # noqa: E402

CODE = "".join(f"x{i} = {i}\n" for i in range(40)) + 'print(f"m: {x1}")\n'


def grown_tree(n: int) -> Tree:
    tree = Tree()
    for i in range(n):
        node = Node(i, None if i == 0 else (i - 1) // 3, Operator.BASELINE if i == 0 else Operator.IMPROVE,
                    f"plan {i}", CODE.replace("x1 = 1", f"x1 = {i}"), status=Status.OK, metric=float(i), kept=True,
                    meta={"mutate": {"name": "x1", "from": 1, "to": i}, "backtrack": False})
        tree.add(node)
    return tree


def per_event_seconds(n: int, repeat: int) -> float:
    tree = grown_tree(n)
    snap = tree.snapshot()
    node = tree[n - 1]
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        snap.with_node(node.snapshot())
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bare_node_seconds(repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def endpoint(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = RunDir.create(Path(tmp), protocol=Protocol(metric="m", maximize=True), settings={"steps": n})
        tree = grown_tree(n)
        with Journal(run.journal_path, durable=False) as journal:
            for node in tree:
                journal.node_created(node)
                journal.node_finished(node.id, status=Status.OK, metric=node.metric, kept=True)
            views = RunViews()
            start = time.perf_counter()
            first = views.view(run.path)
            t_first = time.perf_counter() - start
            journal.node_created(Node(n, 0, Operator.IMPROVE, "one more", CODE + "y = 1\n"))
            journal.node_started(n)
            start = time.perf_counter()
            second = views.view(run.path, first["cursor"])
            t_second = time.perf_counter() - start
        print(f"(2) endpoint, {n}-node run: first read {t_first * 1000:.0f} ms, {len(json.dumps(first)):,} bytes "
              f"({len(first['records'])} records); after one event {t_second * 1000:.0f} ms, "
              f"{len(json.dumps(second)):,} bytes ({len(second['records'])} record); "
              f"bytes ratio {len(json.dumps(first)) / len(json.dumps(second)):.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    bare = bare_node_seconds(10)
    print(f"(1) a bare node (python -c pass): {bare * 1000:.1f} ms")
    for n in (100, 1_000, 10_000):
        cost = per_event_seconds(n, args.repeat)
        print(f"    snapshot per event, {n:>6}-node tree: {cost * 1e6:8.1f} us  "
              f"(x3 events per node = {3 * cost / bare * 100:.3f}% of a bare node)")
    endpoint(1_000)


if __name__ == "__main__":
    main()
