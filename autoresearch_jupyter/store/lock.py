"""One writer per run: an OS lock (``flock``) on ``<run>/.lock``, held for the run's whole life.

The kernel releases it when the holder exits, however it dies, so "is this run live?" is a
question to the lock, not a guess from pids and ``/proc`` start times. A second writer (a
``resume`` of a run another process searches, a run started twice) is refused with one line.
The file also holds the holder's pid and host, only to say who holds it.
"""

from __future__ import annotations

import json
import os
import socket
import weakref
from pathlib import Path

from ..core.errors import RunActiveError, StorageError

LOCK_FILE = ".lock"

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; runs are not locked there
    fcntl = None  # type: ignore[assignment]


class RunLock:
    """The exclusive lock of one run folder; ``release`` (or garbage collection) lets it go."""

    def __init__(self, run_path: str | os.PathLike[str]) -> None:
        self.path = Path(run_path) / LOCK_FILE
        self._fd = -1
        self._finalizer: weakref.finalize | None = None

    @property
    def held(self) -> bool:
        return self._fd >= 0

    def acquire(self, what: str = "run") -> "RunLock":
        """Take the lock or raise RunActiveError naming its holder."""
        if self._fd >= 0 or fcntl is None:
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        except OSError as err:
            raise StorageError.from_os_error(err, self.path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(fd)
            os.close(fd)
            raise RunActiveError(
                f"run {self.path.parent.name} is still running in another process{holder}: one writer per "
                f"run; wait for it to end or stop it, then {what} again"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        except OSError:
            pass  # who holds it is only for messages
        self._fd = fd
        self._finalizer = weakref.finalize(self, os.close, fd)
        return self

    def release(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # closing the descriptor releases the lock
            self._finalizer = None
        self._fd = -1


def _holder(fd: int) -> str:
    try:
        info = json.loads(os.pread(fd, 4096, 0) or b"{}")
        return f" (pid {int(info['pid'])} on {info['host']})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def is_locked(run_path: str | os.PathLike[str]) -> bool | None:
    """True if a live process holds the run's lock; None when the run has no lock file (written by
    an older version) or locks are unavailable, so the caller falls back to its old guess."""
    path = Path(run_path) / LOCK_FILE
    if fcntl is None:
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock if we got it
    return False
