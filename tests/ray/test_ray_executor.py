"""The Ray executor against a real local cluster: the conformance suite, and what only a cluster
shows (the node's whole tree killed on the worker, fractional GPUs, a worker that dies)."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from pathlib import Path

import psutil
import pytest

from autoresearch_jupyter.core.errors import ExecutorError
from autoresearch_jupyter.executors import Job, get_executor
from autoresearch_jupyter.executors.ray import RayExecutor
from autoresearch_jupyter.testing import ExecutorConformance

from conftest import marked, wait_gone


def make_job(root: Path, node_id: int, code: str, *, timeout: float = 30.0, env: dict | None = None) -> Job:
    workdir = root / "nodes" / str(node_id)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "train.py").write_text(code)
    return Job(node_id=node_id, script=workdir / "train.py", workdir=workdir, timeout=timeout,
               env={"AUTORESEARCH_NODE_ID": str(node_id), "AUTORESEARCH_NODE_DIR": str(workdir),
                    "AUTORESEARCH_RESULT": str(workdir / "result.json"), **(env or {})})


class TestRayExecutor(ExecutorConformance):
    @pytest.fixture
    def executor(self, ray_connected):
        with RayExecutor(workers=2, address=ray_connected, warm="off", grace=0.5) as ex:
            yield ex


@pytest.fixture(scope="module")
def executor(ray_connected):
    with RayExecutor(workers=2, address=ray_connected, warm="off", grace=0.5) as ex:
        ex.start(env={"AUTORESEARCH_SEED": "7", "PYTHONHASHSEED": "7"})
        yield ex


def test_the_node_folder_travels_and_comes_back(executor, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "helper.py").write_text("VALUE = 41\n")
    (source / "data.txt").write_text("from the source folder\n")
    (tmp_path / "use.pkl").write_bytes(b"run-level file")
    (tmp_path / "run.json").write_text("{}")
    code = ("import os, json, helper\n"
            "print('data', open(os.path.join(os.environ['AUTORESEARCH_SOURCE_DIR'], 'data.txt')).read().strip())\n"
            "node = os.environ['AUTORESEARCH_NODE_DIR']\n"
            "print('use', open(os.path.join(node, '..', '..', 'use.pkl'), 'rb').read())\n"
            "print('seed', os.environ['AUTORESEARCH_SEED'], 'hash', os.environ['PYTHONHASHSEED'])\n"
            "json.dump({'score': helper.VALUE + 1}, open(os.environ['AUTORESEARCH_RESULT'], 'w'))\n"
            "os.makedirs('outputs'); open('outputs/preds.csv', 'w').write('1,2\\n')\n")
    job = make_job(tmp_path, 1, code, env={"AUTORESEARCH_SOURCE_DIR": str(source), "PYTHONPATH": str(source)})
    result = executor.submit(job=job).result(timeout=120)
    assert result.exit_code == 0, result.output_tail
    log = (job.workdir / "output.log").read_text()
    assert "data from the source folder" in log and "use b'run-level file'" in log and "seed 7 hash 7" in log
    assert json.loads((job.workdir / "result.json").read_text()) == {"score": 42}
    assert (job.workdir / "outputs" / "preds.csv").read_text() == "1,2\n"
    assert result.where["executor"] == "ray" and result.where["host"] and result.where["ray_node_id"]
    assert str(tmp_path) not in log  # the worker saw its own copies, not the driver's paths


def test_a_timeout_kills_the_nodes_whole_tree_on_the_worker(executor, tmp_path):
    tag = f"ray-tree-{uuid.uuid4().hex[:8]}"
    code = (f"import subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', '{tag}-child'])\n"
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', '{tag}-escaped'],"
            f" start_new_session=True)\n"
            f"time.sleep(300)\n")
    started = time.monotonic()
    result = executor.submit(job=make_job(tmp_path, 2, code, timeout=3)).result(timeout=120)
    assert result.timed_out and time.monotonic() - started < 60
    assert not wait_gone(tag), "a process of the timed-out node is still running"


def test_fractional_gpus_run_two_nodes_at_once_on_one_device(ray_connected, tmp_path, tmp_path_factory):
    barrier = tmp_path_factory.mktemp("barrier")  # outside the run folder: not remapped on the worker
    code = ("import json, os, time\n"
            "here = os.environ['BARRIER']\n"
            "open(os.path.join(here, os.environ['AUTORESEARCH_NODE_ID']), 'w').close()\n"
            "deadline = time.time() + 90\n"
            "while len(os.listdir(here)) < 2 and time.time() < deadline:\n"
            "    time.sleep(0.05)\n"
            "json.dump({'cvd': os.environ.get('CUDA_VISIBLE_DEVICES'), 'both': len(os.listdir(here)) == 2},"
            " open(os.environ['AUTORESEARCH_RESULT'], 'w'))\n")
    with RayExecutor(workers=2, address=ray_connected, gpus_per_node=0.5, warm="off",
                     sandbox="off") as ex:  # the two nodes meet through a barrier folder on the host
        futures = [ex.submit(job=make_job(tmp_path, i, code, timeout=120, env={"BARRIER": str(barrier)}))
                   for i in (1, 2)]
        results = [f.result(timeout=240) for f in futures]
    assert all(r.exit_code == 0 for r in results), [r.output_tail for r in results]
    seen = [json.loads((tmp_path / "nodes" / str(i) / "result.json").read_text()) for i in (1, 2)]
    assert [s["cvd"] for s in seen] == ["0", "0"] and [r.where["gpus"] for r in results] == [["0"], ["0"]]
    assert all(s["both"] for s in seen), "the two half-GPU nodes did not run at the same time"


def test_a_dead_worker_is_an_infrastructure_failure_and_leaves_nothing(executor, tmp_path):
    tag = f"ray-dead-{uuid.uuid4().hex[:8]}"
    code = (f"import subprocess, sys, time\n"
            f"subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', '{tag}'])\ntime.sleep(300)\n")
    future = executor.submit(job=make_job(tmp_path, 3, code, timeout=200))
    deadline = time.monotonic() + 60
    while not marked(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    node = marked(tag)[0]
    worker = next(p for p in node.parents() if p.name().startswith("ray::") or "default_worker" in " ".join(p.cmdline()))
    os.kill(worker.pid, signal.SIGKILL)
    result = future.result(timeout=60)
    assert result.cancelled and result.error and "infrastructure failure" in result.error
    assert not wait_gone(tag), "the node kept running after its worker died"


def test_an_impossible_request_fails_at_start_in_one_line(ray_connected):
    started = time.monotonic()
    with pytest.raises(ExecutorError) as err:
        get_executor("ray", address=ray_connected, gpus_per_node=2)
    assert "no node of the Ray cluster" in str(err.value) and "\n" not in str(err.value)
    assert time.monotonic() - started < 10
    with pytest.raises(ExecutorError, match="whole number"):
        RayExecutor(address=ray_connected, gpus_per_node=1.5)


def test_describe_says_what_the_cluster_has(executor):
    info = executor.describe()
    assert info["name"] == "ray" and info["cluster"]["CPU"] == 2 and info["cluster"]["GPU"] == 1
    assert info["workers"] == 2 and executor.capacity == 2


def test_at_most_workers_jobs_run_at_once(ray_connected, tmp_path, tmp_path_factory):
    barrier = tmp_path_factory.mktemp("capacity")
    code = ("import json, os, time\nhere = os.environ['BARRIER']\n"
            "open(os.path.join(here, os.environ['AUTORESEARCH_NODE_ID']), 'w').close()\n"
            "time.sleep(3)\njson.dump({'seen': len(os.listdir(here))}, open(os.environ['AUTORESEARCH_RESULT'], 'w'))\n")
    with RayExecutor(workers=1, address=ray_connected, warm="off",
                     sandbox="off") as ex:  # the cluster has room for 2; nodes log to a shared host file
        futures = [ex.submit(job=make_job(tmp_path, i, code, env={"BARRIER": str(barrier)})) for i in (1, 2)]
        assert all(f.result(timeout=240).exit_code == 0 for f in futures)
    seen = [json.loads((tmp_path / "nodes" / str(i) / "result.json").read_text())["seen"] for i in (1, 2)]
    assert seen == [1, 2], "the second job started while the first was running"
