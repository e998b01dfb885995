"""Benchmark the local executor: overhead per node, warm vs cold start, workers=2 vs 1, each
with and without the bubblewrap sandbox, side by side.

Run: ``python benchmarks/bench_executor.py [--quick]``; prints its figures (about two minutes, or
about 40 s with --quick). Needs scikit-learn for the warm-start part; the sandboxed rows need bwrap.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autoresearch_jupyter.executors import Job
from autoresearch_jupyter.executors.local import LocalExecutor, top_level_imports

SEED_ENV = {"PYTHONHASHSEED": "0", "AUTORESEARCH_SEED": "0"}

SKLEARN = """
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

X, y = load_digits(return_X_y=True)
scores = cross_val_score(LogisticRegression(max_iter=200), X / 16.0, y, cv=3)
print(f"val_acc: {scores.mean():.6f}")
"""

BUSY = """
import time
end = time.perf_counter() + 0.5
n = 0
while time.perf_counter() < end:
    n += 1
print("loops:", n)
"""


def node(root: Path, code: str, node_id: int) -> Job:
    workdir = root / f"node{node_id}"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "train.py").write_text(code)
    return Job(node_id=node_id, script=workdir / "train.py", workdir=workdir, timeout=120, env=SEED_ENV)


def timed_runs(ex: LocalExecutor, root: Path, code: str, n: int) -> tuple[list[float], list[str]]:
    """Wall time of submit -> result for n runs in a row, and each run's output tail."""
    times, tails = [], []
    for i in range(n):
        job = node(root, code, i)
        start = time.perf_counter()
        result = ex.submit(job=job).result()
        times.append(time.perf_counter() - start)
        assert result.exit_code == 0, result.output_tail
        tails.append(result.output_tail)
    return times, tails


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f} ms"


def sandbox_modes() -> list[str]:
    from autoresearch_jupyter.executors._sandbox import probe

    problem = probe()
    if problem:
        print(f"    (sandboxed rows skipped: {problem})")
        return ["off"]
    return ["off", "require"]


def overhead(root: Path, n: int) -> None:
    print(f"(1) overhead per node, a script that does nothing (median of {n}); sandbox off and on")
    job = node(root / "bare", "pass\n", 0)
    bare = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run([sys.executable, "train.py"], cwd=job.workdir, check=True)
        bare.append(time.perf_counter() - start)
    b = statistics.median(bare)
    print(f"    bare subprocess.run([python, script])  {ms(b)}")
    medians: dict[tuple[str, str], float] = {}
    for mode in sandbox_modes():
        with LocalExecutor(warm="off", sandbox=mode) as ex:
            cold, _ = timed_runs(ex, root / f"cold-{mode}", "pass\n", n)
        with LocalExecutor(warm="on", sandbox=mode) as ex:
            ex.start(warm_imports=[], env=SEED_ENV, workspace=root / f"warm-{mode}")
            ex.wait_warm(60)
            warm, _ = timed_runs(ex, root / f"warm-{mode}", "pass\n", n)
        c, w = statistics.median(cold), statistics.median(warm)
        medians[mode, "cold"], medians[mode, "warm"] = c, w
        label = "sandboxed" if mode != "off" else "no sandbox"
        print(f"    {label:<10} cold submit->result       {ms(c)}   vs bare {ms(c - b)}")
        print(f"    {label:<10} warm submit->result       {ms(w)}   vs bare {ms(w - b)}")
    if ("require", "cold") in medians:
        for kind in ("cold", "warm"):
            extra = medians["require", kind] - medians["off", kind]
            print(f"    sandbox cost per node, {kind}: {ms(extra)}  (target <= 20 ms)")


def warm_vs_cold(root: Path, n: int) -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        print("(2) warm vs cold: skipped (scikit-learn is not installed)")
        return
    print(f"(2) warm vs cold, LogisticRegression on load_digits, 3-fold CV (median of {n}); sandbox off and on")
    rows = []
    tails = []
    for mode in sandbox_modes():
        label = "sandboxed" if mode != "off" else "no sandbox"
        with LocalExecutor(warm="off", sandbox=mode) as ex:
            cold, cold_tails = timed_runs(ex, root / f"skcold-{mode}", SKLEARN, n)
        tails.append(cold_tails)
        with LocalExecutor(warm="on", sandbox=mode) as ex:
            start = time.perf_counter()
            ex.start(warm_imports=top_level_imports(SKLEARN, submodules=True), env=SEED_ENV,
                     workspace=root / f"skwarm-{mode}")
            ex.wait_warm(120)
            preload = time.perf_counter() - start
            warm, warm_tails = timed_runs(ex, root / f"skwarm-{mode}", SKLEARN, n)
        tails.append(warm_tails)
        rows.append((label, statistics.median(cold), statistics.median(warm), preload))
    for label, cold, warm, preload in rows:
        print(f"    {label:<10} cold {cold:6.3f} s   warm {warm:6.3f} s   {cold / warm:5.2f}x faster warm"
              f"   preload {preload:.2f} s once")
    if len(rows) == 2:
        print(f"    sandbox cost: cold {ms(rows[1][1] - rows[0][1])}, warm {ms(rows[1][2] - rows[0][2])}"
              f"; sandboxed warm vs unsandboxed cold {rows[0][1] / rows[1][2]:.2f}x")
    metrics = {line for group in tails for tail in group for line in tail.splitlines() if "val_acc" in line}
    same = "yes" if len(metrics) == 1 else "NO"
    print(f"    metric identical cold and warm, with and without the sandbox: {same} ({', '.join(sorted(metrics))})")


def throughput(root: Path, nodes: int) -> None:
    print(f"(3) throughput, {nodes} single-threaded CPU-bound nodes of 0.5 s")
    totals = {}
    for workers in (1, 2):
        with LocalExecutor(workers=workers, warm="off") as ex:
            jobs = [node(root / f"w{workers}", BUSY, i) for i in range(nodes)]
            start = time.perf_counter()
            results = [f.result() for f in [ex.submit(job=j) for j in jobs]]
            totals[workers] = time.perf_counter() - start
        assert all(r.exit_code == 0 for r in results)
        print(f"    workers={workers}: {totals[workers]:.2f} s")
    print(f"    speed-up workers=2 / workers=1: {totals[1] / totals[2]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (about 20 s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-executor-") as tmp:
        root = Path(tmp)
        overhead(root / "overhead", 10 if args.quick else 40)
        warm_vs_cold(root / "warm", 3 if args.quick else 5)
        throughput(root / "throughput", 4 if args.quick else 8)


if __name__ == "__main__":
    main()
