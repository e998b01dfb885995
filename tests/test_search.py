"""The search loop end to end with real subprocesses: outcomes, rejections, stop, smoke."""

from __future__ import annotations

import json
import threading
import time

import pytest

from autoresearch_jupyter.report.bestfile import BestScriptWriter
from autoresearch_jupyter import Protocol, Search
from autoresearch_jupyter.core.errors import BaselineError
from autoresearch_jupyter.core.node import Operator, Status
from autoresearch_jupyter.store.runs import RunDir

BASE = """import os
# autoresearch: freeze
SEED = int(os.environ["AUTORESEARCH_SEED"])
# autoresearch: end
x = 1
print("leak:", os.environ.get("OPENAI_API_KEY", "absent"), os.environ.get("MY_SECRET_TOKEN", "absent"))
print(f"score: {x}")
"""


def variant(body: str) -> str:
    return BASE.replace("x = 1\n", body + "\n")


SMOKE_BASE = BASE.replace("x = 1\n", "x = 1\nquick = os.environ.get('AUTORESEARCH_SMOKE')  # reads the smoke flag\n")


def make_search(tmp_path, proposer, code=BASE, steps=20, **settings):
    protocol = Protocol.for_script(code, metric="score", maximize=True, time_budget=3, seed=5)
    return Search(
        code=code, protocol=protocol, runs_dir=tmp_path / "runs", proposer=proposer,
        settings={"steps": steps, "executor": {"name": "local", "workers": 1, "warm": "off"}, **settings},
    )


def test_every_kind_of_node_outcome(tmp_path, scripted, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv("MY_SECRET_TOKEN", "hunter2")
    proposer = scripted([
        ("better", variant("x = 3")),
        ("worse", variant("x = 2")),
        ("frozen edit", BASE.replace('"AUTORESEARCH_SEED"', '"OTHER"')),
        ("duplicate", variant("x = 2  # same code as a sibling, other comment")),
        ("syntax", variant("x = (")),
        ("exit 3", variant("import sys; sys.exit(3)")),
        ("raises", variant("raise ValueError('bad shape')")),
        ("nan", variant("x = float('nan')")),
        ("no metric", BASE.replace('print(f"score: {x}")', 'print("done")')),
        ("loop", variant("while True: pass")),
    ])
    search = make_search(tmp_path, proposer)
    search.subscribe(BestScriptWriter())  # the faces subscribe it; the engine writes no reports
    outcome = search.run()
    nodes = {n.plan: n for n in outcome.tree}
    assert outcome.state == "finished"
    assert nodes["better"].status is Status.OK and nodes["better"].kept and nodes["better"].metric == 3
    assert nodes["worse"].status is Status.OK and nodes["worse"].kept is False
    assert outcome.best.plan == "better"
    for plan, words in [("frozen edit", "frozen"), ("duplicate", "duplicate"), ("syntax", "line")]:
        assert nodes[plan].status is Status.REJECTED, plan
        assert words in nodes[plan].reason.lower(), nodes[plan].reason
        # rejected proposals never run
        assert not (outcome.run_dir / "nodes" / str(nodes[plan].id) / "output.log").exists()
    assert nodes["exit 3"].status is Status.BUGGY and nodes["exit 3"].exit_code == 3
    assert nodes["raises"].status is Status.BUGGY and "ValueError: bad shape" in nodes["raises"].reason
    assert "Traceback" in nodes["raises"].output_tail
    assert nodes["nan"].status is Status.BUGGY and "not finite" in nodes["nan"].reason
    assert nodes["no metric"].status is Status.BUGGY and "no metric" in nodes["no metric"].reason
    assert nodes["loop"].status is Status.TIMEOUT and "timed out after 3 s" in nodes["loop"].reason
    # secrets never reach node scripts
    log = (outcome.run_dir / "nodes" / "0" / "output.log").read_text()
    assert "leak: absent absent" in log
    # the proposer was told about every node that ran, after it finished
    assert set(proposer.told) >= {nodes["better"].id, nodes["loop"].id}
    # the journal on disk says the same as the tree in memory
    replay = RunDir.open(outcome.run_dir).load()
    assert {n.id: n.status for n in replay.tree} == {n.id: n.status for n in outcome.tree}
    assert replay.state == "finished"
    assert (outcome.run_dir / "best.py").read_text().count("x = 3") == 1


def test_seed_only_change_is_rejected(tmp_path, scripted):
    code = BASE.replace("x = 1", "x = 1\nrandom_state = 0")
    proposer = scripted([("reseed", code.replace("random_state = 0", "random_state = 1"))])
    outcome = make_search(tmp_path, proposer, code=code).run()
    node = outcome.tree[1]
    assert node.status is Status.REJECTED and "seed" in node.reason


def test_a_failing_baseline_stops_the_run_with_its_output(tmp_path, scripted):
    code = "print('loading')\nraise RuntimeError('no data file')\n"
    with pytest.raises(BaselineError) as info:
        make_search(tmp_path, scripted([]), code=code).run()
    message = str(info.value)
    assert "baseline failed: RuntimeError: no data file" in message and "loading" in message


def test_a_baseline_error_names_the_setting_and_the_faces_name_the_option(tmp_path, scripted, monkeypatch):
    from autoresearch_jupyter.core.errors import with_options

    code = "print(open('data.txt').read())\n"
    with pytest.raises(BaselineError) as info:  # a file that exists nowhere: running elsewhere would not help
        make_search(tmp_path / "a", scripted([]), code=code).run()
    assert info.value.settings == () and "see --cwd" not in with_options(info.value)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.txt").write_text("here\n")  # where the run started: the hint names the setting
    with pytest.raises(BaselineError) as info:
        make_search(tmp_path / "b", scripted([]), code=code).run()
    err = info.value
    assert err.settings == ("cwd",) and "--" not in str(err).splitlines()[0]  # the engine names no flag
    first = with_options(err).splitlines()[0]
    assert "FileNotFoundError" in first and first.endswith("(see --cwd)")
    assert with_options(err).splitlines()[1:] == str(err).splitlines()[1:]


def test_a_baseline_without_metric_stops_the_run(tmp_path, scripted):
    with pytest.raises(BaselineError, match="no metric"):
        make_search(tmp_path, scripted([]), code="print('accuracy 0.9')\n").run()


def test_stop_cancels_the_running_node_and_keeps_the_journal(tmp_path, scripted):
    search = make_search(tmp_path, scripted([("slow", variant("import time; time.sleep(30)"))]))
    timer = threading.Timer(1.5, search.stop)
    timer.start()
    started = time.monotonic()
    outcome = search.run()
    assert time.monotonic() - started < 10
    assert outcome.state == "stopped"
    assert outcome.tree[1].status is Status.CANCELLED
    assert RunDir.open(outcome.run_dir).load().state == "stopped"


def test_smoke_runs_first_and_a_smoke_failure_never_runs_fully(tmp_path, scripted):
    smoke_fails = variant("x = 4\nimport os\nif os.environ.get('AUTORESEARCH_SMOKE'): raise SystemExit(7)")
    smoke_passes = variant("x = 5\nimport os\nprint('smoke' if os.environ.get('AUTORESEARCH_SMOKE') else 'full')")
    search = make_search(
        tmp_path, scripted([("fails", smoke_fails), ("passes", smoke_passes)]), code=SMOKE_BASE, smoke=True
    )
    outcome = search.run()
    failed, passed = outcome.tree[1], outcome.tree[2]
    assert failed.status is Status.BUGGY and failed.reason.startswith("smoke run:")
    assert not (outcome.run_dir / "nodes" / "1" / "output.log").exists()
    assert passed.status is Status.OK and passed.metric == 5
    assert "smoke" in (outcome.run_dir / "nodes" / "2" / "smoke.log").read_text()
    assert "full" in (outcome.run_dir / "nodes" / "2" / "output.log").read_text()


def test_events_come_in_order_and_match_the_journal(tmp_path, scripted):
    from autoresearch_jupyter.engine.callbacks import Callback

    events = []

    class Recorder(Callback):
        def on_node_created(self, *, node, **info):
            events.append(("created", node.id))

        def on_node_started(self, *, node, **info):
            events.append(("started", node.id))

        def on_node_finished(self, *, node, **info):
            events.append(("finished", node.id, node.status.value))

        def on_best_changed(self, *, node, previous, **info):
            events.append(("best", node.id))

        def on_run_finished(self, *, state, reason, **info):
            events.append(("run", state))

    search = make_search(tmp_path, scripted([("up", variant("x = 9"))]))
    search.subscribe(Recorder())
    search.run()
    assert events == [
        ("created", 0), ("started", 0), ("finished", 0, "ok"), ("best", 0),
        ("created", 1), ("started", 1), ("finished", 1, "ok"), ("best", 1),
        ("run", "finished"),
    ]
    lines = [json.loads(l) for l in (search.run_dir.journal_path).read_text().splitlines()]
    assert [l["event"] for l in lines if l["event"].startswith("node_")] == [
        "node_created", "node_started", "node_finished", "node_created", "node_started", "node_finished",
    ]


SLEEPY = """import time
a = 1.0  # search: log(1e-3, 1e3)
b = 2  # search: int(1, 9)
time.sleep(0.6)
print(f"score: {a + b}")
"""


def test_two_workers_run_nodes_side_by_side_and_the_tree_stays_consistent(tmp_path):
    protocol = Protocol.for_script(SLEEPY, metric="score", maximize=True, time_budget=10)
    search = Search(code=SLEEPY, protocol=protocol, runs_dir=tmp_path,
                    settings={"steps": 6, "executor": {"name": "local", "workers": 2, "warm": "off"}})
    outcome = search.run()
    nodes = [n for n in outcome.tree if n.id > 0 and n.operator is not Operator.ABLATE]
    assert len(nodes) == 6 and all(n.status is Status.OK for n in nodes)
    overlaps = sum(
        1 for x in nodes for y in nodes
        if x.id < y.id and x.started_at < y.finished_at and y.started_at < x.finished_at
    )
    assert overlaps >= 2, "nodes should run two at a time"
    ran = [n for n in outcome.tree if n.exec_time]
    assert len({n.code_hash for n in ran}) == len(ran)  # no script ran twice
    replay = RunDir.open(outcome.run_dir).load()
    assert [n.to_dict() for n in replay.tree] == [n.to_dict() for n in outcome.tree]


def test_max_time_ends_the_run_and_cancels_what_is_running(tmp_path):
    protocol = Protocol.for_script(SLEEPY, metric="score", maximize=True, time_budget=10)
    search = Search(code=SLEEPY.replace("0.6", "0.8"), protocol=protocol, runs_dir=tmp_path,
                    settings={"steps": 50, "max_time": 3, "executor": {"name": "local", "warm": "off"}})
    started = time.monotonic()
    outcome = search.run()
    assert time.monotonic() - started < 6
    assert outcome.state == "finished" and "max time" in outcome.reason
    assert 1 <= len(outcome.tree) - 1 < 50
    assert all(n.status.is_finished() for n in outcome.tree)


def test_stop_during_smoke_runs_never_starts_a_full_run(tmp_path, scripted):
    code = variant("x = 7\nimport os, time\nif not os.environ.get('AUTORESEARCH_SMOKE'): time.sleep(30)")
    search = make_search(tmp_path, scripted([("slow full run", code)]), code=SMOKE_BASE, smoke=True)
    timer = threading.Timer(2.0, search.stop)
    timer.start()
    outcome = search.run()
    assert outcome.state == "stopped"
    assert all(n.status.is_finished() for n in outcome.tree)  # nothing left "running"
