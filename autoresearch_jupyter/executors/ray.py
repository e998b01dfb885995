"""The Ray executor: each node job is one Ray task, run on a worker under the local executor.

Why Ray: it is what ML users already run (Tune, Train), it schedules by CPUs and GPUs (also
fractions) and sets ``CUDA_VISIBLE_DEVICES`` per task, so the search needs no cluster of its own.

How a node travels (no shared file system is assumed): the driver sends the node's folder and
script with the task, and puts the run's top-level files (``use.pkl``) and the source folder into
the object store once per run; the worker lays them out on its own disk, runs the job with a
:class:`LocalExecutor` (``_ray_worker.py``) and sends the node's folder back, which is unpacked
into the run directory here before the job's future resolves. ``JobResult.where`` says where it
ran (host, Ray node id, GPU ids).

Stopping: ``cancel`` interrupts the task (the worker kills the job's process group), then forces
the worker down if it does not return in time. A task lost to a dead worker or raylet comes
back as ``cancelled`` with an "infrastructure failure" error, so the search re-runs it on resume.
A driver killed outright leaves nothing running: Ray kills the workers of a dead driver, and each
worker's local executor has a watchdog that kills its job's group when the worker goes.
"""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..core.errors import ExecutorError
from ._base import Executor, Job, JobResult
from ._ray_pack import NODE_LIMIT, SKIP_DIRS, SOURCE_LIMIT, pack, unpack

__all__ = ["RayExecutor"]

logger = logging.getLogger(__name__)

RUN_SKIP = frozenset({"journal.jsonl", "best.py", "run.lock", ".lock"})  # run files nodes never read
_WAIT = 0.2  # seconds per ray.wait round of the collector thread


class _Task:
    """One submitted job on the driver's side."""

    def __init__(self, job: Job, ref: Any, future: concurrent.futures.Future) -> None:
        self.job = job
        self.ref = ref
        self.future = future
        self.cancel_at: float | None = None  # when a cancel was asked for
        self.forced = False


class _Core:
    """The driver's state; separate from the executor so a finalizer can close it."""

    def __init__(self, ray: Any, owns_ray: bool, grace: float, remote: Any, workers: int) -> None:
        self.ray = ray
        self.owns_ray = owns_ray
        self.grace = grace
        self.remote = remote
        self.workers = workers
        self.lock = threading.Lock()
        self.wake = threading.Condition(self.lock)
        self.tasks: dict[int, _Task] = {}
        self.queue: collections.deque[tuple[Job, tuple[Any, ...], concurrent.futures.Future]] = collections.deque()
        self.closed = False
        self.thread = threading.Thread(target=self.collect, name="autoresearch-ray-collector", daemon=True)
        self.thread.start()

    def submit(self, job: Job, args: tuple[Any, ...], future: concurrent.futures.Future) -> None:
        """Start the task now, or queue it while ``workers`` tasks are in flight (the contract:
        at most ``capacity`` jobs run at once, whoever submits)."""
        with self.wake:
            if self.closed:
                raise ExecutorError("the executor is closed")
            if len(self.tasks) >= self.workers:
                self.queue.append((job, args, future))
                return
            self.launch_locked(job, args, future)

    def launch_locked(self, job: Job, args: tuple[Any, ...], future: concurrent.futures.Future) -> None:
        self.tasks[job.node_id] = _Task(job, self.remote.remote(*args), future)
        self.wake.notify()

    def collect(self) -> None:
        """Resolve each future as its task ends; escalate cancels that are not honoured."""
        while True:
            with self.wake:
                while not self.tasks and not self.closed:
                    self.wake.wait()
                if not self.tasks and self.closed:
                    return
                tasks = list(self.tasks.values())
            try:
                ready, _ = self.ray.wait([t.ref for t in tasks], num_returns=1, timeout=_WAIT)
            except Exception:  # noqa: BLE001 - Ray shut down under us; fail what is left
                logger.debug("ray.wait failed", exc_info=True)
                ready = [t.ref for t in tasks]
            done = set(ready)  # object refs hash and compare by their id
            for task in tasks:
                if task.ref in done:
                    self.finish(task)
                elif task.cancel_at is not None and not task.forced and (
                    time.monotonic() - task.cancel_at > self.grace + 15.0
                ):
                    task.forced = True  # the worker did not return: kill it (its watchdog kills the job)
                    self._cancel(task, force=True)

    def finish(self, task: _Task) -> None:
        result = self.result_of(task)
        with self.lock:
            if self.tasks.get(task.job.node_id) is task:
                del self.tasks[task.job.node_id]
            while self.queue and not self.closed and len(self.tasks) < self.workers:
                self.launch_locked(*self.queue.popleft())
        if not task.future.done():
            task.future.set_result(result)

    def result_of(self, task: _Task) -> JobResult:
        job = task.job
        ray = self.ray
        try:
            out = ray.get(task.ref)
        except ray.exceptions.TaskCancelledError:
            return _result(job, cancelled=True)
        except Exception as err:  # noqa: BLE001 - worker/raylet died, object lost, our own bug
            if task.cancel_at is not None:
                return _result(job, cancelled=True)
            first = (str(err).strip().splitlines() or [""])[0][:200]
            logger.warning("node %s: infrastructure failure on Ray: %s: %s", job.node_id, type(err).__name__, first)
            return _result(job, cancelled=True,
                           error=f"infrastructure failure on Ray ({type(err).__name__}): {first}; re-run on resume")
        try:
            unpack(out["files"], Path(job.workdir))
        except (OSError, ValueError) as err:
            return _result(job, error=f"could not unpack the node's folder from the worker: {err}",
                           where=out.get("where"))
        if out.get("left_out"):
            logger.warning("node %s: files over the size limit stayed on the worker: %s", job.node_id,
                           ", ".join(out["left_out"][:5]))
        fields = dict(out["result"])
        if task.cancel_at is not None:
            fields["cancelled"] = True
        return JobResult(node_id=job.node_id, log_path=Path(job.workdir) / job.log_name,
                         where=out.get("where"), **fields)

    def cancel(self, node_id: int) -> None:
        with self.lock:
            queued = [item for item in self.queue if item[0].node_id == node_id]
            for item in queued:
                self.queue.remove(item)
            task = self.tasks.get(node_id)
            if task is not None and task.cancel_at is None:
                task.cancel_at = time.monotonic()
            else:
                task = None
        for job, _, future in queued:
            if not future.done():
                future.set_result(_result(job, cancelled=True))
        if task is not None:
            self._cancel(task, force=False)

    def _cancel(self, task: _Task, *, force: bool) -> None:
        try:
            self.ray.cancel(task.ref, force=force)
        except Exception:  # noqa: BLE001 - already finished, or Ray is going down
            logger.debug("ray.cancel failed", exc_info=True)

    def close(self) -> None:
        with self.wake:
            if self.closed:
                return
            self.closed = True
            tasks = list(self.tasks.values())
            queued = list(self.queue)
            self.queue.clear()
            self.wake.notify()
        for job, _, future in queued:
            if not future.done():
                future.set_result(_result(job, cancelled=True))
        for task in tasks:
            self.cancel(task.job.node_id)
        deadline = time.monotonic() + self.grace + 20.0
        for task in tasks:
            try:
                task.future.result(timeout=max(0.1, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                self._cancel(task, force=True)
        self.thread.join(timeout=5.0)
        for task in tasks:
            if not task.future.done():
                task.future.set_result(_result(task.job, cancelled=True))
        if self.owns_ray:
            try:
                self.ray.shutdown()
            except Exception:  # noqa: BLE001 - shutting down anyway
                logger.debug("ray.shutdown failed", exc_info=True)


def _result(job: Job, *, cancelled: bool = False, error: str | None = None,
            where: Mapping[str, Any] | None = None) -> JobResult:
    return JobResult(node_id=job.node_id, exit_code=None, timed_out=False, cancelled=cancelled, exec_time=0.0,
                     log_path=Path(job.workdir) / job.log_name, output_tail="", error=error, where=where)


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ExecutorError(f"--{name} must be a non-negative number, got {value!r}")
    return float(value)


class RayExecutor(Executor):
    """Runs node scripts as Ray tasks, each under a local executor on its worker.

    Settings (keyword-only):

    - ``workers=1``: nodes in flight; more submits wait in a queue here, not in Ray.
    - ``address=None``: ``HOST:PORT``, ``ray://HOST:PORT`` or ``auto``; None: ``RAY_ADDRESS``, else
      a cluster running on this machine, else a Ray instance started here for the run.
    - ``cpus_per_node=1``, ``gpus_per_node=0``: what each node asks Ray for (fractions allowed);
      checked against the cluster's nodes at once, so an impossible request fails here.
    - ``return_limit=256 MiB``, ``source_limit=256 MiB``: bytes of a node's folder sent back and
      of the source folder sent out (smallest files first; the rest is named in a warning).
    - everything else (``warm``, ``memory_limit``, ``grace``, ``log_limit``, ``threads``, the
      sandbox settings) goes to the :class:`LocalExecutor` that runs the job on the worker.

    It connects when built, so a bad address or request fails before a run folder exists.
    """

    name = "ray"

    def __init__(
        self,
        *,
        workers: int = 1,
        address: str | None = None,
        cpus_per_node: float = 1.0,
        gpus_per_node: float = 0.0,
        return_limit: int = NODE_LIMIT,
        source_limit: int = SOURCE_LIMIT,
        gpus: Sequence[str] | str | None = None,
        **local: Any,
    ) -> None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ExecutorError(f"workers must be a positive integer, got {workers!r}")
        self._cpus = _number("cpus-per-node", cpus_per_node)
        self._gpus = _number("gpus-per-node", gpus_per_node)
        if self._gpus > 1 and not self._gpus.is_integer():
            raise ExecutorError(f"--gpus-per-node above 1 must be a whole number, got {gpus_per_node!r}")
        if gpus:
            raise ExecutorError("--gpus picks devices on this machine; with --executor ray use --gpus-per-node")
        from .local import LocalExecutor

        LocalExecutor(workers=1, **local).close()  # the worker's settings are checked here, in one line
        self._local = dict(local)
        self._workers = workers
        self._return_limit = int(return_limit)
        self._source_limit = int(source_limit)
        from ._ray_connect import check_fits, connect, import_ray, resolve_address

        ray = import_ray()
        self._address = resolve_address(address)
        owns, context = connect(ray, self._address)
        try:
            self._totals = check_fits(ray, cpus=self._cpus, gpus=self._gpus)
        except BaseException:
            if owns:
                ray.shutdown()
            raise
        self._dashboard = getattr(context, "dashboard_url", None) or None
        from ._ray_worker import run_node

        # max_calls=0: keep workers (and their warm interpreters) across nodes; GPU tasks
        # default to a fresh worker each, which costs ~1 s per node for nothing (CUDA lives in
        # the node's own subprocess, not in the worker).
        self._remote = ray.remote(num_cpus=self._cpus, num_gpus=self._gpus, max_retries=0, max_calls=0)(run_node)
        self._ray = ray
        self._warm_imports: list[str] = []
        self._start_env: dict[str, str] = {}
        self._shared: dict[str, tuple[Any, Any]] = {}  # folder kind -> (stamp, object ref)
        self._core = _Core(ray, owns, float(local.get("grace", 2.0)), self._remote, workers)
        self._finalizer = weakref.finalize(self, self._core.close)

    # ---- Executor ------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        return self._workers

    def describe(self) -> dict[str, Any]:
        return {
            "name": "ray", "address": self._address or "local", "dashboard": self._dashboard,
            "workers": self._workers, "cpus_per_node": self._cpus, "gpus_per_node": self._gpus,
            "cluster": {k: v for k, v in self._totals.items()},
        }

    def start(self, *, warm_imports: Sequence[str] = (), env: Mapping[str, str] | None = None,
              workspace: Path | None = None) -> None:
        """Remember the warm imports and shared variables; each worker starts its warm interpreter
        (in a workspace of its own: ``workspace`` is the driver's folder, not the worker's)."""
        self._warm_imports = list(warm_imports)
        self._start_env = dict(env or {})

    def submit(self, *, job: Job) -> "concurrent.futures.Future[JobResult]":
        workdir = Path(job.workdir)
        script = Path(job.script) if Path(job.script).is_absolute() else workdir / job.script
        run_dir = workdir.parent.parent if workdir.parent.name == "nodes" else None
        source = job.env.get("AUTORESEARCH_SOURCE_DIR") or None
        cwd = str(job.cwd) if job.cwd is not None and Path(job.cwd) != workdir else None
        skip = {str(run_dir.parent)} if run_dir is not None else set()
        node_zip, _ = pack(workdir, limit=self._return_limit, skip_names={job.log_name, script.name})
        spec = {
            "node_id": job.node_id, "timeout": job.timeout, "log_name": job.log_name, "env": dict(job.env),
            "script_name": script.name, "script_bytes": script.read_bytes(), "workdir": str(workdir),
            "run_dir": str(run_dir) if run_dir is not None else None, "source_dir": source, "cwd": cwd,
            "cwd_is_source": cwd is not None and cwd == source, "gpus_per_node": self._gpus,
            "local": self._local, "warm_imports": self._warm_imports, "start_env": self._start_env,
            "return_limit": self._return_limit,
        }
        run_ref = self._shared_folder("run", run_dir, top_level_only=True) if run_dir is not None else None
        source_ref = self._shared_folder("src", Path(source), skip=skip) if source else None
        cwd_ref = self._shared_folder("cwd", Path(cwd), skip=skip) if cwd and not spec["cwd_is_source"] else None
        future: concurrent.futures.Future = concurrent.futures.Future()
        future.set_running_or_notify_cancel()
        self._core.submit(job, (spec, node_zip, run_ref, source_ref, cwd_ref), future)
        return future

    def cancel(self, *, node_id: int) -> None:
        self._core.cancel(node_id)

    def close(self) -> None:
        self._finalizer()

    def __repr__(self) -> str:
        return (f"RayExecutor(workers={self._workers}, address={self._address or 'local'!r}, "
                f"cpus_per_node={self._cpus:g}, gpus_per_node={self._gpus:g})")

    # ---- shared folders ------------------------------------------------------------------

    def _shared_folder(self, kind: str, folder: Path, *, skip: Iterable[str] = (),
                       top_level_only: bool = False) -> Any:
        """The folder's archive in the object store, put once and again only when it changed."""
        if not folder.is_dir():
            return None
        if top_level_only:
            files = [p for p in folder.iterdir() if p.is_file() and p.name not in RUN_SKIP]
            stamp: Any = tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files))
        else:
            stamp = str(folder)  # the source folder is frozen for the run: sent once
        cached = self._shared.get(kind)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        data, left_out = pack(folder, limit=self._source_limit, skip_dirs=SKIP_DIRS, skip_paths=skip,
                              skip_names=RUN_SKIP if top_level_only else (), top_level_only=top_level_only)
        if left_out:
            print(f"autoresearch: warning: {len(left_out)} file(s) of {folder} are over the "
                  f"{self._source_limit // 2**20} MiB sent to Ray workers and stay behind "
                  f"(e.g. {', '.join(left_out[-3:])})", file=sys.stderr)
        ref = self._ray.put(data)
        self._shared[kind] = (stamp, ref)
        return ref

