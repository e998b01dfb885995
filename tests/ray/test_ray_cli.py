"""The CLI with ``--executor ray`` on a real cluster: a search, export, resume, a driver killed
with SIGKILL (no node left running, resume finishes it), and bad input as one line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from autoresearch_jupyter.core.node import Status
from autoresearch_jupyter.store.runs import list_runs, resolve_run

from conftest import free_port, marked, wait_gone

SCORE = """import os
from helper import OFFSET  # a module of the source folder: it travels with the node
x = 0.5  # search: float(0, 1)
y = 2  # search: int(1, 5)
print(f"score: {x * y + OFFSET}")
"""


def cli(*args: str, cwd: Path, env: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "autoresearch_jupyter", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess, *words: str) -> None:
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and all(w in lines[0] for w in words), lines[0]


def nodes_of(tmp_path: Path):
    run = list_runs(tmp_path / ".autoresearch")[0]
    return resolve_run(tmp_path / ".autoresearch", run.id).load()


def test_search_export_and_resume_on_ray(tmp_path, cli_env):
    (tmp_path / "score.py").write_text(SCORE)
    (tmp_path / "helper.py").write_text("OFFSET = 1.0\n")
    ran = cli("run", "score.py", "--metric", "score", "--maximize", "--steps", "4", "--workers", "2", "--no-ablate",
              "--executor", "ray", "--name", "r", "--timeout", "60", cwd=tmp_path, env=cli_env)
    assert ran.returncode == 0, ran.stderr + ran.stdout
    assert "executor ray at 127.0.0.1:" in ran.stdout and "2 CPU, 1 GPU" in ran.stdout
    replay = nodes_of(tmp_path)
    assert len(replay.tree) == 5 and replay.state == "finished"
    assert all(n.status is Status.OK and n.where["executor"] == "ray" for n in replay.tree)
    assert replay.tree[0].metric == 2.0
    shown = json.loads(cli("show", "r", "--json", cwd=tmp_path, env=cli_env).stdout)
    assert all(n["where"]["executor"] == "ray" and n["where"]["host"] for n in shown["nodes"])
    out = tmp_path / "best_out.py"
    assert cli("export", "r", "-o", str(out), cwd=tmp_path, env=cli_env).returncode == 0
    exported = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, cwd=tmp_path)
    assert f"score: {shown['nodes'][shown['best']]['metric']:g}" in exported.stdout.replace(".0\n", "\n")
    elsewhere = {k: v for k, v in cli_env.items() if k != "RAY_ADDRESS"}  # the address given on resume
    more = cli("resume", "r", "--steps", "6", "--ray-address", cli_env["RAY_ADDRESS"], cwd=tmp_path, env=elsewhere)
    assert more.returncode == 0, more.stderr
    replay = nodes_of(tmp_path)
    assert len(replay.tree) == 7 and all(n.where and n.where["executor"] == "ray" for n in replay.tree)


SLOW = """import os, subprocess, sys, time
x = 1  # search: int(1, 9)
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "{tag}"])
time.sleep(3)
child.kill()
print(f"score: {{x}}")
"""


def test_kill_9_of_the_driver_leaves_no_node_running_and_resume_finishes(tmp_path, cli_env):
    tag = f"ray-kill-{uuid.uuid4().hex[:8]}"
    (tmp_path / "slow.py").write_text(SLOW.format(tag=tag))
    driver = subprocess.Popen(
        [sys.executable, "-m", "autoresearch_jupyter", "run", "slow.py", "--metric", "score", "--maximize",
         "--steps", "4", "--workers", "2", "--executor", "ray", "--no-ablate", "--name", "k", "--timeout", "60"],
        cwd=tmp_path, env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    journal = None
    deadline = time.monotonic() + 150
    try:  # wait for the baseline to finish and a child node to be running on the worker
        while time.monotonic() < deadline:
            runs = list(tmp_path.glob(".autoresearch/*/journal.jsonl"))
            journal = runs[0] if runs else None
            text = journal.read_text() if journal else ""
            if '"event":"node_started","v":1,' in text.replace(" ", "") and '"id":1' in text and marked(tag):
                break
            time.sleep(0.2)
        assert marked(tag), "no node started on the worker"
    finally:
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    assert not wait_gone(tag, timeout=30), "a node kept running after its driver was killed"
    resumed = cli("resume", "k", cwd=tmp_path, env=cli_env)
    assert resumed.returncode == 0, resumed.stderr
    replay = nodes_of(tmp_path)
    assert replay.state == "finished" and len(replay.tree) == 5
    assert all(n.status is Status.OK and n.where["executor"] == "ray" for n in replay.tree)
    kept = [n.metric for n in replay.tree if n.kept or n.parent is None]
    assert replay.tree.best(resolve_run(tmp_path / ".autoresearch", "k").protocol).metric == max(kept)
    assert not marked(tag)


def test_bad_input_is_one_line(tmp_path, cli_env):
    (tmp_path / "score.py").write_text("print('score: 1')\n")
    args = ["run", "score.py", "--metric", "score", "--maximize", "--steps", "1", "--executor", "ray"]
    started = time.monotonic()
    nobody = cli(*args, "--ray-address", f"127.0.0.1:{free_port()}", cwd=tmp_path, env=cli_env)
    assert time.monotonic() - started < 30
    one_line_error(nobody, "nobody answers")
    one_line_error(cli(*args, "--gpus-per-node", "2", cwd=tmp_path, env=cli_env), "no node of the Ray cluster", "2 GPU")
    one_line_error(cli("run", "score.py", "--metric", "score", "--maximize", "--ray-address", "x:1",
                       cwd=tmp_path, env=cli_env), "--executor ray")
    assert not (tmp_path / ".autoresearch").exists() or not list((tmp_path / ".autoresearch").iterdir())
    no_ray = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['ray'] = None\nfrom autoresearch_jupyter.cli import main\n"
         "sys.exit(main(sys.argv[1:]))", *args], cwd=tmp_path, env=cli_env, capture_output=True, text=True)
    one_line_error(no_ray, "pip install 'autoresearch-jupyter[ray]'")


def test_the_package_does_not_import_ray(cli_env):
    code = ("import sys, autoresearch_jupyter, autoresearch_jupyter.executors as e\n"
            "from autoresearch_jupyter.engine.search import Search\ne.RayExecutor\n"
            "assert 'ray' not in sys.modules, 'ray imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, env=cli_env)


def test_max_time_cancels_the_running_nodes_on_the_worker(tmp_path, cli_env):
    tag = f"ray-maxtime-{uuid.uuid4().hex[:8]}"
    (tmp_path / "slow.py").write_text(
        "import os, subprocess, sys, time\nx = 1  # search: int(1, 9)\n"
        f"if os.environ['AUTORESEARCH_NODE_ID'] != '0':\n"
        f"    subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)', '{tag}'])\n"
        "    time.sleep(300)\nprint(f'score: {x}')\n")
    started = time.monotonic()
    ran = cli("run", "slow.py", "--metric", "score", "--maximize", "--steps", "4", "--workers", "2", "--no-ablate",
              "--executor", "ray", "--timeout", "200", "--max-time", "20", cwd=tmp_path, env=cli_env)
    assert ran.returncode == 0, ran.stderr
    assert "max time of 20 s reached" in ran.stdout and time.monotonic() - started < 150
    replay = nodes_of(tmp_path)
    assert [n.status for n in replay.tree][1:] and all(
        n.status is Status.CANCELLED for n in replay.tree if n.id > 0 and n.status is not Status.PENDING)
    assert not wait_gone(tag), "a cancelled node is still running on the worker"
