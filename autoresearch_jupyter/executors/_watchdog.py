"""Kills a dead parent's jobs, so that even ``kill -9`` of a kernel leaves no training running.

atexit and weakref.finalize cover a parent that exits; nothing inside a process covers SIGKILL.
This tiny helper reads ``+ <pgid> <tag>`` and ``- <pgid>`` lines on stdin; at end of file (the
parent closed it or died, however) it SIGKILLs every group still registered and every process
carrying a registered tag, then exits.

Run as ``python -I -S _watchdog.py`` by :class:`Watchdog`: stdlib only and no package import, so
it starts in milliseconds and does not depend on the parent's environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading

TAG_VAR = "AUTORESEARCH_JOB_TAG"  # the same name as _procs.TAG_VAR (this file imports nothing of ours)


def _kill_all(jobs: dict[int, str]) -> None:
    for pgid in jobs:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass
    needles = [f"{TAG_VAR}={tag}\0".encode() for tag in jobs.values()]
    if not needles or not os.path.isdir("/proc"):
        return
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read()
            if any(needle in env for needle in needles):
                os.kill(int(name), signal.SIGKILL)
        except OSError:
            continue


def _main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the parent is not for us
    jobs: dict[int, str] = {}
    for line in sys.stdin.buffer:
        parts = line.split()
        if len(parts) == 3 and parts[0] == b"+":
            jobs[int(parts[1])] = parts[2].decode()
        elif len(parts) == 2 and parts[0] == b"-":
            jobs.pop(int(parts[1]), None)
    _kill_all(jobs)


class Watchdog:
    """The parent's side: register each job's group while it runs; thread-safe; never raises."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._broken = False

    def _write(self, line: str) -> None:
        with self._lock:
            if self._broken:
                return
            try:
                if self._proc is None:
                    self._proc = subprocess.Popen(
                        [sys.executable, "-I", "-S", __file__], stdin=subprocess.PIPE,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                        cwd="/", close_fds=True,
                    )
                assert self._proc.stdin is not None
                self._proc.stdin.write(line.encode())
                self._proc.stdin.flush()
            except (OSError, ValueError):
                self._broken = True  # jobs are still killed by close() and atexit; only kill -9 is uncovered

    def register(self, pgid: int, tag: str) -> None:
        self._write(f"+ {pgid} {tag}\n")

    def unregister(self, pgid: int) -> None:
        self._write(f"- {pgid}\n")

    def close(self) -> None:
        """End the helper (with nothing registered it kills nothing)."""
        with self._lock:
            proc, self._proc, self._broken = self._proc, None, True
        if proc is not None and proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    _main()
