"""Process plumbing for jobs: sizes, memory limits, exit watching and killing whole trees.

A job's processes are found three ways, because each alone misses some: its process group (the
script and ordinary children), its descendants while the script is alive (children that called
setsid), and a per-job tag in the environment (daemons whose parent already exited).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from typing import Iterable

from ..core.sizes import format_size, parse_size  # noqa: F401 - used and re-exported
from ._watchdog import TAG_VAR  # every process a job starts inherits it (unless it clears it)


_MEMORY_TEXT = re.compile(
    r"MemoryError|Cannot allocate memory|std::bad_alloc|out of memory|Unable to allocate"
    r"|failed to allocate|memory allocation failed",
    re.IGNORECASE,
)


def set_memory_limit(pid: int, limit: int) -> bool:
    """Cap the address space (RLIMIT_AS) of a running process; False where the OS cannot.

    prlimit(2) from the parent, right after the child's exec, and not a preexec_fn (unsafe in a
    multi-threaded kernel). Python's own start-up takes milliseconds more than this call, so the
    limit is in place before the script's first line; its children inherit it.
    """
    try:
        import resource

        hard = resource.prlimit(pid, resource.RLIMIT_AS)[1]  # Linux only
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)  # raising a hard limit needs privileges
        resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))
        return True
    except (ImportError, AttributeError, OSError, ValueError):
        return False


def memory_failure(exit_code: int | None, tail: str, limit: int | None) -> str | None:
    """Why a job failed, when the memory limit is the likely cause; None otherwise.

    Certain when the output shows an allocation failure (Python's MemoryError, C++'s bad_alloc);
    only likely when the process died of SIGSEGV or SIGKILL, which is what a failed allocation
    in C code or the kernel's OOM killer look like.
    """
    if not limit or not exit_code:
        return None
    if _MEMORY_TEXT.search(tail):
        return f"memory limit of {format_size(limit)} exceeded"
    if exit_code in (-signal.SIGSEGV, -signal.SIGKILL, -signal.SIGBUS):
        name = signal.Signals(-exit_code).name
        return f"killed by {name} (the memory limit of {format_size(limit)} may have been exceeded)"
    return None


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _process_memory(pid: int) -> int:
    """One process's proportional set size (shared pages split among their users, so forks of the
    warm interpreter are not charged its imports in full); resident size where PSS is unknown."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def tree_memory(pid: int) -> tuple[int, int]:
    """(bytes, processes) of ``pid`` and all its descendants: what ``memory_limit`` bounds."""
    pids = [pid, *(p.pid for p in descendants(pid))]
    return sum(_process_memory(p) for p in pids), len(pids)


class ExitWatch:
    """A file descriptor that becomes readable when a child exits, without reaping it.

    A pidfd on Linux; elsewhere a thread blocked in waitid(WNOWAIT) writes to a pipe. Not
    reaping lets the parent deal with what is left of the group while its id cannot be reused.
    """

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self._write_fd: int | None = None
        self._lock = threading.Lock()
        try:
            self.fd = os.pidfd_open(proc.pid)
        except (AttributeError, OSError):
            self.fd, self._write_fd = os.pipe()
            threading.Thread(target=self._wait, daemon=True, name=f"exit-watch-{proc.pid}").start()

    def _wait(self) -> None:
        try:
            os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOWAIT)
        except (ChildProcessError, OSError):
            pass
        with self._lock:  # not after close(): the fd number may belong to someone else by then
            if self._write_fd is not None:
                os.write(self._write_fd, b"x")

    def reap(self) -> int:
        return self.proc.wait()

    def close(self) -> None:
        with self._lock:
            fds, self._write_fd = (self.fd, self._write_fd), None
        for fd in fds:
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass


def _linux_stat(pid: str) -> tuple[bytes, int, int]:
    """(state, process group, start time in clock ticks) from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read()
    fields = data[data.rindex(b")") + 2 :].split()  # the command name may contain spaces
    return fields[0], int(fields[2]), int(fields[19])


def start_ticks(pid: int) -> int | None:
    """When ``pid`` started (Linux clock ticks); processes older than a job cannot belong to it."""
    try:
        return _linux_stat(str(pid))[2]
    except (OSError, ValueError, IndexError):
        return None


class JobProcesses:
    """Finds and kills everything a job started: its group, its descendants and its tagged processes."""

    def __init__(self, pgid: int, tag: str) -> None:
        self.pgid = pgid
        self.needle = f"{TAG_VAR}={tag}\0".encode()
        self.since = start_ticks(pgid)

    def find(self) -> list[int]:
        """Live processes in the job's group or carrying its tag (one pass over /proc on Linux)."""
        me = os.getpid()
        found = []
        if not sys.platform.startswith("linux"):
            return self._find_psutil(me)
        for entry in os.scandir("/proc"):
            name = entry.name
            if not name.isdigit() or int(name) == me:
                continue
            try:
                state, pgid, started = _linux_stat(name)
                if state == b"Z" or (self.since is not None and started < self.since):
                    continue
                if pgid == self.pgid:
                    found.append(int(name))
                    continue
                with open(f"/proc/{name}/environ", "rb") as f:
                    if self.needle in f.read():
                        found.append(int(name))
            except (OSError, ValueError, IndexError):
                continue
        return found

    def _find_psutil(self, me: int) -> list[int]:
        import psutil

        tag = self.needle.decode()[len(TAG_VAR) + 1 : -1]
        found = []
        for proc in psutil.process_iter():
            try:
                if proc.pid != me and proc.status() != psutil.STATUS_ZOMBIE and (
                    os.getpgid(proc.pid) == self.pgid or proc.environ().get(TAG_VAR) == tag
                ):
                    found.append(proc.pid)
            except (psutil.Error, OSError):
                continue
        return found

    def terminate(self, leader_alive: bool) -> list:
        """SIGTERM the job; returns psutil handles of what was found, for the SIGKILL that may follow.

        Descendants are collected first, while the leader still links them (children that left
        the group with setsid).
        """
        import psutil

        procs = descendants(self.pgid) if leader_alive else []
        known = {p.pid for p in procs} | {self.pgid}
        for pid in self.find():
            if pid not in known:
                try:
                    procs.append(psutil.Process(pid))
                except psutil.Error:
                    pass
        signal_group(self.pgid, signal.SIGTERM)
        signal_procs(procs, signal.SIGTERM)
        return procs

    def kill(self, procs: Iterable = ()) -> None:
        """SIGKILL the group, ``procs`` and anything still found; return once they are gone."""
        import psutil

        signal_group(self.pgid, signal.SIGKILL)
        handles = list(procs)
        for pid in self.find():
            try:
                handles.append(psutil.Process(pid))
            except psutil.Error:
                pass
        signal_procs(handles, signal.SIGKILL)
        wait_gone(handles, timeout=2.0)

    def stop_leftovers(self, grace: float) -> None:
        """After the script exited: end whatever it left running, politely first.

        A clean script leaves nothing, and this costs one pass over /proc. Leftovers get SIGTERM
        (so, say, a resource tracker can still clean up), then SIGKILL after ``grace``.
        """
        if not self.find():
            return
        procs = self.terminate(leader_alive=False)
        alive = wait_gone(procs, timeout=grace)
        if alive or self.find():
            self.kill(alive)


def descendants(pid: int) -> list:
    """psutil handles of the live descendants of ``pid`` (children that escaped with setsid too)."""
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def signal_group(pgid: int, sig: int) -> None:
    """Signal a whole process group; a group that is already gone is fine."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def signal_procs(procs: Iterable, sig: int) -> None:
    """Signal psutil handles; psutil checks each is still the same process (no pid-reuse accidents)."""
    import psutil

    for proc in procs:
        try:
            proc.send_signal(sig)
        except (psutil.Error, OSError):
            pass


def wait_gone(procs: Iterable, timeout: float) -> list:
    """Wait until none of the psutil handles is running; returns those still running.

    Zombies count as gone: they run nothing, and an init that is slow to reap them (as in some
    containers) must not make every kill wait for the full timeout.
    """
    import psutil

    pending = list(procs)
    deadline = time.monotonic() + timeout
    delay = 0.001
    while pending:
        still = []
        for proc in pending:
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    still.append(proc)
            except psutil.Error:
                pass
        pending = still
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
    return pending
