"""What lessons save: the same script searched twice, the second run learning from the first.

Run: ``python benchmarks/bench_lessons.py [--steps N] [script.py --metric NAME --maximize]``.
Prints, per script: the node at which each run first reached run 1's best, the failures of each
run, and how many failures of run 1 run 2 repeated (by literal change). Without a script it uses
two built-in ones (a divergent learning rate with a far-off best width, and the digits example).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from autoresearch_jupyter.core import lessons as L
from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.engine.search import Search
from autoresearch_jupyter.report.lessons import LessonsWriter

SYNTHETIC = """\
lr = 0.1
width = 2.0
if lr > 0.3:
    raise ValueError("diverged")
print(f"score: {-abs(width - 40.0) - abs(lr - 0.2)}")
"""
DIGITS = Path(__file__).resolve().parents[1] / "example_notebooks" / "digits.py"


def one(code: str, metric: str, maximize: bool, steps: int, runs: Path, learn: tuple[str, ...]) -> Search:
    protocol = Protocol.for_script(code, metric=metric, maximize=maximize, time_budget=120)
    search = Search(code=code, protocol=protocol, runs_dir=runs, source="bench.py",
                    settings={"steps": steps, "learn_from": list(learn), "executor": {"workers": 1}})
    search.subscribe(LessonsWriter())
    search.run()
    return search


def failures(search: Search) -> set[tuple[str, str]]:
    tree = search.tree
    return {(c.key, c.new) for n in tree if n.status.value in ("buggy", "timeout")
            for c in L.literal_changes(tree.root.code, n.code) or []}


def reached(search: Search, target: float, maximize: bool) -> int | None:
    hits = [n.id for n in search.tree if n.id and n.metric is not None and n.is_good
            and (n.metric >= target if maximize else n.metric <= target)]
    return min(hits) if hits else None


def bench(name: str, code: str, metric: str, maximize: bool, steps: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        first = one(code, metric, maximize, steps, Path(tmp), ())
        t1 = time.perf_counter()
        second = one(code, metric, maximize, steps, Path(tmp), ("auto",))
        t2 = time.perf_counter()
        best = first.best
        assert best is not None and best.metric is not None
        r1, r2 = reached(first, best.metric, maximize), reached(second, best.metric, maximize)
        f1, f2 = failures(first), failures(second)
        print(f"{name}: steps {steps}; run 1 best {best.metric:.6g} at node {r1} ({t1 - t0:.1f} s); "
              f"run 2 reached it at node {r2} ({t2 - t1:.1f} s); ratio {r2 / r1 if r1 and r2 else float('nan'):.2f}; "
              f"failures run 1 {len(f1)}, run 2 {len(f2)}, repeated {len(f1 & f2)}; "
              f"proposals skipped {len(second.learned.skipped)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", nargs="?")
    parser.add_argument("--metric", default="score")
    parser.add_argument("--maximize", action="store_true")
    parser.add_argument("--steps", type=int, default=16)
    args = parser.parse_args()
    if args.script:
        bench(args.script, Path(args.script).read_text(), args.metric, args.maximize, args.steps)
        return
    bench("synthetic", SYNTHETIC, "score", True, args.steps)
    if DIGITS.exists():
        bench("digits", DIGITS.read_text(), "val_acc", True, args.steps)


if __name__ == "__main__":
    sys.exit(main())
