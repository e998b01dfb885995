"""The `autoresearch` command as a user runs it: a real process, real runs on disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoresearch_jupyter.cli import COMMANDS, build_parser
from autoresearch_jupyter.store.runs import RunDir, list_runs

ROOT = Path(__file__).resolve().parents[1]
DIGITS = ROOT / "example_notebooks" / "digits.py"


def cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "autoresearch_jupyter", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env,
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> None:
    assert proc.returncode != 0
    assert "autoresearch_jupyter/" not in proc.stderr + proc.stdout  # no traceback of ours
    first = proc.stderr.strip().splitlines()[0]
    for word in words:
        assert word in first, proc.stderr


@pytest.mark.parametrize("name", [c.replace("_", "-") for c in COMMANDS])
def test_every_command_has_help(name):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert name in sub.choices
    assert sub.choices[name].description
    with pytest.raises(SystemExit) as info:
        parser.parse_args([name, "--help"])
    assert info.value.code == 0


SCORE = """import time
x = 1.0  # search: float(0, 10)
y = 2  # search: int(0, 6)
time.sleep(0.3)
print(f"score: {-(x - 3) ** 2 - (y - 4) ** 2}")
"""


@pytest.fixture
def score_script(tmp_path: Path) -> Path:
    path = tmp_path / "score.py"
    path.write_text(SCORE)
    return path


@pytest.mark.parametrize("args,words", [
    (["run", "missing.py", "--metric", "m", "--maximize"], ["no such script", "missing.py"]),
    (["run", "score.py", "--maximize"], ["--metric"]),
    (["run", "score.py", "--metric", "score"], ["--maximize", "--minimize"]),
    (["run", "score.py", "--metric", "score", "--maximize", "--minimize"], ["not allowed"]),
    (["run", "score.py", "--metric", "score", "--maximize", "--timeout", "-1"], ["--timeout"]),
    (["run", "score.py", "--metric", "score", "--maximize", "--memory-limit", "lots"], ["lots"]),
    (["show", "nope"], ["nope"]),
    (["export", "nope", "-o", "x.py"], ["nope"]),
    (["import-aide", "nothere.json"], ["nothere.json"]),
])
def test_bad_input_is_one_clear_line(tmp_path, score_script, args, words):
    assert_one_line_error(cli(*args, cwd=tmp_path), *words)


def test_baseline_that_fails_or_prints_no_metric(tmp_path):
    (tmp_path / "bad.py").write_text("print('hi')\n1/0\n")
    (tmp_path / "quiet.py").write_text("print('accuracy is 0.9')\n")
    proc = cli("run", "bad.py", "--metric", "acc", "--maximize", cwd=tmp_path)
    assert_one_line_error(proc, "baseline failed", "ZeroDivisionError")
    assert "hi" in proc.stderr  # the output tail is shown
    proc = cli("run", "quiet.py", "--metric", "acc", "--maximize", cwd=tmp_path)
    assert_one_line_error(proc, "no metric", "acc")


def test_corrupt_journal_is_one_line(tmp_path, score_script):
    assert cli("run", "score.py", "--metric", "score", "--maximize", "--steps", "1", cwd=tmp_path).returncode == 0
    run = list_runs(tmp_path / ".autoresearch")[0]
    journal = tmp_path / ".autoresearch" / run.id / "journal.jsonl"
    lines = journal.read_text().splitlines()
    lines[1] = "{not json"
    journal.write_text("\n".join(lines) + "\n")
    assert_one_line_error(cli("show", run.id, cwd=tmp_path), "journal")


def test_run_show_tree_export_ls(tmp_path, score_script):
    proc = cli("run", "score.py", "--metric", "score", "--maximize", "--steps", "6", "--name", "demo",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert any(line.split()[:2] == ["base", "baseline"] for line in proc.stdout.splitlines() if line.strip())
    assert "finished" in proc.stdout
    listing = cli("ls", cwd=tmp_path)
    assert "demo" in listing.stdout and "finished" in listing.stdout
    shown = json.loads(cli("show", "demo", "--json", cwd=tmp_path).stdout)
    assert set(shown) == {"show_result_version", "run", "protocol", "best", "nodes"}
    assert len(shown["nodes"]) == 7 and shown["protocol"]["direction"] == "maximize"
    node_keys = {"id", "parent", "operator", "plan", "code", "diff", "status", "metric", "kept", "reason",
                 "exit_code", "exec_time", "output_tail", "created_at", "started_at", "finished_at", "usage"}
    assert node_keys <= set(shown["nodes"][1])
    best = max((n for n in shown["nodes"] if n["kept"] or n["id"] == 0), key=lambda n: n["metric"])
    assert shown["best"] == best["id"]
    tree = cli("tree", "demo", cwd=tmp_path)
    assert tree.returncode == 0 and tree.stdout.count("\n") >= 7
    node = cli("show", "demo", "--node", "1", cwd=tmp_path)
    assert node.returncode == 0 and "@@" in node.stdout  # the diff from its parent
    out = tmp_path / "best_out.py"
    assert cli("export", "demo", "-o", str(out), cwd=tmp_path).returncode == 0
    ran = subprocess.run([sys.executable, str(out)], capture_output=True, text=True, check=True)
    assert f"score: {best['metric']}" in ran.stdout.replace(".0\n", "\n") or str(best["metric"]) in ran.stdout


@pytest.mark.slow
def test_mutate_really_improves_a_weak_sklearn_baseline(tmp_path):
    pytest.importorskip("sklearn")
    proc = cli("run", str(DIGITS), "--metric", "val_acc", "--maximize", "--steps", "14", "--patience", "2",
               "--timeout", "60", "--json", cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)["data"]
    run = list_runs(tmp_path / ".autoresearch")[0]
    tree = RunDir.open(tmp_path / ".autoresearch" / run.id).load().tree
    baseline, best = tree[0].metric, run.best_metric
    assert best - baseline >= 0.05, (baseline, best)
    assert any(n.meta.get("backtrack") for n in tree), "expected at least one backtrack"
    assert report["best_metric"] == best and report["backtracks"] >= 1
    exported = tmp_path / "best.py"
    assert cli("export", run.id, "-o", str(exported), cwd=tmp_path).returncode == 0
    ran = subprocess.run([sys.executable, str(exported)], capture_output=True, text=True, cwd=tmp_path,
                         env={**os.environ, "PYTHONWARNINGS": "ignore"}, timeout=120)
    assert f"val_acc: {best:.4f}" in ran.stdout


def test_kill_9_then_resume_loses_and_reruns_nothing(tmp_path, score_script):
    runs = tmp_path / ".autoresearch"
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoresearch_jupyter", "run", "score.py", "--metric", "score", "--maximize",
         "--steps", "10", "--name", "k9"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    journal = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = list(runs.glob("*/journal.jsonl"))
        if found and found[0].read_text().count('"node_finished"') >= 4:
            journal = found[0]
            break
        time.sleep(0.05)
    assert journal is not None, "the run did not get going"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = RunDir.open(journal.parent).load()
    finished = {n.id: (n.metric, n.status) for n in before.tree if n.status.is_finished()}
    assert before.state == "interrupted"
    time.sleep(0.5)  # let the orphaned node end on its own

    resumed = cli("resume", "k9", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    after = RunDir.open(journal.parent).load()
    searched = [n for n in after.tree if n.operator.value != "ablate"]  # ablation runs come on top
    assert after.state == "finished" and len(searched) == 11
    assert all(n.status.is_finished() for n in after.tree)
    for node_id, (metric, status) in finished.items():
        assert (after.tree[node_id].metric, after.tree[node_id].status) == (metric, status)
    starts = [json.loads(l)["id"] for l in journal.read_text().splitlines() if '"node_started"' in l]
    for node_id in finished:
        assert starts.count(node_id) == 1, f"finished node {node_id} ran again"
    kept = [n for n in after.tree if n.metric is not None and (n.kept or n.id == 0)]
    assert after.tree.best(RunDir.open(journal.parent).protocol).metric == max(n.metric for n in kept)


def base_metric(proc: subprocess.CompletedProcess[str]) -> str:
    base = next(line for line in proc.stdout.splitlines() if line.lstrip().startswith("base "))
    return base.split()[3]


def test_scripts_find_their_files_as_they_are_and_the_cwd_hint_only_when_it_helps(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "helpers.py").write_text("def score(k):\n    return -abs(k - 3)\n")
    (project / "data.txt").write_text("5\n")
    (project / "train.py").write_text(
        "import os\nfrom helpers import score\nk = 1\nbonus = int(open('data.txt').read())\n"
        "here = int(open(os.path.join(os.path.dirname(__file__), 'data.txt')).read())\n"
        "print(f'acc: {score(k) + bonus + here - 5}')\n"
    )
    # Data next to the script, found through the working directory and through __file__: no --cwd needed.
    proc = cli("run", "project/train.py", "--metric", "acc", "--maximize", "--steps", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert base_metric(proc) == "3"
    assert (project / "data.txt").read_text() == "5\n" and not (project / "output.log").exists()
    # Data that only exists where the CLI was started: the hint names --cwd, and --cwd works.
    (tmp_path / "other.txt").write_text("5\n")
    (project / "train.py").write_text(
        "from helpers import score\nk = 1\nbonus = int(open('other.txt').read())\nprint(f'acc: {score(k) + bonus}')\n"
    )
    proc = cli("run", "project/train.py", "--metric", "acc", "--maximize", "--steps", "2", cwd=tmp_path)
    assert_one_line_error(proc, "FileNotFoundError", "--cwd")
    proc = cli("run", "project/train.py", "--metric", "acc", "--maximize", "--steps", "2", "--cwd", ".",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert base_metric(proc) == "3"
    # A file that exists nowhere: no --cwd hint, it would not help.
    (project / "train.py").write_text("k = 1\nopen('nowhere.txt').read()\nprint(f'acc: {k}')\n")
    proc = cli("run", "project/train.py", "--metric", "acc", "--maximize", "--steps", "2", cwd=tmp_path)
    assert proc.returncode == 1 and "FileNotFoundError" in proc.stderr and "--cwd" not in proc.stderr


def test_ctrl_c_stops_cleanly_and_says_how_to_resume(tmp_path):
    psutil = pytest.importorskip("psutil")
    (tmp_path / "slow.py").write_text("import time\nx = 1.0\ntime.sleep(0.2 if x == 1.0 else 30)\nprint(f'm: {x}')\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoresearch_jupyter", "run", "slow.py", "--metric", "m", "--maximize",
         "--name", "ctrlc"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = list((tmp_path / ".autoresearch").glob("*/nodes/1/output.log"))
        if found:
            break
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "autoresearch resume" in err and "Traceback" not in err
    run_dir = next((tmp_path / ".autoresearch").iterdir())
    replay = RunDir.open(run_dir).load()
    assert replay.state == "stopped" and replay.tree[1].status.value == "cancelled"
    leftovers = []
    for p in psutil.process_iter(["cmdline", "cwd"]):
        if "train.py" in " ".join(p.info["cmdline"] or []) and str(p.info["cwd"] or "").startswith(str(run_dir)):
            leftovers.append(p)
    assert not leftovers, "a node outlived the run"


def test_resume_refuses_a_run_another_process_is_searching(tmp_path):
    (tmp_path / "slow.py").write_text("import time\nx = 1.0\ntime.sleep(5)\nprint(f'm: {x}')\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoresearch_jupyter", "run", "slow.py", "--metric", "m", "--maximize",
         "--name", "busy"],
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not list((tmp_path / ".autoresearch").glob("*/journal.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.05)
        before = next((tmp_path / ".autoresearch").glob("*/journal.jsonl")).read_text()
        refused = cli("resume", "busy", cwd=tmp_path)
        assert_one_line_error(refused, "still running", "pid")
        assert next((tmp_path / ".autoresearch").glob("*/journal.jsonl")).read_text().startswith(before)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
