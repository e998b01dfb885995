"""The worker's side of the Ray executor: one Ray task runs one node job under the local executor.

The task lays the node out on the worker's own disk (``<tmp>/autoresearch-ray/``), as on the
driver (``run/nodes/<id>/``, the run's top-level files, the source folder), rewrites the driver's
paths in the job's environment to the worker's, and runs the job with a :class:`LocalExecutor`,
so process groups, the sandbox, capped output, the time budget, the memory limit, the scrubbed
environment and the seed are the local executor's, unchanged. The node's folder goes back to the
driver as an archive; the worker's copy is removed.

A Ray cancel raises KeyboardInterrupt in the task: the job's whole process group is killed (the
local executor's grace, then SIGKILL) before the task returns. A task whose worker is killed
outright (driver gone, force cancel) leaves nothing either: the local executor's watchdog kills
the job's group when the worker's pipe closes.

This module is imported on the workers; it imports ray only inside functions.
"""

from __future__ import annotations

import concurrent.futures
import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Any, Mapping

from ._base import Job
from ._ray_pack import NODE_LIMIT, digest, pack, remap, unpack

_EXECUTORS: dict[tuple, Any] = {}  # one warm local executor per Ray worker process and settings


def _base_dir() -> Path:
    path = Path(tempfile.gettempdir()) / "autoresearch-ray"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _cached_folder(data: bytes | None, kind: str) -> Path | None:
    """Extract a shared archive (the source folder) once per host, read-only, by content hash."""
    if data is None:
        return None
    folder = _base_dir() / f"{kind}-{digest(data)}"
    if not (folder / ".complete").exists():
        tmp = folder.with_name(f"{folder.name}.{uuid.uuid4().hex[:8]}.tmp")
        unpack(data, tmp, read_only=True)
        (tmp / ".complete").write_text("")
        try:
            os.rename(tmp, folder)
        except OSError:  # another task on this host got there first
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _local_executor(settings: Mapping[str, Any], warm_imports: list[str], start_env: Mapping[str, str]) -> Any:
    from .local import LocalExecutor

    key = (tuple(sorted((k, repr(v)) for k, v in settings.items())), tuple(warm_imports),
           tuple(sorted(start_env.items())))
    executor = _EXECUTORS.get(key)
    if executor is None:
        for old in list(_EXECUTORS.values()):
            old.close()
        _EXECUTORS.clear()
        executor = _EXECUTORS[key] = LocalExecutor(workers=1, **settings)
        executor.start(warm_imports=warm_imports, env=dict(start_env))
    return executor


def where(gpu_ids: list[str]) -> dict[str, Any]:
    """Where this task runs: host, Ray node id, IP, GPU ids, worker pid."""
    import ray

    context = ray.get_runtime_context()
    return {
        "executor": "ray",
        "host": socket.gethostname(),
        "ip": ray.util.get_node_ip_address(),
        "ray_node_id": context.get_node_id(),
        "gpus": gpu_ids,
        "worker_pid": os.getpid(),
    }


def run_node(spec: Mapping[str, Any], node_zip: bytes, run_zip: bytes | None, source_zip: bytes | None,
             cwd_zip: bytes | None) -> dict[str, Any]:
    """The Ray task: run one job, return its result fields and its node folder as an archive."""
    import ray

    gpu_ids = [str(g) for g in ray.get_gpu_ids()] if spec["gpus_per_node"] else []
    job_root = _base_dir() / f"job-{spec['node_id']}-{uuid.uuid4().hex[:12]}"
    run_root = job_root / "run"
    workdir = run_root / "nodes" / str(spec["node_id"])
    try:
        unpack(node_zip, workdir)
        if run_zip is not None:
            unpack(run_zip, run_root)
        (workdir / spec["script_name"]).write_bytes(spec["script_bytes"])
        source = _cached_folder(source_zip, "src")
        cwd = source if spec.get("cwd_is_source") else _cached_folder(cwd_zip, "cwd")
        roots = {spec["workdir"]: str(workdir)}
        if spec.get("run_dir"):
            roots[spec["run_dir"]] = str(run_root)
        if source is not None and spec.get("source_dir"):
            roots[spec["source_dir"]] = str(source)
        if cwd is not None and spec.get("cwd"):
            roots[spec["cwd"]] = str(cwd)
        env = {k: remap(v, roots) for k, v in spec["env"].items()}
        if gpu_ids:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpu_ids)
        # the same sandbox view as on the driver: the run folder (use.pkl) and the source folder
        # read-only, the source folder's files mirrored into the node folder
        shown = tuple(Path(p) for p in (run_root, source) if p is not None)
        job = Job(node_id=spec["node_id"], script=workdir / spec["script_name"], workdir=workdir,
                  timeout=spec["timeout"], env=env, log_name=spec["log_name"], cwd=cwd, readonly=shown,
                  mirror=Path(source) if source is not None and cwd is None else None)
        executor = _local_executor(spec["local"], list(spec["warm_imports"]),
                                   {k: remap(v, roots) for k, v in spec["start_env"].items()})
        result = _wait(executor, job)
        files, left_out = pack(workdir, limit=spec.get("return_limit", NODE_LIMIT),
                               skip_names={spec["script_name"]})
        fields = {
            "exit_code": result.exit_code, "timed_out": result.timed_out, "cancelled": result.cancelled,
            "exec_time": result.exec_time, "output_tail": result.output_tail, "error": result.error,
            "warm": result.warm, "run_time": result.run_time, "peak_memory": result.peak_memory,
            "gpu_memory": result.gpu_memory, "sandboxed": result.sandboxed, "infra_error": result.infra_error,
        }  # measured on the worker by its local executor: time and memory constraints hold on Ray too
        return {"result": fields, "files": files, "left_out": left_out, "where": where(gpu_ids)}
    finally:
        shutil.rmtree(job_root, ignore_errors=True)


def _wait(executor: Any, job: Job) -> Any:
    """The job's result; a Ray cancel (KeyboardInterrupt here) kills the job's group first."""
    future = executor.submit(job=job)
    try:
        while True:
            try:
                return future.result(timeout=0.5)
            except concurrent.futures.TimeoutError:
                continue
    except KeyboardInterrupt:
        executor.cancel(node_id=job.node_id)
        while True:  # the group is being killed (grace, then SIGKILL); a second interrupt waits too
            try:
                return future.result(timeout=60)
            except KeyboardInterrupt:
                continue
