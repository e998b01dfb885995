"""Warm start: a forked job must be indistinguishable from `python train.py`, only faster."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from autoresearch_jupyter.executors.local import LocalExecutor, top_level_imports
from test_executor import STAMP, TREE, alive, make_job, wait_for

SEED_ENV = {"PYTHONHASHSEED": "123", "AUTORESEARCH_SEED": "123"}

# Prints everything that could differ between a cold and a warm run of the same script.
INTROSPECT = """
import os, sys, random, __main__
print("argv", sys.argv, "path0", sys.path[0], "file", __file__, "name", __name__)
print("main", __main__.__name__, sorted(k for k in vars(__main__) if k.startswith("__")))
print("cwd", os.getcwd(), "hash", hash("x"), hash(("a", 1)))
print("seed", os.environ["AUTORESEARCH_SEED"], "threads", os.environ["OMP_NUM_THREADS"])
print("stdout", sys.stdout.line_buffering, sys.stdout.encoding, sys.stdin.read())
"""

NUMPY_SCRIPT = INTROSPECT + """
import numpy as np
rng = np.random.default_rng(int(os.environ["AUTORESEARCH_SEED"]))
np.random.seed(int(os.environ["AUTORESEARCH_SEED"]))
x = rng.normal(size=(200, 5)) @ np.random.rand(5, 3)
print("numbers", np.round(x.sum(axis=0), 10).tolist(), np.linalg.norm(x))
print("val_acc:", float(np.abs(x).mean()))
"""


def run_both(tmp_path: Path, code: str, *, imports: list[str], **settings) -> tuple:
    """The same job cold and warm; returns both results."""
    results = []
    for i, warm in enumerate(("off", "on")):
        with LocalExecutor(warm=warm, **settings) as ex:
            ex.start(warm_imports=imports, env=SEED_ENV)
            assert ex.wait_warm(60) == (warm == "on")
            job = make_job(tmp_path / warm, code, node_id=i, env=SEED_ENV)
            results.append(ex.submit(job=job).result(timeout=60))
    return tuple(results)


def normalise(text: str) -> str:
    return text.replace("/on/node1", "/X/node").replace("/off/node0", "/X/node")


def test_warm_run_matches_cold_with_numpy(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    cold, warm = run_both(tmp_path, NUMPY_SCRIPT, imports=top_level_imports(NUMPY_SCRIPT, submodules=True))
    assert (cold.warm, warm.warm) == (False, True)
    assert cold.exit_code == warm.exit_code == 0
    assert "numbers" in cold.output_tail and "val_acc:" in cold.output_tail
    assert normalise(warm.output_tail) == normalise(cold.output_tail)


def test_warm_failures_look_like_cold_ones(tmp_path: Path) -> None:
    code = "import sys\ndef f():\n    raise KeyError('missing')\nprint('before')\nf()\n"
    cold, warm = run_both(tmp_path, code, imports=["json"])
    assert warm.warm and cold.exit_code == warm.exit_code == 1
    assert normalise(warm.output_tail) == normalise(cold.output_tail)
    assert warm.output_tail.startswith("before\nTraceback (most recent call last):\n  File ")
    code = "import sys, atexit\natexit.register(print, 'at exit')\nsys.exit(3)\n"
    cold, warm = run_both(tmp_path, code, imports=[])
    assert warm.warm and cold.exit_code == warm.exit_code == 3
    assert warm.output_tail == cold.output_tail == "at exit\n"
    cold, warm = run_both(tmp_path, "import sys\nsys.exit('a message')\n", imports=[])
    assert cold.exit_code == warm.exit_code == 1 and warm.output_tail == cold.output_tail == "a message\n"


def test_warm_job_timeout_kills_its_tree(tmp_path: Path) -> None:
    with LocalExecutor(warm="on", grace=0.5, sandbox="off") as ex:  # pids from inside: see test_sandbox.py
        ex.start(warm_imports=["json"], env=SEED_ENV)
        job = make_job(tmp_path, TREE + "while True:\n    pass\n", timeout=1.5, env=SEED_ENV)
        result = ex.submit(job=job).result(timeout=30)
        zygote = ex.warm_pid
        assert result.warm and result.timed_out and result.exit_code < 0
        pids = json.loads((job.workdir / "pids.json").read_text())
        assert [pid for pid in pids if alive(pid)] == []
        assert zygote is not None and alive(zygote)  # the zygote itself survives a job's death
    assert not alive(zygote)


def test_warm_cancel_and_close(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmpdir))  # the zygote must leave no files behind (no pymp-*)
    ex = LocalExecutor(warm="on", grace=0.5)
    ex.start(warm_imports=["json"], env=SEED_ENV)
    job = make_job(tmp_path, "import time\nprint('started', flush=True)\ntime.sleep(100)\n", env=SEED_ENV)
    future = ex.submit(job=job)
    wait_for(job.workdir / "output.log", "started")
    zygote = ex.warm_pid
    ex.cancel(node_id=0)
    assert future.result(timeout=10).cancelled and future.result().warm
    ex.close()
    assert zygote is not None and not alive(zygote)
    assert list(tmpdir.iterdir()) == []
    assert not [c for c in psutil.Process().children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE]


def test_hash_seed_change_restarts_the_zygote(tmp_path: Path) -> None:
    code = "print(hash('x'))"
    with LocalExecutor(warm="on") as ex:
        ex.start(warm_imports=[], env={"PYTHONHASHSEED": "1"})
        ex.wait_warm(30)
        first = ex.warm_pid
        other = {"PYTHONHASHSEED": "2"}
        warm = ex.submit(job=make_job(tmp_path, code, node_id=1, env=other)).result(timeout=60)
        assert warm.warm and ex.warm_pid not in (None, first)
    with LocalExecutor(warm="off") as ex:
        cold = ex.submit(job=make_job(tmp_path, code, node_id=2, env=other)).result(timeout=60)
    assert warm.output_tail == cold.output_tail


def test_memory_limit_applies_to_warm_jobs(tmp_path: Path) -> None:
    with LocalExecutor(warm="on", memory_limit="512M") as ex:
        ex.start(warm_imports=["json"])
        job = make_job(tmp_path, "buf = bytearray(4 * 2**30)\n")
        result = ex.submit(job=job).result(timeout=30)
    assert result.warm and result.exit_code == 1
    assert result.error == "memory limit of 512 MiB exceeded"


def test_dead_zygote_falls_back_to_cold(tmp_path: Path) -> None:
    with LocalExecutor(warm="on") as ex:
        ex.start(warm_imports=["json"], workspace=tmp_path)  # where jobs' folders are: no restart for them
        assert ex.wait_warm(30)
        os.kill(ex.warm_pid, signal.SIGKILL)
        time.sleep(0.1)
        result = ex.submit(job=make_job(tmp_path, "print('ok')")).result(timeout=30)
    assert result.exit_code == 0 and not result.warm and result.output_tail == "ok\n"


def test_auto_mode_stays_cold_for_cuda_imports(tmp_path: Path) -> None:
    with LocalExecutor(warm="auto") as ex:
        ex.start(warm_imports=["os", "torch"])
        assert ex.warm_pid is None and not ex.wait_warm(1)
        result = ex.submit(job=make_job(tmp_path, "print('cold')")).result(timeout=30)
    assert result.exit_code == 0 and not result.warm
    with LocalExecutor(warm="auto") as ex:
        ex.start(warm_imports=["json", "no_such_module_xyz"])
        assert ex.wait_warm(30)
        result = ex.submit(job=make_job(tmp_path, "import json\nprint('warm')", node_id=1)).result(timeout=30)
    assert result.exit_code == 0 and result.warm


def test_top_level_imports() -> None:
    code = """
import os, numpy as np
import sklearn.linear_model
from sklearn.model_selection import cross_val_score
from . import sibling
from .pkg import thing
try:
    import ujson as json
except ImportError:
    import json
if __name__ == "__main__":
    import numpy.linalg
    from collections import *

def lazy():
    import torch

class K:
    import pandas
"""
    assert top_level_imports(code) == ["os", "numpy", "sklearn", "ujson", "json", "collections"]
    assert top_level_imports(code, submodules=True) == [
        "os", "numpy", "sklearn", "sklearn.linear_model", "sklearn.model_selection",
        "sklearn.model_selection.cross_val_score", "ujson", "json", "numpy.linalg", "collections",
    ]
    assert top_level_imports("def (:") == []


def test_many_quick_warm_jobs(tmp_path: Path) -> None:
    with LocalExecutor(warm="on") as ex:
        ex.start(warm_imports=[])
        jobs = [make_job(tmp_path, "print('hi')", node_id=i) for i in range(40)]
        results = [ex.submit(job=job).result(timeout=30) for job in jobs]
    assert all(r.warm and r.exit_code == 0 and r.output_tail == "hi\n" and r.error is None for r in results)


def test_zygote_dying_during_a_job(tmp_path: Path) -> None:
    with LocalExecutor(warm="on", grace=0.5, sandbox="off") as ex:  # pids from inside: see test_sandbox.py
        ex.start(warm_imports=["json"])
        job = make_job(tmp_path, TREE + "time.sleep(100)\n")
        future = ex.submit(job=job)
        for _ in range(1000):
            if (job.workdir / "pids.json").exists():
                break
            time.sleep(0.02)
        os.kill(ex.warm_pid, signal.SIGKILL)
        result = future.result(timeout=30)
    assert result.warm and result.exit_code is None and "warm interpreter died" in result.error
    pids = json.loads((job.workdir / "pids.json").read_text())
    assert [pid for pid in pids if alive(pid)] == []


def test_two_warm_workers_run_concurrently_on_their_own_gpus(tmp_path: Path) -> None:
    with LocalExecutor(workers=2, gpus=["0", "1"], warm="on") as ex:
        ex.start(warm_imports=["json", "time"])
        jobs = [make_job(tmp_path, STAMP, node_id=i) for i in range(2)]
        results = [f.result(timeout=30) for f in [ex.submit(job=j) for j in jobs]]
    assert all(r.warm and r.exit_code == 0 for r in results)
    a, b = (json.loads((j.workdir / "stamp.json").read_text()) for j in jobs)
    assert a["start"] < b["end"] and b["start"] < a["end"]
    assert {a["gpu"], b["gpu"]} == {"0", "1"}


def test_unseeded_randomness_differs_between_warm_jobs_as_between_cold_runs(tmp_path: Path) -> None:
    pytest.importorskip("numpy")
    code = "import numpy as np, random\nprint(np.random.rand(), random.random())"
    with LocalExecutor(warm="on") as ex:
        ex.start(warm_imports=["numpy", "random"])
        outputs = [ex.submit(job=make_job(tmp_path, code, node_id=i)).result(timeout=30) for i in range(2)]
    assert all(r.warm for r in outputs)
    assert outputs[0].output_tail != outputs[1].output_tail
