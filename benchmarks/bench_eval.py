"""Cost of the separate evaluator per node (--eval), beyond the evaluator's own work.

    python benchmarks/bench_eval.py [--steps 40] [--warm on|off]

Runs the same search twice, side by side in one run: nodes whose script writes one output file
and prints a number, first read by the loop itself, then graded by an evaluator that reads that
file. The median wall time per node inside the loop (the gap between consecutive node ends) is
compared; the evaluator's own time is its job's wall time (fork or start, run, exit) as
recorded on each node. What is left is the grader's bookkeeping: building the job, ran.json,
the hand-off between the two jobs and reading the result. Target: <= 30 ms.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

SCRIPT = """a = 1.0  # search: log(1e-6, 1e6)
b = 4  # search: int(1, 1000)
with open("out.txt", "w") as f:
    f.write(repr(a + b))
print(f"m: {a + b}")
"""
EVALUATE = """with open("out.txt") as f:
    print(f"m: {float(f.read())}")
"""


def per_node(folder: Path, steps: int, warm: str, graded: bool) -> tuple[float, float | None, int]:
    from autoresearch_jupyter import Protocol, Search
    from autoresearch_jupyter.evaluation import build_spec

    protocol = Protocol.for_script(SCRIPT, metric="m", maximize=True, time_budget=30)
    settings = {"steps": steps, "executor": {"name": "local", "workers": 1, "warm": warm}}
    if graded:
        settings["eval"] = build_spec(code=EVALUATE, source="bench").to_settings()
    outcome = Search(code=SCRIPT, protocol=protocol, runs_dir=folder / f"runs-{warm}-{graded}", settings=settings).run()
    nodes = [n for n in outcome.tree if n.id > 0 and n.finished_at and n.exit_code is not None]
    ends = sorted(n.finished_at for n in nodes)
    gaps = [b - a for a, b in zip(ends, ends[1:])]
    evals = [float(n.meta["eval"]["time"]) for n in nodes if graded and "eval" in n.meta]
    return statistics.median(gaps), (statistics.median(evals) if evals else None), len(nodes)


def job_fixed_cost(folder: Path, n: int = 30) -> float:
    """Median cost of one job in the local executor beyond its process's own life (setup, capture,
    the pass over /proc for leftovers): what any second job per node pays, graded or not."""
    import time

    from autoresearch_jupyter.executors import Job, get_executor

    (folder / "e.py").write_text(EVALUATE.replace('open("out.txt")', 'open(__file__)').replace("float(f.read())", "1.0"))
    executor = get_executor("local", warm="on")
    executor.start(warm_imports=[], env={"PYTHONHASHSEED": "0"})
    executor.wait_warm(60)
    costs = []
    try:
        for i in range(n):
            start = time.perf_counter()
            result = executor.submit(job=Job(node_id=i, script=folder / "e.py", workdir=folder, timeout=30,
                                             env={"PYTHONHASHSEED": "0"})).result()
            costs.append(time.perf_counter() - start - result.exec_time)
    finally:
        executor.close()
    return statistics.median(costs)


def grader_work(folder: Path, n: int = 300) -> float:
    """The grader's own work per node, without any process: build the evaluator's job, record the
    run (ran.json), check the outputs for links, read the self-reported and the graded numbers."""
    import time

    from autoresearch_jupyter.evaluation import EvalFiles, Grader, build_spec
    from autoresearch_jupyter.executors import JobResult

    run = folder / "grader-run"
    outputs = run / "nodes" / "1"
    outputs.mkdir(parents=True)
    (outputs / "output.log").write_text("m: 5.0\n")
    (outputs / "out.txt").write_text("5.0")
    files = EvalFiles(run)
    spec = build_spec(code=EVALUATE, source="bench")
    files.install(spec)
    grader = Grader(spec, files, metric="m", seed=0)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        job = grader.eval_job(1)
        files.save_ran(1, {"code_hash": "x", "exit_code": 0, "exec_time": 0.01, "warm": True,
                           "self_reported": grader.self_reported(1, outputs / "output.log")})
        assert grader.escape(1) is None
        (Path(job.workdir) / job.log_name).write_text("m: 5.0\n")
        result = JobResult(node_id=1, exit_code=0, timed_out=False, cancelled=False, exec_time=0.01,
                           log_path=Path(job.workdir) / job.log_name, output_tail="m: 5.0\n")
        assert grader.read(job, result).metric == 5.0
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warm", choices=("on", "off"), default="on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        per_node(folder, 3, args.warm, True)  # warm-up: imports, page cache
        plain, _, n_plain = per_node(folder, args.steps, args.warm, False)
        graded, own, n_graded = per_node(folder, args.steps, args.warm, True)
        fixed = job_fixed_cost(folder)
        own_work = grader_work(folder)
    assert own is not None
    overhead = graded - plain - own
    print(f"warm start {args.warm}; {n_plain} and {n_graded} nodes after the baseline")
    print(f"{'per node, metric read by the loop':<44} {plain * 1000:8.1f} ms")
    print(f"{'per node, graded by the evaluator':<44} {graded * 1000:8.1f} ms")
    print(f"{'  of which the evaluator job itself':<44} {own * 1000:8.1f} ms")
    print(f"{'overhead beyond the evaluator own work':<44} {overhead * 1000:8.1f} ms  (target <= 30 ms)")
    print(f"{'  of it, the executor fixed cost of a job':<44} {fixed * 1000:8.1f} ms  (any job pays it)")
    print(f"{'  of it, the grader itself (what is left)':<44} {(overhead - fixed) * 1000:8.1f} ms")
    print(f"{'the grader itself, timed alone (no process)':<44} {own_work * 1000:8.2f} ms")
    print(f"{'ratio graded / plain':<44} {graded / plain:8.2f} x")


if __name__ == "__main__":
    main()
