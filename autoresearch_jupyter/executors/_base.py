"""The executor interface: run one node script as a job, under the protocol's limits.

Call order, from the search loop's side::

    executor = LocalExecutor(workers=2, ...)   # settings only; nothing starts yet
    executor.start(warm_imports=[...])         # optional: pools, warm interpreters
    future = executor.submit(job=Job(...))     # returns at once; at most `capacity` run at a time
    result = future.result()                   # a JobResult, never an exception for script failures
    executor.cancel(node_id=...)               # kill one job's whole process group
    executor.close()                           # kill everything left, release pools; idempotent

An executor never reads the metric and never decides keep/revert: it runs, limits and captures.
"""

from __future__ import annotations

import abc
import concurrent.futures
import dataclasses
from pathlib import Path
from typing import Mapping, Sequence


@dataclasses.dataclass(frozen=True)
class Job:
    """One run of one node script."""

    node_id: int
    script: Path  # the node's train.py; the job runs `python train.py` in the working directory
    workdir: Path  # the node's own directory; output.log is written here
    timeout: float  # wall-clock seconds, enforced by the executor (the script cannot extend it)
    env: Mapping[str, str]  # AUTORESEARCH_* variables from the search, added to the scrubbed env
    log_name: str = "output.log"  # smoke runs use another name so the full run's log is kept apart
    cwd: Path | None = None  # where the script runs; None: workdir (nodes isolated from each other)
    mirror: Path | None = None  # a folder whose entries show (read-only links) in workdir: the source
    # folder, so files found next to __file__ or the working directory resolve as they do there
    readonly: tuple[Path, ...] = ()  # folders the sandbox shows read-only (the run folder: use.pkl)

    @property
    def run_in(self) -> Path:
        """The process's working directory."""
        return self.cwd if self.cwd is not None else self.workdir


@dataclasses.dataclass(frozen=True)
class JobResult:
    """What happened to a job; script failures are data here, not exceptions."""

    node_id: int
    exit_code: int | None  # None if the process never started; negative: killed by that signal
    timed_out: bool
    cancelled: bool
    exec_time: float  # wall-clock seconds from start to the end of the process group
    log_path: Path  # the captured stdout+stderr (capped: head and tail kept)
    output_tail: str  # the last few KB of the log, for the journal and error messages
    error: str | None = None  # the executor's own one-line reason (memory limit, failed to start)
    warm: bool = False  # ran in a pre-forked warm interpreter
    # Measured by the executor, never read from the script (see _usage.py); None where unknown.
    run_time: float | None = None  # seconds of the script's own run: start-up common to every job excluded
    peak_memory: int | None = None  # bytes: peak resident memory of the job's whole process tree
    gpu_memory: int | None = None  # bytes: peak GPU memory of the tree, when a GPU was assigned
    sandboxed: bool = False  # ran under bubblewrap
    infra_error: str | None = None  # this machine failed (disk full, read-only file system), not the
    # script: the search stops and the node runs again on resume


class Executor(abc.ABC):
    """Runs jobs; see the module docstring for the call order."""

    @property
    @abc.abstractmethod
    def capacity(self) -> int:
        """How many jobs may run at once (the search keeps at most this many in flight)."""

    def start(
        self, *, warm_imports: Sequence[str] = (), env: Mapping[str, str] | None = None,
        workspace: Path | None = None,
    ) -> None:
        """Prepare pools; ``warm_imports`` are the baseline's top-level modules, ``env`` the
        variables every job of the run shares (the seed), and ``workspace`` the folder that holds
        the jobs' folders (a sandboxed warm interpreter may write only there). Optional."""

    @abc.abstractmethod
    def submit(self, *, job: Job) -> "concurrent.futures.Future[JobResult]":
        """Start ``job`` (or queue it) and return at once."""

    @abc.abstractmethod
    def cancel(self, *, node_id: int) -> None:
        """Kill the job of ``node_id`` if it is running; its future resolves with cancelled=True."""

    @abc.abstractmethod
    def close(self) -> None:
        """Kill every job left and release everything; safe to call twice."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


