"""The sandbox itself: what a node sees (cold and warm), and what happens where bubblewrap is missing."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from sandboxing import cli, one_line_error, sandbox  # noqa: F401 - the fixture

from autoresearch_jupyter.core.errors import ExecutorError
from autoresearch_jupyter.executors import Job
from autoresearch_jupyter.executors._sandbox import SandboxSettings, exit_code
from autoresearch_jupyter.executors.local import LocalExecutor

LOOK = """import json, os, sys
pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
home = os.path.expanduser("~")
out = {"pids": pids, "me": os.getpid(), "self": int(os.readlink("/proc/self")), "home": sorted(os.listdir(home)),
       "uid": os.getuid()}
try:
    open(os.path.join(sys.argv[1] if len(sys.argv) > 1 else "..", "..", "sibling.txt"), "w").write("x")
    out["wrote_parent"] = True
except OSError:
    out["wrote_parent"] = False
open("look.json", "w").write(json.dumps(out))
print("m: 1")
"""


def job(tmp_path: Path, node_id: int, code: str, timeout: float = 30) -> Job:
    workdir = tmp_path / "nodes" / str(node_id)
    workdir.mkdir(parents=True)
    (workdir / "train.py").write_text(code)
    return Job(node_id=node_id, script=workdir / "train.py", workdir=workdir, timeout=timeout, env={})


@pytest.mark.parametrize("warm", ["off", "on"])
def test_a_node_sees_only_its_own_processes_and_an_empty_home(tmp_path: Path, sandbox: None, warm: str) -> None:
    with LocalExecutor(warm=warm) as ex:
        assert ex.sandboxed
        ex.start(warm_imports=["json"], workspace=tmp_path / "nodes")
        results = [ex.submit(job=job(tmp_path, i, LOOK)).result(timeout=60) for i in range(2)]
    for i, result in enumerate(results):
        assert result.exit_code == 0 and result.sandboxed and result.warm == (warm == "on"), result
        look = json.loads((tmp_path / "nodes" / str(i) / "look.json").read_text())
        assert look["me"] == look["self"]  # /proc agrees with os.getpid()
        assert os.getpid() not in look["pids"] or len(look["pids"]) <= 4
        assert len(look["pids"]) <= (4 if warm == "on" else 2)  # bwrap's init and the node (warm: zygote, monitor)
        assert not any(name in look["home"] for name in (".ssh", ".aws", ".netrc", ".bash_history"))
        assert look["uid"] == os.getuid()
    assert not (tmp_path / "sibling.txt").exists()


def test_warm_nodes_cannot_write_each_others_folders(tmp_path: Path, sandbox: None) -> None:
    code = """import os, time
mine = os.path.basename(os.getcwd())
other = "1" if mine == "0" else "0"
time.sleep(0.3)
try:
    open(os.path.join("..", other, "from-" + mine), "w").write("x")
    print("m: 0")
except OSError:
    print("m: 1")
"""
    with LocalExecutor(warm="on", workers=2) as ex:
        ex.start(warm_imports=["os"], workspace=tmp_path / "nodes")
        futures = [ex.submit(job=job(tmp_path, i, code)) for i in range(2)]
        results = [f.result(timeout=60) for f in futures]
    assert all(r.warm and r.exit_code == 0 and "m: 1" in r.output_tail for r in results), results
    assert not list((tmp_path / "nodes").rglob("from-*"))


def test_a_warm_job_killed_at_its_time_limit_leaves_nothing(tmp_path: Path, sandbox: None) -> None:
    code = """import os, time
if os.fork() == 0:
    os.setsid()
    while True:
        open("beat", "a").write("x"); time.sleep(0.05)
while True:
    time.sleep(1)
"""
    with LocalExecutor(warm="on", grace=0.3) as ex:
        ex.start(warm_imports=["os"], workspace=tmp_path / "nodes")
        result = ex.submit(job=job(tmp_path, 0, code, timeout=1.0)).result(timeout=30)
        assert result.timed_out and result.warm
        beat = tmp_path / "nodes" / "0" / "beat"
        size = beat.stat().st_size
        time.sleep(0.5)
        assert beat.stat().st_size == size


def test_bwrap_exit_codes_read_like_subprocess_ones() -> None:
    assert exit_code(137) == -9 and exit_code(143) == -15 and exit_code(3) == 3 and exit_code(None) is None


def test_allow_path_settings(tmp_path: Path) -> None:
    box = SandboxSettings.build("auto", [str(tmp_path), f"{tmp_path}:rw"])
    assert box.allow == ((str(tmp_path.resolve()), False), (str(tmp_path.resolve()), True))
    with pytest.raises(ExecutorError, match="--allow-path .*no such"):
        SandboxSettings.build("auto", [str(tmp_path / "missing")])
    with pytest.raises(ExecutorError, match="--sandbox must be one of"):
        SandboxSettings.build("sometimes")


def test_allow_path_passes_a_folder_through(tmp_path: Path, sandbox: None, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    (home / "data" / "x.csv").write_text("42\n")
    (home / ".netrc").write_text("secret")
    monkeypatch.setenv("HOME", str(home))
    code = f"print('m:', open({str(home / 'data' / 'x.csv')!r}).read().strip())\n"
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "train.py").write_text(code)
    proc = cli("run", "project/train.py", "--metric", "m", "--maximize", "--steps", "0", "--runs-dir", str(tmp_path / "runs"),
               cwd=tmp_path, env={"HOME": str(home)})
    assert proc.returncode == 1 and "No such file" in proc.stderr  # home is empty in the sandbox
    proc = cli("run", "project/train.py", "--metric", "m", "--maximize", "--steps", "0", "--runs-dir", str(tmp_path / "runs"),
               "--allow-path", str(home / "data"), cwd=tmp_path, env={"HOME": str(home)})
    assert proc.returncode == 0 and "baseline m: 42\n" in proc.stdout, proc.stderr


def test_without_bubblewrap_auto_says_it_once_and_require_refuses(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('m: 1')\n")
    env = {"PATH": str(tmp_path / "empty-path")}  # no bwrap on it
    args = ("run", "train.py", "--metric", "m", "--maximize", "--steps", "1", "--runs-dir", str(tmp_path / "runs"))
    proc = cli(*args, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "bubblewrap" in line]
    assert len(warnings) == 1 and "not installed" in warnings[0] and "apt-get install bubblewrap" in warnings[0]
    refused = cli(*args, "--sandbox", "require", cwd=tmp_path, env=env)
    one_line_error(refused, "--sandbox require", "bubblewrap")
    refused = cli(*args, "--no-network", cwd=tmp_path, env=env)
    one_line_error(refused, "--no-network", "sandbox")
    quiet = cli(*args, "--sandbox", "off", cwd=tmp_path, env=env)
    assert quiet.returncode == 0 and "bubblewrap" not in quiet.stderr


def test_require_mode_runs_where_bubblewrap_works(tmp_path: Path, sandbox: None) -> None:
    (tmp_path / "train.py").write_text("import os\nprint('m:', len([p for p in os.listdir('/proc') if p.isdigit()]))\n")
    proc = cli("run", "train.py", "--metric", "m", "--maximize", "--steps", "0", "--sandbox", "require",
               "--warm", "off", "--runs-dir", str(tmp_path / "runs"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "baseline m: 2\n" in proc.stdout  # bwrap's init and the node itself
