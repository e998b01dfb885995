"""LocalExecutor with real subprocesses: capture, limits, killing whole trees, secrets, scheduling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from autoresearch_jupyter.core.errors import ExecutorError
from autoresearch_jupyter.executors import Job, JobResult
from autoresearch_jupyter.executors._env import THREAD_VARS, is_secret, thread_count, thread_env
from autoresearch_jupyter.executors.local import LocalExecutor, format_size, parse_size, scrub_env


def make_job(tmp_path: Path, code: str, *, node_id: int = 0, timeout: float = 20.0, env=None) -> Job:
    workdir = tmp_path / f"node{node_id}"
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "train.py"
    script.write_text(textwrap.dedent(code))
    return Job(node_id=node_id, script=script, workdir=workdir, timeout=timeout,
               env={"AUTORESEARCH_NODE_ID": str(node_id), **(env or {})})


# The process-tree tests here record pids from inside the script and check them from outside:
# they test the killing that works without bubblewrap (sandbox="off"; a sandbox's pids are its own
# namespace's). tests/test_sandbox.py checks the same attacks under the sandbox.
NO_SANDBOX = {"sandbox": "off"}


def run(tmp_path: Path, code: str, *, timeout: float = 20.0, env=None, **settings) -> JobResult:
    settings.setdefault("warm", "off")
    settings.setdefault("sandbox", "off")
    with LocalExecutor(**settings) as ex:
        return ex.submit(job=make_job(tmp_path, code, timeout=timeout, env=env)).result(timeout=60)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def group_members(pgid: int) -> list[int]:
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                members.append(proc.pid)
        except (psutil.Error, OSError):
            continue
    return members


def wait_for(path: Path, text: str, timeout: float = 20.0) -> str:
    """Wait until a file written by a running script contains ``text``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and text in (content := path.read_text()):
            return content
        time.sleep(0.02)
    raise AssertionError(f"{text!r} never appeared in {path}")


# A script that starts three kinds of descendants, records their pids, then does `body`:
# a child in its own group, a child ignoring SIGTERM, and a daemon that double-forked into its
# own session (its parent exits, so only the job's environment tag still leads to it).
TREE = """
import os, subprocess, sys, time, signal
ignore = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(1000)"
daemon = "import os, time\\nif os.fork(): os._exit(0)\\n" \\
    "os.setsid(); open('daemon.pid', 'w').write(str(os.getpid())); time.sleep(1000)"
kids = [subprocess.Popen(["sleep", "1000"]), subprocess.Popen([sys.executable, "-c", ignore])]
subprocess.run([sys.executable, "-c", daemon])
while not os.path.exists("daemon.pid") or not open("daemon.pid").read():
    time.sleep(0.01)
pids = [os.getpid()] + [k.pid for k in kids] + [int(open("daemon.pid").read())]
open("pids.json", "w").write(__import__("json").dumps(pids))
print("started", flush=True)
"""


def test_normal_run_captures_fd_level_child_and_stderr_output(tmp_path: Path) -> None:
    result = run(tmp_path, """
        import os, subprocess, sys
        print("from print", flush=True)
        os.write(1, b"from os.write\\n")
        subprocess.run(["echo", "from a child process"])
        print("to stderr", file=sys.stderr)
        print("val_acc: 0.5")
    """)
    outcome = (result.exit_code, result.timed_out, result.cancelled, result.error, result.warm)
    assert outcome == (0, False, False, None, False)
    assert result.node_id == 0 and result.exec_time > 0
    assert result.log_path == tmp_path / "node0" / "output.log"
    for line in ("from print", "from os.write", "from a child process", "to stderr", "val_acc: 0.5"):
        assert line in result.output_tail
    assert result.log_path.read_text() == result.output_tail


def test_exit_codes_and_tracebacks(tmp_path: Path) -> None:
    assert run(tmp_path, "import sys; sys.exit(3)").exit_code == 3
    failed = run(tmp_path, "def f():\n    raise ValueError('boom')\nf()\n")
    assert failed.exit_code == 1 and failed.error is None
    assert "Traceback (most recent call last)" in failed.output_tail
    assert failed.output_tail.rstrip().endswith("ValueError: boom")


def test_timeout_kills_the_whole_tree(tmp_path: Path) -> None:
    result = run(tmp_path, TREE + "while True:\n    pass\n", timeout=2, grace=0.5)
    assert result.timed_out and not result.cancelled and result.exit_code is not None and result.exit_code < 0
    assert 2 <= result.exec_time < 10
    assert "timed out after 2 s" in result.output_tail
    pids = json.loads((tmp_path / "node0" / "pids.json").read_text())
    assert [pid for pid in pids if alive(pid)] == []
    assert group_members(pids[0]) == []


POLITE = """
polite = "import signal, sys, time\\n" \\
    "signal.signal(signal.SIGTERM, lambda *a: (open('cleaned', 'w').close(), sys.exit(0)))\\n" \\
    "open('polite', 'w').close(); time.sleep(1000)"
subprocess.Popen([sys.executable, "-c", polite])
while not os.path.exists("polite"):
    time.sleep(0.01)
"""


def test_normal_exit_stops_leftovers_holding_the_pipe(tmp_path: Path) -> None:
    started = time.monotonic()
    # The script exits at once; its children keep stdout open, one ignores SIGTERM.
    result = run(tmp_path, TREE + POLITE + "print('done')\n", grace=0.5)
    assert result.exit_code == 0 and not result.timed_out
    assert time.monotonic() - started < 10
    assert "done" in result.output_tail
    pids = json.loads((tmp_path / "node0" / "pids.json").read_text())
    assert [pid for pid in pids if alive(pid)] == []
    assert (tmp_path / "node0" / "cleaned").exists()  # SIGTERM came first: leftovers could clean up


def test_huge_output_is_capped_head_and_tail_kept(tmp_path: Path) -> None:
    me = psutil.Process()
    rss_before = me.memory_info().rss
    limit = 4 * 2**20
    result = run(tmp_path, """
        import sys
        out = sys.stdout.buffer
        out.write(b"FIRST LINE\\n")
        block = (b"x" * 1023 + b"\\n") * 1024
        for _ in range(200):
            out.write(block)
        out.write(b"LAST LINE\\n")
    """, log_limit=limit, timeout=60)
    assert result.exit_code == 0
    size = result.log_path.stat().st_size
    assert limit <= size <= limit + 512
    with open(result.log_path, "rb") as f:
        assert f.read(11) == b"FIRST LINE\n"
        f.seek(limit // 2)
        assert b"bytes of output dropped here" in f.read(300)
    assert result.output_tail.endswith("LAST LINE\n") and len(result.output_tail) <= 4096
    assert me.memory_info().rss - rss_before < 60 * 2**20  # 200 MB passed through


def test_secrets_are_scrubbed_and_job_env_and_threads_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in [("MY_API_KEY", "k"), ("OPENAI_API_KEY", "sk"), ("GITHUB_TOKEN", "g"),
                        ("AWS_ACCESS_KEY_ID", "a"), ("DB_PASSWORD", "p"), ("gh_enterprise", "e"),
                        ("DATABASE_URL", "postgres://user:hunter2@db/x"), ("HARMLESS_SETTING", "kept")]:
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("OPENBLAS_NUM_THREADS", raising=False)
    result = run(tmp_path, "import os, json; print(json.dumps(dict(os.environ)))",
                 env={"AUTORESEARCH_SEED": "7", "PYTHONHASHSEED": "7"}, workers=2)
    env = json.loads(result.output_tail)
    for name in ("MY_API_KEY", "OPENAI_API_KEY", "GITHUB_TOKEN", "AWS_ACCESS_KEY_ID", "DB_PASSWORD",
                 "gh_enterprise", "DATABASE_URL"):
        assert name not in env
    assert "hunter2" not in result.output_tail and "sk" not in env.values()
    assert env["HARMLESS_SETTING"] == "kept" and env["PATH"] == os.environ["PATH"]
    assert env["AUTORESEARCH_SEED"] == env["PYTHONHASHSEED"] == "7" and env["AUTORESEARCH_NODE_ID"] == "0"
    assert env["OMP_NUM_THREADS"] == "1"  # the user's explicit value wins
    assert env["OPENBLAS_NUM_THREADS"] == str(thread_count(2))
    assert all(name in env for name in THREAD_VARS)


def test_env_helpers() -> None:
    assert is_secret("HF_TOKEN") and is_secret("anthropic_base_url") and is_secret("SSH_AUTH_SOCK")
    assert not is_secret("PATH") and not is_secret("OPENBLAS_CORETYPE") and not is_secret("HOME")
    assert is_secret("REDIS", "redis://:pw@host:6379") and not is_secret("URL", "https://example.org/a")
    assert scrub_env({"A_SECRET": "x", "LANG": "C"}) == {"LANG": "C"}
    assert thread_count(2, cores=8) == 4 and thread_count(16, cores=8) == 1
    assert thread_env(4, parent={})["MKL_NUM_THREADS"] == str(thread_count(4))
    assert thread_env(1, parent={"OMP_NUM_THREADS": "6"})["OMP_NUM_THREADS"] == "6"
    assert set(thread_env(1, threads=3, parent={"OMP_NUM_THREADS": "6"}).values()) == {"3"}


def test_cancel_running_and_queued_jobs(tmp_path: Path) -> None:
    with LocalExecutor(workers=1, warm="off", grace=0.5, **NO_SANDBOX) as ex:
        first = make_job(tmp_path, TREE + "import time\ntime.sleep(100)\n", node_id=1)
        running = ex.submit(job=first)
        queued = ex.submit(job=make_job(tmp_path, "print('never')", node_id=2))
        wait_for(first.workdir / "output.log", "started")
        ex.cancel(node_id=2)
        assert queued.result(timeout=5).cancelled and queued.result().exit_code is None
        ex.cancel(node_id=1)
        result = running.result(timeout=20)
    assert result.cancelled and not result.timed_out
    assert "cancelled" in result.output_tail
    pids = json.loads((first.workdir / "pids.json").read_text())
    assert [pid for pid in pids if alive(pid)] == []
    assert not (tmp_path / "node2" / "output.log").exists()


def test_close_kills_running_jobs_and_is_idempotent(tmp_path: Path) -> None:
    ex = LocalExecutor(warm="off", grace=0.5, **NO_SANDBOX)
    job = make_job(tmp_path, TREE + "import time\ntime.sleep(100)\n")
    future = ex.submit(job=job)
    wait_for(job.workdir / "output.log", "started")
    ex.close()
    ex.close()
    assert future.result(timeout=1).cancelled
    pids = json.loads((job.workdir / "pids.json").read_text())
    assert [pid for pid in pids if alive(pid)] == []
    with pytest.raises(ExecutorError):
        ex.submit(job=job)


STAMP = """
import os, time
start = time.time()
time.sleep(1.0)
open("stamp.json", "w").write(__import__("json").dumps(
    {"start": start, "end": time.time(), "gpu": os.environ.get("CUDA_VISIBLE_DEVICES")}))
"""


def test_two_workers_run_concurrently_each_on_its_own_gpu(tmp_path: Path) -> None:
    with LocalExecutor(workers=2, gpus=[0, 1], warm="off") as ex:
        assert ex.capacity == 2
        jobs = [make_job(tmp_path, STAMP, node_id=i) for i in range(2)]
        results = [f.result(timeout=30) for f in [ex.submit(job=j) for j in jobs]]
    assert all(r.exit_code == 0 for r in results)
    a, b = (json.loads((j.workdir / "stamp.json").read_text()) for j in jobs)
    assert a["start"] < b["end"] and b["start"] < a["end"]  # the two runs overlapped
    assert {a["gpu"], b["gpu"]} == {"0", "1"}


def test_without_gpus_cuda_visible_devices_is_the_parents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    result = run(tmp_path, "import os; print(os.environ.get('CUDA_VISIBLE_DEVICES'))")
    assert result.output_tail.strip() == "3"


def test_memory_limit(tmp_path: Path) -> None:
    result = run(tmp_path, "buf = bytearray(4 * 2**30)\nprint('allocated')", memory_limit="256M")
    assert result.exit_code == 1 and "allocated" not in result.output_tail
    assert result.error == "memory limit of 256 MiB exceeded"
    assert "MemoryError" in result.output_tail


def test_parse_size() -> None:
    assert parse_size("2G") == 2 * 2**30 and parse_size("512m") == 512 * 2**20
    assert parse_size("1.5K") == 1536 and parse_size("10") == 10 and parse_size("3GiB") == 3 * 2**30
    assert parse_size(4096) == 4096 and format_size(2 * 2**30) == "2 GiB"
    for junk in ("abc", "", "-1G", "2X", "1 G B", "0"):
        with pytest.raises(ExecutorError) as info:
            parse_size(junk)
        assert "\n" not in str(info.value) and "size" in str(info.value)


def test_bad_settings_and_failures_to_start(tmp_path: Path) -> None:
    with pytest.raises(ExecutorError):
        LocalExecutor(workers=0)
    with pytest.raises(ExecutorError):
        LocalExecutor(warm="sometimes")
    bad_python = run(tmp_path, "print(1)", python=str(tmp_path / "no-python"))
    assert bad_python.exit_code is None and bad_python.error.startswith("failed to start")
    with LocalExecutor(warm="off") as ex:
        nowhere = tmp_path / "missing"
        missing = Job(node_id=5, script=nowhere / "train.py", workdir=nowhere, timeout=5, env={})
        result = ex.submit(job=missing).result(timeout=10)
    assert result.exit_code is None and "failed to start" in result.error


PARENT = """
import os, sys, time
from pathlib import Path
from autoresearch_jupyter.executors import Job
from autoresearch_jupyter.executors.local import LocalExecutor
workdir, how, warm = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
ex = LocalExecutor(warm=warm, grace=0.5, sandbox="off")
ex.start(warm_imports=["json"])
ex.submit(job=Job(node_id=0, script=workdir / "train.py", workdir=workdir, timeout=100, env={}))
log = workdir / "output.log"
while not (log.exists() and "started" in log.read_text()):
    time.sleep(0.01)
print(ex.warm_pid, flush=True)
if how == "kill":
    os.kill(os.getpid(), 9)
"""


@pytest.mark.parametrize("how", ["exit", "kill"])
@pytest.mark.parametrize("warm", ["off", "on"])
def test_a_parent_that_exits_or_is_killed_leaves_nothing_running(tmp_path: Path, how: str, warm: str) -> None:
    job = make_job(tmp_path, TREE + "import time\ntime.sleep(100)\n")
    proc = subprocess.run([sys.executable, "-c", PARENT, str(job.workdir), how, warm],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == (-9 if how == "kill" else 0), proc.stderr
    pids = json.loads((job.workdir / "pids.json").read_text())
    if warm == "on":
        pids.append(int(proc.stdout))
    deadline = time.monotonic() + 10
    while [pid for pid in pids if alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in pids if alive(pid)] == []


def test_without_pidfd_a_waiter_thread_sees_the_exit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "pidfd_open", raising=False)  # as on macOS or Linux before 5.3
    result = run(tmp_path, "import time; time.sleep(0.2); print('slept')")
    assert result.exit_code == 0 and result.output_tail == "slept\n"
    timed_out = run(tmp_path, "import time; time.sleep(100)", timeout=0.5, grace=0.2)
    assert timed_out.timed_out and timed_out.exit_code == -15
