"""The local executor: each job is ``python train.py`` in its own process group on this machine.

What it guarantees (see ``_job.py`` for how):

- the job's whole tree dies at the time limit, on cancel and on close (SIGTERM, then SIGKILL
  after ``grace``), and whatever the script left behind dies when it exits;
- stdout and stderr are captured at the file-descriptor level into a capped log;
- children never see the parent's secrets, and get ``max(1, cores // workers)`` BLAS/OpenMP
  threads unless the user exported their own counts (an explicit ``threads=`` wins over both);
- at most ``workers`` jobs run at once, each with its own GPU when ``gpus`` is given;
- with warm start, jobs are forks of a zygote that already imported the script's modules.

Threads are daemons and all cleanup hangs off ``weakref.finalize``, so an exiting parent kills
every child it started; a parent killed outright (``kill -9`` of a kernel) is covered by a tiny
watchdog process (``_watchdog.py``) and by the zygote, which both notice their pipe closing.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import os
import sys
import tempfile
import threading
import uuid
import weakref
from pathlib import Path
from typing import Mapping, Sequence

from ..core.errors import ExecutorError, StorageError
from ._base import Executor, Job, JobResult
from ._env import scrub_env, thread_env
from ._job import RunningJob, Settings
from ._procs import TAG_VAR, format_size, parse_size
from ._usage import measure_startup
from ._mirror import mirror_folder
from ._sandbox import SandboxSettings, bwrap_argv, gpu_devices, hidden_needs, resolve
from ._watchdog import Watchdog
from ._warm import ZYGOTE_SCRIPT, Zygote, fork_unsafe, is_startup_var, preloadable, top_level_imports, zygote_key

__all__ = ["LocalExecutor", "parse_size", "format_size", "scrub_env", "top_level_imports"]

logger = logging.getLogger(__name__)

WARM_MODES = ("off", "on", "auto")
MAX_ZYGOTE_FAILURES = 3


class _Core:
    """Everything the executor owns; separate so the finalizer can close it without the executor."""

    def __init__(self, settings: Settings, workers: int, threads: int | None, gpus: list[str],
                 warm: str, start_timeout: float) -> None:
        self.settings = settings
        self.workers = workers
        self.threads = threads
        self.gpus = gpus
        self.warm = warm
        self.start_timeout = start_timeout
        self.lock = threading.Lock()
        self.queue: collections.deque[tuple[Job, concurrent.futures.Future]] = collections.deque()
        self.running: dict[int, RunningJob] = {}
        self.threads_alive: set[threading.Thread] = set()
        self.active = 0
        self.gpu_use = [0] * len(gpus)
        self.gpu_next = 0
        self.closed = False
        self.warm_imports: list[str] | None = None  # None: start() not called, no warm start
        self.workspace: str | None = None  # where the jobs' folders are (a sandboxed zygote may write there)
        self.start_env: dict[str, str] = {}
        self.zygote: Zygote | None = None
        self.old_zygotes: list[Zygote] = []
        self.zygote_failures = 0
        self.watchdog = Watchdog()
        self.startup: float | None = None  # seconds every cold job spends before its first line
        self.startup_lock = threading.Lock()

    # ---- environment ---------------------------------------------------------------------

    def base_env(self) -> dict[str, str]:
        """The scrubbed parent environment, thread counts and start() extras (no per-job variables)."""
        env = scrub_env(os.environ)
        env.update(thread_env(self.workers, threads=self.threads, parent=os.environ))
        env.update(self.start_env)
        return env

    def job_env(self, job: Job, gpu: int | None, tag: str) -> dict[str, str]:
        env = self.base_env()
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[gpu]
        env.update(job.env)
        env[TAG_VAR] = tag
        return env

    # ---- scheduling ----------------------------------------------------------------------

    def submit(self, job: Job) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self.lock:
            if self.closed:
                raise ExecutorError("the executor is closed")
            if self.active >= self.workers:
                self.queue.append((job, future))
                return future
            self.active += 1
            thread = threading.Thread(target=self.worker, args=(job, future), daemon=True,
                                      name=f"autoresearch-job-{job.node_id}")
            self.threads_alive.add(thread)
        thread.start()
        return future

    def worker(self, job: Job, future: concurrent.futures.Future) -> None:
        """A job thread: runs its job, then whatever is queued, then ends."""
        try:
            while True:
                if future.set_running_or_notify_cancel():
                    future.set_result(self.run_one(job))
                with self.lock:
                    if not self.queue or self.closed:
                        self.active -= 1
                        return
                    job, future = self.queue.popleft()
        finally:
            with self.lock:
                self.threads_alive.discard(threading.current_thread())

    def run_one(self, job: Job) -> JobResult:
        tag = uuid.uuid4().hex
        running = RunningJob(job, self.settings, tag, self.watchdog)
        with self.lock:
            if self.closed:
                running.cancel_requested = True
            self.running[job.node_id] = running
            gpu = self.take_gpu()
        running.measure_gpu = gpu is not None
        try:
            env = self.job_env(job, gpu, tag)
            if job.mirror is not None:
                note = mirror_folder(Path(job.mirror), Path(job.workdir))
                if note:
                    logger.info("job %s: %s", job.node_id, note)
            zygote = None if running.cancel_requested else self.zygote_for(env, job)
            if zygote is None and not running.cancel_requested:
                self.calibrate()
            return self.net_time(running.run(env=env, zygote=zygote))
        except OSError as err:
            if not StorageError.is_storage(err):
                raise
            return JobResult(
                node_id=job.node_id, exit_code=None, timed_out=False, cancelled=False, exec_time=0.0,
                log_path=Path(job.workdir) / job.log_name, output_tail="",
                infra_error=str(StorageError.from_os_error(err, err.filename or job.workdir)),
            )
        except Exception as err:  # a bug of ours must not look like the script's failure
            logger.exception("executor error in job %s", job.node_id)
            return JobResult(
                node_id=job.node_id, exit_code=None, timed_out=False, cancelled=False, exec_time=0.0,
                log_path=Path(job.workdir) / job.log_name, output_tail="", error=f"executor error: {err!r}",
            )
        finally:
            running.close()
            with self.lock:
                if self.running.get(job.node_id) is running:
                    del self.running[job.node_id]
                if gpu is not None:
                    self.gpu_use[gpu] -= 1

    def calibrate(self) -> None:
        """Measure the start-up cost of a cold job once, before the first cold job starts."""
        with self.startup_lock:
            if self.startup is not None:
                return
            with tempfile.TemporaryDirectory(prefix="autoresearch-startup-") as tmp:
                script = Path(tmp) / "startup.py"
                script.write_text("")

                def run_empty() -> float | None:
                    tag = uuid.uuid4().hex
                    job = Job(node_id=-1, script=script, workdir=Path(tmp), timeout=30.0, env={})
                    result = RunningJob(job, self.settings, tag, self.watchdog).run(
                        env={**self.base_env(), TAG_VAR: tag}, zygote=None)
                    return result.run_time if result.exit_code == 0 else None

                self.startup = measure_startup(run_empty)
            logger.debug("cold start-up cost: %.4f s", self.startup)

    def net_time(self, result: JobResult) -> JobResult:
        """The script's own run time: a cold job's start-up cost (the same for every job) taken off."""
        if result.run_time is None or result.warm:
            return result  # a warm child starts the clock right before the script's first line
        return dataclasses.replace(result, run_time=max(0.0, result.run_time - (self.startup or 0.0)))

    def take_gpu(self) -> int | None:
        """The least-used device, round-robin among equals (call with the lock held)."""
        n = len(self.gpus)
        if not n:
            return None
        best = min(range(n), key=lambda i: (self.gpu_use[i], (i - self.gpu_next) % n))
        self.gpu_use[best] += 1
        self.gpu_next = (best + 1) % n
        return best

    def cancel(self, node_id: int) -> None:
        with self.lock:
            running = self.running.get(node_id)
            queued = [item for item in self.queue if item[0].node_id == node_id]
            for item in queued:
                self.queue.remove(item)
        if running is not None:
            running.request_cancel()
        for job, future in queued:
            if future.set_running_or_notify_cancel():
                future.set_result(_cancelled(job))

    # ---- warm start ----------------------------------------------------------------------

    def start_warm(self, imports: Sequence[str], env: Mapping[str, str] | None, workspace: Path | None) -> None:
        if env:
            self.start_env = dict(env)
        self.workspace = os.path.realpath(workspace) if workspace is not None else None
        unsafe = fork_unsafe(imports)
        if self.warm == "off" or (self.warm == "auto" and unsafe):
            if unsafe and self.warm == "auto":
                logger.info("warm start off: %s may start CUDA or threads at import", ", ".join(unsafe))
            self.warm_imports = None
            return
        self.warm_imports = preloadable(imports)
        with self.lock:
            self.zygote_locked(self.base_env())

    def zygote_locked(self, env: Mapping[str, str], job: Job | None = None) -> Zygote | None:
        """The zygote matching ``env``, started (or restarted) if needed; call with the lock held."""
        if self.warm_imports is None or self.closed:
            return None
        sandbox = self.settings.sandbox
        needs = hidden_needs(job, env) if sandbox is not None and job is not None else []
        current = self.zygote
        if current is not None and (
            current.dead or current.imports != self.warm_imports or current.key != zygote_key(env)
            or (job is not None and not current.covers(os.path.realpath(job.workdir), needs))
        ):
            current.retire()
            self.old_zygotes = [z for z in self.old_zygotes if z.proc.poll() is None] + [current]
            current = self.zygote = None
        if current is None:
            if self.zygote_failures >= MAX_ZYGOTE_FAILURES:
                return None
            zygote_env = {k: v for k, v in self.base_env().items() if not is_startup_var(k)}
            zygote_env.update(zygote_key(env))  # the job's interpreter settings, e.g. PYTHONHASHSEED
            prefix, workspace, visible = None, None, []
            if sandbox is not None:
                workspace = self.workspace
                if job is not None and (workspace is None or not _inside(os.path.realpath(job.workdir), workspace)):
                    workspace = os.path.realpath(Path(job.workdir).parent)
                visible = [*needs, str(ZYGOTE_SCRIPT.parent)]
                if workspace is not None:
                    os.makedirs(workspace, exist_ok=True)  # bwrap binds only folders that exist
                writable = [workspace] if workspace is not None else []
                prefix = bwrap_argv(sandbox, writable=writable, readonly=visible, python=self.settings.python,
                                    chdir="/", gpus=bool(self.gpus) or bool(gpu_devices()), die_with_parent=False)
            try:
                current = self.zygote = Zygote(python=self.settings.python, env=zygote_env,
                                               imports=self.warm_imports, sandbox=prefix,
                                               workspace=workspace, visible=visible)
            except OSError as err:
                self.zygote_failures += 1
                logger.warning("warm start unavailable (%s); jobs run cold", err)
                return None
        return current

    def zygote_for(self, env: Mapping[str, str], job: Job) -> Zygote | None:
        with self.lock:
            zygote = self.zygote_locked(env, job)
        if zygote is None:
            return None
        if zygote.wait_ready(self.start_timeout):
            return zygote
        with self.lock:
            if not zygote.dead:
                zygote.dead = True
                self.zygote_failures += 1
                logger.warning("the warm interpreter is not available (imports: %s); this job runs cold",
                               ", ".join(zygote.imports) or "none")
        return None

    # ---- shutdown ------------------------------------------------------------------------

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            queued = list(self.queue)
            self.queue.clear()
            running = list(self.running.values())
            threads = list(self.threads_alive)
            zygotes = [z for z in [self.zygote, *self.old_zygotes] if z is not None]
            self.zygote = None
        for zygote in zygotes:
            if not zygote.started:  # nothing forked yet; unblock the jobs waiting for it
                zygote.kill()
        for job, future in queued:
            if future.set_running_or_notify_cancel():
                future.set_result(_cancelled(job))
        for job_run in running:
            job_run.request_cancel()
        for thread in threads:  # each kills its own job's tree, with the grace period
            if thread is not threading.current_thread():
                thread.join(self.settings.grace + 15.0)
        for zygote in zygotes:
            zygote.kill()
        self.watchdog.close()


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _cancelled(job: Job) -> JobResult:
    return JobResult(
        node_id=job.node_id, exit_code=None, timed_out=False, cancelled=True, exec_time=0.0,
        log_path=Path(job.workdir) / job.log_name, output_tail="",
    )


class LocalExecutor(Executor):
    """Runs node scripts as local subprocesses.

    Settings (all keyword-only):

    - ``workers=1``: jobs at once; more submits wait in a queue.
    - ``python=sys.executable``: the interpreter that runs ``train.py``.
    - ``grace=2.0``: seconds between SIGTERM and SIGKILL when a job is stopped.
    - ``log_limit=10 MiB``: bytes of output kept per job (head and tail); an int or "10M".
    - ``memory_limit=None``: memory cap per job, bytes or "2G": the job's whole process tree (its
      proportional resident memory, watched) and each process's address space (RLIMIT_AS).
    - ``gpus=None``: device ids (or "0,1"); each running job gets the least-used one as
      ``CUDA_VISIBLE_DEVICES``; without it the variable is left as the parent has it.
    - ``warm="auto"``: "on", "off", or "auto" (on unless an import may start CUDA or threads).
    - ``threads=None``: BLAS/OpenMP threads per job; default ``max(1, cores // workers)``.
    - ``start_timeout=120.0``: seconds to wait for the warm interpreter's imports.
    - ``sandbox="auto"``: run jobs under bubblewrap ("auto": where it works, "require", "off").
    - ``allow_paths=()``: folders passed through into the sandbox (``PATH`` read-only, ``PATH:rw``).
    - ``network=True``: False gives each job no network (its own network namespace).
    """

    def __init__(
        self,
        *,
        workers: int = 1,
        python: str | os.PathLike[str] | None = None,
        grace: float = 2.0,
        log_limit: int | str = 10 * 2**20,
        memory_limit: int | str | None = None,
        gpus: Sequence[int | str] | str | None = None,
        warm: str = "auto",
        threads: int | None = None,
        start_timeout: float = 120.0,
        sandbox: str = "auto",
        allow_paths: Sequence[str] = (),
        network: bool = True,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ExecutorError(f"workers must be a positive integer, got {workers!r}")
        if warm not in WARM_MODES:
            raise ExecutorError(f"warm must be one of {', '.join(WARM_MODES)}, got {warm!r}")
        if not (isinstance(grace, (int, float)) and grace >= 0):
            raise ExecutorError(f"grace must be a non-negative number of seconds, got {grace!r}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ExecutorError(f"threads must be a positive integer, got {threads!r}")
        limit = parse_size(log_limit)
        if limit < 4096:
            raise ExecutorError(f"log_limit must be at least 4K, got {log_limit!r}")
        memory = parse_size(memory_limit) if memory_limit is not None else None
        box = SandboxSettings.build(sandbox, allow_paths, network)
        if not network and not resolve(box.mode):
            raise ExecutorError("--no-network needs the sandbox (bubblewrap); install it or drop --no-network")
        settings = Settings(python=os.fspath(python or sys.executable), grace=float(grace),
                            log_limit=limit, memory_limit=memory, sandbox=box if resolve(box.mode) else None)
        if isinstance(gpus, str):  # "0,1", as typed on a command line
            gpus = [g.strip() for g in gpus.split(",") if g.strip()]
        gpu_ids = [str(g) for g in gpus or ()]
        self._core = _Core(settings, workers, threads, gpu_ids, warm, float(start_timeout))
        self._finalizer = weakref.finalize(self, self._core.close)

    @property
    def capacity(self) -> int:
        return self._core.workers

    @property
    def sandboxed(self) -> bool:
        """True when jobs run under bubblewrap."""
        return self._core.settings.sandbox is not None

    @property
    def memory_limit(self) -> int | None:
        return self._core.settings.memory_limit

    @property
    def warm_pid(self) -> int | None:
        """The warm interpreter's pid, or None when there is none (for tests and diagnostics)."""
        zygote = self._core.zygote
        return zygote.pid if zygote is not None and not zygote.dead else None

    def start(
        self, *, warm_imports: Sequence[str] = (), env: Mapping[str, str] | None = None,
        workspace: Path | None = None,
    ) -> None:
        """Start the warm interpreter (in the background) with ``warm_imports`` preloaded.

        ``env`` is added to every job's environment and fixed in the warm interpreter at start;
        pass ``PYTHONHASHSEED`` here. A job whose interpreter settings differ restarts it. Under
        the sandbox, ``workspace`` is the folder holding the jobs' folders; a job outside it
        restarts the warm interpreter around its own folder's parent.
        """
        self._core.start_warm(list(warm_imports), env, workspace)

    def wait_warm(self, timeout: float | None = None) -> bool:
        """Block until the warm interpreter is ready; False if warm start is off or failed."""
        zygote = self._core.zygote
        return zygote is not None and zygote.wait_ready(timeout)

    def submit(self, *, job: Job) -> "concurrent.futures.Future[JobResult]":
        return self._core.submit(job)

    def cancel(self, *, node_id: int) -> None:
        self._core.cancel(node_id)

    def close(self) -> None:
        self._finalizer()

    def __repr__(self) -> str:
        core = self._core
        memory = format_size(core.settings.memory_limit) if core.settings.memory_limit else None
        return f"LocalExecutor(workers={core.workers}, warm={core.warm!r}, memory_limit={memory!r})"
