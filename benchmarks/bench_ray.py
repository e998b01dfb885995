"""Benchmark the Ray executor against the local one, side by side in one run.

1. Overhead per node: a no-op script run N times in a row through each executor; the Ray
   executor's extra cost (ship the node, schedule the task, send the folder back) is the
   difference of the medians. Target: <= 60 ms.
2. Throughput: 8 nodes of 0.5 s of CPU with ``workers=2`` vs ``workers=1`` on a 2-CPU
   cluster. Target: >= 1.8x.

Run: ``python benchmarks/bench_ray.py [--address HOST:PORT] [--nodes 20]``. Without an address
it starts a local Ray instance (2 CPUs) for the run; needs the ``ray`` extra.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from autoresearch_jupyter.executors import Job
from autoresearch_jupyter.executors.local import LocalExecutor
from autoresearch_jupyter.executors.ray import RayExecutor

NOOP = "pass\n"
BUSY = """
import time
end = time.perf_counter() + 0.5
while time.perf_counter() < end:
    pass
print("done")
"""
SEED_ENV = {"PYTHONHASHSEED": "0", "AUTORESEARCH_SEED": "0"}


def job(root: Path, node_id: int, code: str) -> Job:
    workdir = root / "nodes" / str(node_id)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "train.py").write_text(code)
    return Job(node_id=node_id, script=workdir / "train.py", workdir=workdir, timeout=120,
               env={**SEED_ENV, "AUTORESEARCH_NODE_ID": str(node_id), "AUTORESEARCH_NODE_DIR": str(workdir)})


def in_a_row(executor, root: Path, n: int) -> list[float]:
    times = []
    for i in range(n):
        started = time.perf_counter()
        result = executor.submit(job=job(root, 1000 + i, NOOP)).result(timeout=120)
        assert result.exit_code == 0, result.output_tail
        times.append(time.perf_counter() - started)
    return times


def throughput(executor, root: Path, nodes: int) -> float:
    started = time.perf_counter()
    futures = [executor.submit(job=job(root, 2000 + i, BUSY)) for i in range(nodes)]
    assert all(f.result(timeout=300).exit_code == 0 for f in futures)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=None, help="a running cluster (default: a local Ray instance)")
    parser.add_argument("--nodes", type=int, default=20, help="no-op nodes per executor (20)")
    args = parser.parse_args()
    if args.address is None:
        import ray

        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # warm="off" in both: the overhead of the executors themselves, not of a preload.
        with LocalExecutor(workers=1, warm="off") as local, \
                RayExecutor(workers=1, address=args.address, warm="off") as ray_ex:
            ray_ex.start(env=SEED_ENV)
            in_a_row(ray_ex, root / "w", 3)  # the worker process and its imports start once
            in_a_row(local, root / "w", 3)
            local_times, ray_times = [], []
            for _ in range(args.nodes):  # interleaved, so load on the machine hits both alike
                local_times += in_a_row(local, root / "l", 1)
                ray_times += in_a_row(ray_ex, root / "r", 1)
        med_local, med_ray = statistics.median(local_times), statistics.median(ray_times)
        print(f"no-op node, {args.nodes} runs each (median):  local {med_local * 1000:.1f} ms   "
              f"ray {med_ray * 1000:.1f} ms   ray extra {(med_ray - med_local) * 1000:+.1f} ms per node "
              f"(target <= 60 ms)")
        spans: dict[tuple[str, int], float] = {}
        for workers in (1, 2):
            with RayExecutor(workers=workers, address=args.address, warm="off") as ex:
                ex.start(env=SEED_ENV)
                throughput(ex, root / f"warm{workers}", 2)
                spans["ray", workers] = throughput(ex, root / f"t{workers}", 8)
            with LocalExecutor(workers=workers, warm="off") as ex:  # the machine's own ceiling, alongside
                spans["local", workers] = throughput(ex, root / f"l{workers}", 8)
        for name in ("ray", "local"):
            one, two = spans[name, 1], spans[name, 2]
            print(f"8 nodes of 0.5 s CPU on 2 CPUs, {name:<5}:  workers=1 {one:.2f} s   workers=2 {two:.2f} s   "
                  f"speed-up {one / two:.2f}x (target >= 1.8x)")


if __name__ == "__main__":
    main()
