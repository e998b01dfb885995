"""What a job used, measured from outside it: peak resident memory of its process tree, GPU memory.

The node cannot influence these numbers (they never pass through its output). Three sources,
each covering what the others miss:

- samples of the live tree (``/proc/<pid>/task/<tid>/children``, then ``/proc/<pid>/status``):
  the sum of RSS over the tree's processes, and each process's own high-water mark (VmHWM),
  which holds a peak even if it came and went between two samples;
- the leader's rusage when it is reaped (``ru_maxrss``: its peak and that of every descendant it
  waited for), which covers the last moments before exit that no sample saw;
- NVML (``nvidia-ml-py``, optional) for the GPU memory of the tree's processes, when the job has
  a GPU assigned.

Samples start 5 ms after the start and double in interval up to the search loop's poll rate
(0.25 s), so a short job is sampled a few times and a long one costs a few reads a second.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
from typing import Callable, Iterable

logger = logging.getLogger(__name__)

FIRST_SAMPLE = 0.005  # seconds after the start
MAX_INTERVAL = 0.25  # the search loop's poll rate
_LINUX = sys.platform.startswith("linux")
_CHILDREN_FILES = _LINUX and os.path.exists(f"/proc/self/task/{os.getpid()}/children")  # CONFIG_PROC_CHILDREN


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its live descendants (children of every thread, recursively)."""
    if not _CHILDREN_FILES:
        return _psutil_tree(pid)
    out, i = [pid], 0
    while i < len(out):
        p = out[i]
        i += 1
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{p}/task/{tid}/children", "rb") as f:
                    out.extend(int(x) for x in f.read().split())
            except (OSError, ValueError):
                continue
    return out


def _psutil_tree(pid: int) -> list[int]:
    import psutil

    try:
        return [pid, *(p.pid for p in psutil.Process(pid).children(recursive=True))]
    except psutil.Error:
        return []


def _kb(data: bytes, key: bytes) -> int:
    i = data.find(key)
    if i < 0:
        return 0
    j = data.find(b"kB", i)
    try:
        return int(data[i + len(key) : j]) * 1024
    except ValueError:
        return 0


def rss_hwm(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of one process in bytes; (0, 0) when it is gone or a zombie."""
    if not _LINUX:
        import psutil

        try:
            rss = psutil.Process(pid).memory_info().rss
        except psutil.Error:
            return 0, 0
        return rss, rss
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            data = f.read()
    except OSError:
        return 0, 0
    return _kb(data, b"VmRSS:"), _kb(data, b"VmHWM:")


class GpuProbe:
    """GPU memory used by a set of processes, over every device NVML sees; None without NVML."""

    _lock = threading.Lock()
    _nvml: object | None = None
    _failed = False

    @classmethod
    def open(cls) -> "GpuProbe | None":
        with cls._lock:
            if cls._nvml is None and not cls._failed:
                try:
                    import pynvml  # the nvidia-ml-py package

                    pynvml.nvmlInit()
                    cls._nvml = pynvml
                except Exception as err:  # no package, no driver, no device
                    logger.info("gpu_memory is not measured: NVML unavailable (%s)", err)
                    cls._failed = True
            return cls() if cls._nvml is not None else None

    def used_by(self, pids: Iterable[int]) -> int | None:
        nvml = self._nvml
        wanted = set(pids)
        total, seen = 0, False
        try:
            for i in range(nvml.nvmlDeviceGetCount()):  # type: ignore[attr-defined]
                handle = nvml.nvmlDeviceGetHandleByIndex(i)  # type: ignore[attr-defined]
                procs = list(nvml.nvmlDeviceGetComputeRunningProcesses(handle))  # type: ignore[attr-defined]
                try:
                    procs += list(nvml.nvmlDeviceGetGraphicsRunningProcesses(handle))  # type: ignore[attr-defined]
                except Exception:
                    pass
                for proc in procs:
                    if proc.pid in wanted:
                        seen = True
                        total += int(proc.usedGpuMemory or 0)
        except Exception as err:
            logger.debug("NVML query failed: %s", err)
            return None
        return total if seen else 0


class UsageSampler:
    """Peak memory of one job's process tree; ``sample`` is called from the job's poll loop."""

    def __init__(self, pid: int, started: float, *, gpu: bool = False) -> None:
        self.pid = pid
        self.interval = FIRST_SAMPLE
        self.next_due = started + FIRST_SAMPLE
        self.peak_tree = 0  # the largest summed RSS of the tree seen in one sample
        self.peak_one = 0  # the largest high-water mark of any single process seen
        self.gpu = GpuProbe.open() if gpu else None
        self.gpu_peak: int | None = None
        self.samples = 0

    def wait_ms(self, now: float, wait_ms: int) -> int:
        """``wait_ms`` shortened so that the poll wakes for the next sample."""
        return max(0, min(wait_ms, math.ceil((self.next_due - now) * 1000)))

    def maybe_sample(self, now: float) -> None:
        if now >= self.next_due:
            self.sample()
            self.interval = min(self.interval * 2, MAX_INTERVAL)
            self.next_due = now + self.interval

    def sample(self) -> None:
        pids = tree_pids(self.pid)
        total = 0
        for pid in pids:
            rss, hwm = rss_hwm(pid)
            total += rss
            if hwm > self.peak_one:
                self.peak_one = hwm
        self.peak_tree = max(self.peak_tree, total)
        self.samples += 1
        if self.gpu is not None:
            used = self.gpu.used_by(pids)
            if used is not None:
                self.gpu_peak = max(self.gpu_peak or 0, used)

    def peak_memory(self, maxrss: int | None = None) -> int | None:
        """Bytes: the largest of the tree's summed RSS, any one process's peak, the reaped maxrss."""
        best = max(self.peak_tree, self.peak_one, maxrss or 0)
        return best or None


def maxrss_bytes(ru_maxrss: int) -> int:
    """``ru_maxrss`` in bytes (Linux reports KiB, macOS bytes)."""
    return ru_maxrss if sys.platform == "darwin" else ru_maxrss * 1024


def wait_with_usage(pid: int) -> tuple[int, int | None]:
    """Reap a child that has exited: (exit code as subprocess gives it, peak RSS in bytes)."""
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), maxrss_bytes(usage.ru_maxrss)


def measure_startup(run_empty: Callable[[], float | None], repeats: int = 5) -> float:
    """The start-up cost every cold job pays (interpreter, sandbox): the fastest of a few empty runs."""
    times = []
    for _ in range(repeats):
        try:
            took = run_empty()
        except Exception:  # calibration is a nicety: without it, times include the start-up
            logger.debug("start-up calibration failed", exc_info=True)
            took = None
        if took is not None:
            times.append(took)
    return min(times) if times else 0.0
