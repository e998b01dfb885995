"""Benchmark what measuring time and peak memory costs per node (the budget: <= 2 ms per node).

Three figures, side by side in one run:

1. one sample of a live process tree (children walk + /proc status per process), in microseconds;
2. how many samples a job of a given length takes (the interval doubles from 5 ms to 0.25 s), and
   so what sampling costs per node of that length;
3. end to end: submit -> result of the same short jobs with the sampler on and off (a no-op
   sampler patched in), interleaved so machine load hits both alike, warm and cold.

Also the one-off start-up calibration of a run (five empty cold jobs). Run:
``python benchmarks/bench_usage.py [--quick]`` (about 40 s, or 15 s with --quick).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autoresearch_jupyter.executors import Job, _job, _usage
from autoresearch_jupyter.executors.local import LocalExecutor

SHORT = "x = sum(range(20000))\nprint('val_acc: 0.5')\n"
TREE_CHILD = "import time; time.sleep(30)"


class NoSampler:
    """The sampler switched off: no samples, no peak memory."""

    def __init__(self, pid: int, started: float, *, gpu: bool = False) -> None:
        self.gpu_peak = None

    def wait_ms(self, now: float, wait_ms: int) -> int:
        return wait_ms

    def maybe_sample(self, now: float) -> None:
        pass

    def peak_memory(self, maxrss: int | None = None) -> int | None:
        return None


def sample_cost(children: int, repeats: int) -> float:
    """Microseconds per sample of a tree of ``children`` sleeping Python processes under this one."""
    procs = [subprocess.Popen([sys.executable, "-c", TREE_CHILD]) for _ in range(children)]
    try:
        time.sleep(0.3)
        sampler = _usage.UsageSampler(os.getpid(), time.monotonic())
        sampler.sample()
        start = time.perf_counter()
        for _ in range(repeats):
            sampler.sample()
        took = (time.perf_counter() - start) / repeats
        sampler.peak_memory()
        assert sampler.peak_tree and len(_usage.tree_pids(os.getpid())) >= children + 1
        return took * 1e6
    finally:
        for p in procs:
            p.kill()
            p.wait()


def samples_for(seconds: float) -> int:
    """Samples a job of ``seconds`` gets under the sampler's schedule."""
    t, interval, n = _usage.FIRST_SAMPLE, _usage.FIRST_SAMPLE, 0
    while t < seconds:
        n += 1
        interval = min(interval * 2, _usage.MAX_INTERVAL)
        t += interval
    return n


def end_to_end(warm: str, n: int, root: Path) -> tuple[float, float]:
    """Median submit -> result seconds of SHORT with the sampler on and off (interleaved)."""
    script = root / f"short_{warm}.py"
    script.write_text(SHORT)
    on: list[float] = []
    off: list[float] = []
    with LocalExecutor(warm=warm) as ex:
        ex.start(warm_imports=["json"])
        ex.wait_warm(60)
        ex.submit(job=Job(node_id=0, script=script, workdir=root, timeout=60, env={})).result()  # calibrates
        for i in range(n):
            for label, sampler in (("on", _usage.UsageSampler), ("off", NoSampler)):
                _job.UsageSampler = sampler  # type: ignore[misc]
                t = time.perf_counter()
                ex.submit(job=Job(node_id=i + 1, script=script, workdir=root, timeout=60, env={})).result()
                (on if label == "on" else off).append(time.perf_counter() - t)
        _job.UsageSampler = _usage.UsageSampler  # type: ignore[misc]
    return statistics.median(on), statistics.median(off)


def calibration_cost(root: Path) -> float:
    script = root / "first.py"
    script.write_text("")
    with LocalExecutor(warm="off") as ex:
        t = time.perf_counter()
        ex._core.calibrate()
        return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    n = 8 if args.quick else 25
    print("1. one sample of a live process tree")
    per_sample = {}
    for children in (0, 4):
        per_sample[children] = sample_cost(children, 200 if args.quick else 1000)
        print(f"   this process + {children} children: {per_sample[children]:.0f} us per sample")
    print("2. samples per node and their cost (one process / 4-child tree)")
    for seconds in (0.02, 0.2, 1.0, 10.0, 60.0):
        k = samples_for(seconds)
        print(f"   {seconds:>5g} s node: {k:>3} samples = {k * per_sample[0] / 1000:.2f} ms / "
              f"{k * per_sample[4] / 1000:.2f} ms ({k * per_sample[4] / 1e6 / seconds * 100:.3f}% of the node)")
    print("3. submit -> result of a short job, sampler on vs off (median, interleaved)")
    with tempfile.TemporaryDirectory() as tmp:
        for warm in ("off", "on"):
            on, off = end_to_end(warm, n, Path(tmp))
            print(f"   warm={warm:<3}: on {on * 1000:.1f} ms, off {off * 1000:.1f} ms, "
                  f"difference {(on - off) * 1000:+.2f} ms per node (ratio {on / off:.3f})")
        print(f"4. start-up calibration, once per run (5 empty cold jobs): {calibration_cost(Path(tmp)) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
