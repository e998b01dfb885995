"""Orchestration overhead of the search loop, and the cost of `import autoresearch_jupyter`.

    python benchmarks/bench_search.py [--steps 40]

(1) Runs a search whose node script does nothing but print its metric, and compares the median
wall time per node inside the loop (propose, guard, journal, spawn, capture, read the metric)
with a bare `subprocess.run([python, script])` of the same script, side by side in one run.
(2) Times `import autoresearch_jupyter` in fresh interpreters against `python -c pass`.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCRIPT = """a = 1.0  # search: log(1e-6, 1e6)
b = 1.0  # search: log(1e-6, 1e6)
c = 4  # search: int(1, 1000)
d = 0.5  # search: float(0, 1)
print(f"m: {a + b + c + d}")
"""


def bare_runs(script: Path, n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run([sys.executable, str(script)], check=True, capture_output=True, cwd=script.parent)
        times.append(time.perf_counter() - start)
    return times


def search_per_node(script: Path, steps: int, warm: str) -> tuple[list[float], int]:
    from autoresearch_jupyter import Protocol, Search

    code = script.read_text()
    protocol = Protocol.for_script(code, metric="m", maximize=True, time_budget=30)
    search = Search(
        code=code, protocol=protocol, runs_dir=script.parent / f"runs-{warm}",
        settings={"steps": steps, "executor": {"name": "local", "workers": 1, "warm": warm}},
    )
    outcome = search.run()
    ends = sorted(n.finished_at for n in outcome.tree if n.id > 0 and n.finished_at and n.exit_code is not None)
    gaps = [b - a for a, b in zip(ends, ends[1:])]  # wall time per node as the loop runs them
    return gaps, len(ends)


def import_times(n: int) -> tuple[float, float]:
    def median_of(code: str) -> float:
        runs = []
        for _ in range(n):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True)
            runs.append(time.perf_counter() - start)
        return statistics.median(runs)

    return median_of("pass"), median_of("import autoresearch_jupyter")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "noop.py"
        script.write_text(SCRIPT)
        bare = statistics.median(bare_runs(script, 20))
        print(f"(1) per-node wall time, a script that does nothing ({args.steps} steps, workers=1)")
        print(f"    bare subprocess.run([python, script])      {bare * 1000:7.1f} ms")
        for warm in ("off", "on"):
            gaps, nodes = search_per_node(script, args.steps, warm)
            med = statistics.median(gaps)
            print(f"    search loop, warm={warm:<3} ({nodes} nodes run)  {med * 1000:7.1f} ms   "
                  f"overhead vs bare {1000 * (med - bare):+7.1f} ms")
    base, imported = import_times(15)
    print("(2) import autoresearch_jupyter, fresh interpreter (median of 15)")
    print(f"    python -c pass {base * 1000:.1f} ms; with the import {imported * 1000:.1f} ms; "
          f"the import itself {1000 * (imported - base):.1f} ms (target <= 150 ms)")


if __name__ == "__main__":
    main()
