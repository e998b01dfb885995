"""Lessons across runs: run 1 writes lessons.json, run 2 (--learn-from) repeats none of its
failures and reaches its best sooner. Real CLI processes, real runs on disk."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from openai_server import server  # noqa: F401 - the fixture

from autoresearch_jupyter.core import lessons as L
from autoresearch_jupyter.store.runs import RunDir, list_runs

SCRIPT = """\
# autoresearch: freeze
NOISE = 0
# autoresearch: end
lr = 0.1
width = 2.0
if lr > 0.3:
    raise ValueError("diverged: lr too large")
score = -abs(width - 40.0) - abs(lr - 0.2)
print(f"score: {score}")
"""
STEPS = "16"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "autoresearch_jupyter", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)


def search(cwd: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    proc = cli("run", "train.py", "--metric", "score", "--maximize", "--steps", STEPS, *extra, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return proc


def newest(cwd: Path) -> tuple[RunDir, dict]:
    run = RunDir.open(list_runs(cwd / ".autoresearch")[-1].path)
    return run, json.loads((run.path / L.LESSONS_FILE).read_text())


def failed_values(run: RunDir) -> set[tuple[str, str]]:
    tree = run.load().tree
    out = set()
    for node in tree:
        if node.status.value in ("buggy", "timeout"):
            base = tree.root
            out |= {(c.key, c.new) for c in L.literal_changes(base.code, node.code) or []}
    return out


def first_reaching(run: RunDir, target: float) -> int:
    return min(n.id for n in run.load().tree if n.id and n.metric is not None and n.metric >= target)


def test_second_run_repeats_no_failure_and_reaches_the_best_in_half_the_nodes(tmp_path):
    (tmp_path / "train.py").write_text(SCRIPT)
    search(tmp_path)
    run1, lessons1 = newest(tmp_path)
    assert lessons1["lessons_version"] == L.LESSONS_VERSION
    assert lessons1["failed"] and all("diverged" in f["reason"] for f in lessons1["failed"])
    lr_key = next(k for k, d in lessons1["domains"].items() if d["name"] == "lr")
    assert lessons1["domains"][lr_key]["fails_at_or_above"] <= 1.0
    assert {v["name"] for v in lessons1["best"]["values"]} >= {"width"}  # far from the baseline's 2.0
    target = lessons1["best"]["metric"]
    reached1 = first_reaching(run1, target)

    proc = search(tmp_path, "--learn-from", run1.name)
    assert f"learning from run {run1.name}" in proc.stderr
    run2, lessons2 = newest(tmp_path)
    tree2 = run2.load().tree
    assert not [n for n in tree2 if n.status.value in ("buggy", "timeout")], "a failure of run 1 was repeated"
    domain = lessons1["domains"][lr_key]["fails_at_or_above"]
    for node in tree2:  # no lr at or beyond the value that failed, whatever the change
        for c in L.literal_changes(tree2.root.code, node.code) or []:
            if c.key == lr_key:
                assert float(c.new) < domain
    reached2 = first_reaching(run2, target)
    assert reached2 * 2 <= reached1, (reached1, reached2)
    assert lessons2["learned"]["reached_target_at"] == reached2
    assert lessons2["learned"]["from"] == [run1.id]
    assert reached2 in lessons2["learned"]["informed_nodes"]
    assert "reached the earlier best at node" in proc.stdout


def test_frozen_code_changed_uses_failures_and_domains_only(tmp_path):
    (tmp_path / "train.py").write_text(SCRIPT)
    search(tmp_path)
    run1, lessons1 = newest(tmp_path)
    (tmp_path / "train.py").write_text(SCRIPT.replace("NOISE = 0", "NOISE = 1"))
    proc = search(tmp_path, "--learn-from", "auto")
    assert "protocol differs: frozen code changed" in proc.stderr
    assert "not its metric values, best values or model priors" in proc.stderr
    run2, lessons2 = newest(tmp_path)
    tree2 = run2.load().tree
    assert "learned_from" not in tree2[1].meta  # metric-dependent lessons (best values) unused
    assert "of run" not in tree2[1].plan
    assert not failed_values(run2) & failed_values(run1)
    assert lessons2["learned"]["target"] is None and lessons2["learned"]["matching"] == []


def test_bad_references_say_what_was_used(tmp_path):
    (tmp_path / "train.py").write_text(SCRIPT)
    search(tmp_path)
    run1, _ = newest(tmp_path)
    (run1.path / L.LESSONS_FILE).write_text(json.dumps({"lessons_version": 99}))
    proc = cli("run", "train.py", "--metric", "score", "--maximize", "--steps", "2",
               "--learn-from", "nosuchrun", "--learn-from", run1.name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = [x for x in proc.stderr.splitlines() if "learn" in x]
    assert any("--learn-from nosuchrun: nothing used" in x for x in lines), proc.stderr
    assert any(f"learning from run {run1.name} (derived from its journal: its lessons.json is version 99" in x
               for x in lines), proc.stderr


def test_llm_prompt_carries_the_lessons_within_its_token_cap(tmp_path, server, monkeypatch):
    from openai_server import Reply, clear_openai_env, edit

    from autoresearch_jupyter.core.protocol import Protocol
    from autoresearch_jupyter.engine.search import Search
    from autoresearch_jupyter.proposers._memory import estimate_tokens
    from autoresearch_jupyter.proposers._prompts import KNOWN_HEADER, KNOWN_SHARE, messages_tokens
    from autoresearch_jupyter.report.lessons import LessonsWriter

    clear_openai_env(monkeypatch, "sk-test-lessons-1234")
    (tmp_path / "train.py").write_text(SCRIPT)
    search(tmp_path)
    run1, lessons1 = newest(tmp_path)
    server.default = lambda body: Reply(edit("width = 2.0", "width = 3.0", "widen"), prompt_tokens=400,
                                        completion_tokens=20)
    cap = 900
    protocol = Protocol.for_script(SCRIPT, metric="score", maximize=True, time_budget=30)
    run2 = Search(code=SCRIPT, protocol=protocol, runs_dir=tmp_path / ".autoresearch", settings={
        "steps": 2, "learn_from": [run1.id],
        "proposer": {"name": "llm", "model": "any", "base_url": server.url, "llm_retries": 1,
                     "max_prompt_tokens": cap},
        "executor": {"name": "local", "workers": 1, "warm": "off"}})
    run2.subscribe(LessonsWriter())
    outcome = run2.run()
    assert outcome.state == "finished", outcome.reason
    prompt = server.requests[0]["messages"]
    user = prompt[1]["content"]
    assert KNOWN_HEADER.strip() in user
    assert "Failed in" in user and "diverged" in user  # run 1's failures, with their reason
    assert "Best values in" in user  # the protocol matches: metric-dependent lessons too
    assert messages_tokens(prompt) <= cap
    known = KNOWN_HEADER + user.split(KNOWN_HEADER)[1].split("\n\n# ")[0]
    assert estimate_tokens(known) <= cap * KNOWN_SHARE  # the section keeps to its share of the cap
    assert outcome.tree[1].plan.startswith(f"start from the best of run {run1.name}")


def test_notebook_rerun_offers_the_lessons_and_learns_from_latest(tmp_path, monkeypatch, capsys):
    from test_magics import EXT, get_ipython

    shell = get_ipython()
    monkeypatch.chdir(tmp_path)
    manager = shell.extension_manager
    if EXT in manager.loaded:
        manager.unload_extension(EXT)
    shell.config.pop("AutoResearch", None)
    manager.load_extension(EXT)
    magics = shell.magics_manager.registry["AutoResearch"]
    magics.runs_dir, magics.view = str(tmp_path / "runs"), "text"
    try:
        line = "--metric score --maximize --steps 12"
        cell = SCRIPT.replace("width = 2.0", "width = 2.0  # search: float(1, 60)")  # a space: run 1 finds a best
        shell.run_cell_magic("autoresearch", line, cell)
        capsys.readouterr()
        shell.run_cell_magic("autoresearch", line.replace("12", "1"), cell)
        err = capsys.readouterr().err
        assert "an earlier run of this script is in the runs folder" in err
        assert "--learn-from auto" in err
        runs = list_runs(tmp_path / "runs")
        shell.run_cell_magic("autoresearch", line + f" --learn-from {runs[0].id}", cell)
        err = capsys.readouterr().err
        assert "learning from run" in err
        run3 = RunDir.open(list_runs(tmp_path / "runs")[-1].path)
        tree = run3.load().tree
        assert tree[1].meta.get("learned_from") == [runs[0].id], (tree[1].plan, tree[1].status, tree[1].reason, dict(tree[1].meta), [r.name for r in runs])
        from autoresearch_jupyter.report.views import node_record

        assert node_record(tree[1], {n.id: n for n in tree})["learned_from"] == [runs[0].id]  # the widget's records say it
        first = RunDir.open(runs[0].path).load().tree
        failed_before = {n.code_hash for n in first if n.status.value in ("buggy", "timeout")}
        assert not [n for n in tree if n.status.value in ("buggy", "timeout") and n.code_hash in failed_before]
    finally:
        for run in list(magics.runs.values()):
            run.stop()
        manager.unload_extension(EXT)


def test_changes_are_named_the_same_across_values_and_earlier_observations_replay():
    code = "x = 1\nmodel = f(alpha=0.5, max_iter=100, fit=True)\nname = 'adam'\n"
    changed = code.replace("0.5", "5.0").replace("'adam'", "'sgd'")
    changes = L.literal_changes(code, changed)
    assert [(c.name, c.old, c.new) for c in changes] == [("alpha", "0.5", "5.0"), ("name", "'adam'", "'sgd'")]
    assert L.literal_changes(code, code + "y = 2\n") is None  # not a literal change
    lessons = {"observations": [{"metric": 0.9, "values": {c.key: c.new for c in changes}}]}
    [(replayed, metric)] = L.prior_scripts([lessons], code)
    assert replayed == changed and metric == 0.9
    assert L.prior_scripts([{**lessons, "protocol_matches": False}], code) == []


def test_an_edited_script_gets_the_best_values_written_into_it(tmp_path):
    (tmp_path / "train.py").write_text(SCRIPT)
    search(tmp_path)
    run1, lessons1 = newest(tmp_path)
    edited = SCRIPT.replace("score = ", "bonus = 0\nscore = bonus + ")  # the user edited the cell
    (tmp_path / "train.py").write_text(edited)
    proc = cli("run", "train.py", "--metric", "score", "--maximize", "--steps", "2", "--learn-from", "latest",
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run2, lessons2 = newest(tmp_path)
    first = run2.load().tree[1]
    assert first.plan.startswith(f"apply the best values of run {run1.name}")
    assert first.metric == lessons1["best"]["metric"]
    assert lessons2["learned"]["reached_target_at"] == 1
