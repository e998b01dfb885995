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

Samples start 5 ms after the start and double in interval up to 0.5 s, so a short job is
sampled a few times and a long one twice a second. A sample re-reads open files with pread
(``statm`` and the main thread's ``children``: microseconds); every fourth one also reads every
thread's children and the high-water marks (``status``, tens of microseconds).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
import weakref
from typing import Callable, Iterable

logger = logging.getLogger(__name__)

FIRST_SAMPLE = 0.005  # seconds after the start
MAX_INTERVAL = 0.5  # twice the search loop's poll interval
_LINUX = sys.platform.startswith("linux")
_CHILDREN_FILES = _LINUX and os.path.exists(f"/proc/self/task/{os.getpid()}/children")  # CONFIG_PROC_CHILDREN


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
FULL_EVERY = 4  # every how many samples the children of every thread and the high-water marks are read


class ProcFiles:
    """The tree's /proc files, opened once and re-read with pread (a few microseconds each).

    An fd stays bound to its process, so a reused pid cannot be mistaken for it: reading a file of
    a process that has gone fails, and the fd is dropped.
    """

    def __init__(self) -> None:
        self.fds: dict[str, int] = {}

    def read(self, path: str) -> bytes | None:
        fd = self.fds.get(path)
        if fd is None:
            try:
                fd = self.fds[path] = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                return None
        try:
            return os.pread(fd, 1 << 16, 0)
        except OSError:
            self.drop(path)
            return None

    def drop(self, path: str) -> None:
        fd = self.fds.pop(path, None)
        if fd is not None:
            os.close(fd)

    def keep_only(self, pids: set[int]) -> None:
        """Close the files of processes that left the tree."""
        for path in [p for p in self.fds if int(p.split("/")[2]) not in pids]:
            self.drop(path)

    def close(self) -> None:
        for path in list(self.fds):
            self.drop(path)


def tree_pids(pid: int, files: ProcFiles | None = None, *, all_threads: bool = True) -> list[int]:
    """``pid`` and its live descendants: children of every thread (or of main threads only), recursively."""
    if not _CHILDREN_FILES:
        return _psutil_tree(pid)
    files = files or ProcFiles()
    out, i = [pid], 0
    while i < len(out):
        p = out[i]
        i += 1
        if all_threads:
            try:
                tids = os.listdir(f"/proc/{p}/task")
            except OSError:
                continue
        else:
            tids = [str(p)]
        for tid in tids:
            data = files.read(f"/proc/{p}/task/{tid}/children")
            if data:
                out.extend(int(x) for x in data.split())
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


def rss_hwm(pid: int, files: ProcFiles | None = None, *, hwm: bool = True) -> tuple[int, int]:
    """(current RSS, peak RSS or 0 when not asked) of one process in bytes; (0, 0) when it is gone."""
    if not _LINUX:
        import psutil

        try:
            rss = psutil.Process(pid).memory_info().rss
        except psutil.Error:
            return 0, 0
        return rss, rss
    files = files or ProcFiles()
    statm = files.read(f"/proc/{pid}/statm")
    if not statm:
        return 0, 0
    try:
        rss = int(statm.split()[1]) * _PAGE
    except (IndexError, ValueError):
        rss = 0
    peak = 0
    if hwm:
        status = files.read(f"/proc/{pid}/status")
        peak = _kb(status, b"VmHWM:") if status else 0
    return rss, peak


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
                    import pynvml  # the nvidia-ml-py package (untyped; see [tool.mypy] overrides)

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
        self.files = ProcFiles()
        weakref.finalize(self, self.files.close)  # the files close even if the job's loop raised

    def wait_ms(self, now: float, wait_ms: int) -> int:
        """``wait_ms`` shortened so that the poll wakes for the next sample."""
        return max(0, min(wait_ms, math.ceil((self.next_due - now) * 1000)))

    def maybe_sample(self, now: float) -> None:
        if now >= self.next_due:
            self.sample()
            self.interval = min(self.interval * 2, MAX_INTERVAL)
            self.next_due = now + self.interval

    def sample(self) -> None:
        full = self.samples % FULL_EVERY == 0
        pids = tree_pids(self.pid, self.files, all_threads=full)
        total = 0
        for pid in pids:
            rss, hwm = rss_hwm(pid, self.files, hwm=full)
            total += rss
            self.peak_one = max(self.peak_one, hwm, rss)
        self.peak_tree = max(self.peak_tree, total)
        self.samples += 1
        if full:
            self.files.keep_only(set(pids))
        if self.gpu is not None:
            used = self.gpu.used_by(pids)
            if used is not None:
                self.gpu_peak = max(self.gpu_peak or 0, used)

    def peak_memory(self, maxrss: int | None = None) -> int | None:
        """Bytes: the largest of the tree's summed RSS, any one process's peak, the reaped maxrss.

        Called once, at the end: it closes the sampler's files.
        """
        self.files.close()
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
