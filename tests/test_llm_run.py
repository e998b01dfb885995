"""Whole runs with the LLM proposer: the search and the CLI against a scripted local server."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from openai_server import server  # noqa: F401 - the fixture
from openai_server import FakeOpenAI, Reply, clear_openai_env, edit, script_of

from autoresearch_jupyter.core.node import Operator, Status
from autoresearch_jupyter.proposers import usage_totals, write_llm_summary
from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.store.runs import RunDir, list_runs
from autoresearch_jupyter.engine.search import Search

KEY = "sk-test-run-9d8e7f6a5b4c"
SCRIPT = """import os
# autoresearch: freeze
def evaluate(x):
    return float(x)
# autoresearch: end
x = 1
with open("env.txt", "w") as f:  # what a node sees of the environment, kept in the run folder
    f.write("\\n".join(f"{k}={v}" for k, v in os.environ.items()))
print(f"score: {evaluate(x)}")
"""
SUMMARY = "## What worked\n- node 4 raised x (+4).\n## What did not\n- nothing failed."


def improving():
    """A model that always raises ``x`` by a new amount (so no answer repeats an earlier script),
    and writes the end-of-run notes when asked for them."""
    counter = itertools.count(1)

    def answer(body):
        if "end-of-run notes" in body["messages"][0]["content"]:
            return Reply(SUMMARY, prompt_tokens=300, completion_tokens=30)
        value = int(re.search(r"^x = (\d+)$", script_of(body), re.MULTILINE).group(1))
        step = next(counter)
        return Reply(edit(f"x = {value}", f"x = {value + step}", f"raise x by {step}"),
                     prompt_tokens=500, completion_tokens=25)

    return answer


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    clear_openai_env(monkeypatch, KEY)


def search(tmp_path: Path, server: FakeOpenAI, steps: int = 4, **proposer) -> Search:
    protocol = Protocol.for_script(SCRIPT, metric="score", maximize=True, time_budget=30)
    settings = {"steps": steps, "goal": "make the score large",
                "proposer": {"name": "llm", "model": "any-name", "base_url": server.url, "llm_retries": 1,
                             **proposer},
                "executor": {"name": "local", "workers": 1, "warm": "off"}}
    return Search(code=SCRIPT, protocol=protocol, runs_dir=tmp_path / "runs", settings=settings)


def assert_key_absent(folder: Path) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert any(p.name == "env.txt" for p in files), "the nodes should have dumped their environment"
    for path in files:
        assert KEY.encode() not in path.read_bytes(), path


def test_search_runs_llm_nodes_and_records_usage(tmp_path, server):
    server.default = improving()
    outcome = search(tmp_path, server).run()
    assert outcome.state == "finished", outcome.reason
    tree = RunDir.open(outcome.run_dir).load().tree  # what the journal says, not memory
    nodes = [n for n in tree if n.id and n.operator is not Operator.ABLATE]  # ablation runs come after
    assert len(nodes) == 4 and all(n.status is Status.OK and n.kept for n in nodes)
    assert [n.operator for n in nodes][:3] == [Operator.DRAFT] * 3  # start broad
    assert tree.best(outcome.protocol).metric > tree[0].metric
    assert all(n.usage is not None and n.meta["llm"]["model"] == "any-name" for n in nodes)
    total = usage_totals(tree)
    assert (total.prompt_tokens, total.completion_tokens) == (500 * 4, 25 * 4) == tuple(map(sum, zip(*server.served)))
    assert "make the score large" in server.requests[0]["messages"][1]["content"]
    summary = write_llm_summary(tree, outcome.protocol, RunDir.open(outcome.run_dir).settings)
    assert summary == SUMMARY and "end-of-run notes" in server.requests[-1]["messages"][0]["content"]
    assert_key_absent(outcome.run_dir)


def test_token_budget_ends_the_run_normally(tmp_path, server):
    server.default = improving()
    outcome = search(tmp_path, server, steps=10, max_tokens=1000).run()
    assert outcome.state == "finished"
    assert outcome.reason == "token budget of 1000 spent (1,050 used)"
    assert len(outcome.tree) == 3  # the baseline and two proposals of 525 tokens


def test_endpoint_down_fails_cleanly_and_the_run_resumes(tmp_path, server):
    server.add(Reply(edit("x = 1", "x = 5", "five"), prompt_tokens=500, completion_tokens=25))
    server.default = Reply(status=503, error="overloaded")
    outcome = search(tmp_path, server).run()
    assert outcome.state == "failed"
    assert "answered 503 after 1 retry: overloaded" in outcome.reason and "autoresearch resume" in outcome.reason
    run = RunDir.open(outcome.run_dir)
    replay = run.load()
    assert [n.status for n in replay.tree] == [Status.OK, Status.OK]  # the journal is intact
    server.default = improving()
    resumed = Search.resume(run).run()
    assert resumed.state == "finished" and sum(n.operator is not Operator.ABLATE for n in resumed.tree) == 5
    assert usage_totals(resumed.tree).prompt_tokens == 500 * 4  # totals survive the resume


def cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autoresearch_jupyter", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=env, check=False)


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    return {**env, "OPENAI_API_KEY": KEY, "PYTHONWARNINGS": "ignore"}


def test_cli_run_with_the_llm_proposer(tmp_path, server):
    server.default = improving()
    (tmp_path / "score.py").write_text(SCRIPT)
    proc = cli("--debug", "run", "score.py", "--metric", "score", "--maximize", "--steps", "4", "--proposer", "llm",
               "--base-url", server.url, "--model", "any-name", "--llm-report", "--goal", "a large score",
               cwd=tmp_path, env=cli_env())
    assert proc.returncode == 0, proc.stderr
    assert f"proposer llm (model any-name at {server.url})" in " ".join(proc.stdout.split())  # wrapped to fit
    assert "## Tokens" in proc.stdout and SUMMARY in proc.stdout
    run = list_runs(tmp_path / ".autoresearch")[0]
    run_dir = RunDir.open(tmp_path / ".autoresearch" / run.id)
    assert run_dir.settings["proposer"] == {"name": "llm", "base_url": server.url, "model": "any-name",
                                            "llm_report": True}
    assert run_dir.settings["goal"] == "a large score"
    tree = run_dir.load().tree
    assert sum(bool(n.kept) for n in tree if n.id) == 4 and run.best_metric > tree[0].metric
    assert all(n.usage is not None for n in tree if n.id and n.operator is not Operator.ABLATE)
    body = server.requests[0]
    assert body["model"] == "any-name" and "tools" not in body
    assert "READ-ONLY" in body["messages"][1]["content"] and "return float(x)" in body["messages"][1]["content"]
    assert {h["authorization"] for h in server.headers} == {f"Bearer {KEY}"}
    assert KEY not in proc.stdout + proc.stderr  # debug logging included
    assert_key_absent(tmp_path / ".autoresearch")


def test_cli_endpoint_down_says_how_to_resume(tmp_path, server):
    server.default = Reply(status=500, error="boom")
    (tmp_path / "score.py").write_text(SCRIPT)
    proc = cli("run", "score.py", "--metric", "score", "--maximize", "--steps", "3", "--proposer", "llm",
               "--base-url", server.url, "--model", "m", "--llm-retries", "1", cwd=tmp_path, env=cli_env())
    run = list_runs(tmp_path / ".autoresearch")[0]
    assert proc.returncode == 1 and run.state == "failed"
    assert "answered 500 after 1 retry: boom" in proc.stderr
    assert f"continue with: autoresearch resume {run.id}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_auto_without_an_endpoint_is_mutate_and_bad_llm_flags_are_one_line(tmp_path):
    (tmp_path / "score.py").write_text(SCRIPT.replace("x = 1", "x = 1.0"))
    env = cli_env()
    del env["OPENAI_API_KEY"]
    proc = cli("run", "score.py", "--metric", "score", "--maximize", "--steps", "1", cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "proposer mutate (auto: no model endpoint configured)" in " ".join(proc.stdout.split())
    proc = cli("run", "score.py", "--metric", "score", "--maximize", "--proposer", "llm", "--max-cost", "1",
               "--model", "m", cwd=tmp_path, env=env)
    assert proc.returncode == 1 and proc.stderr.strip() == (
        "autoresearch: error: --max-cost needs --price-in and --price-out (prices per 1M tokens) to count cost")
