"""Subscribers and the notebook's run handle get snapshots: a held one never changes.

Real searches: each node is a real subprocess, the search runs in its own thread as in a notebook.
"""

from __future__ import annotations

import copy
import dataclasses
import pickle
import random
import re
import shutil
import subprocess
import sys
import time

import pytest

from autoresearch_jupyter import Callback, Node, NodeSnapshot, Protocol, Search, Tree, TreeSnapshot, open_run
from autoresearch_jupyter.core.node import Operator, Status
from autoresearch_jupyter.notebook.run import NotebookRun
from autoresearch_jupyter.proposers import Context, Proposal, Proposer
from autoresearch_jupyter.store.runs import RunDir

SLOW = """import time
a = 1.0  # search: log(1e-3, 1e3)
b = 2  # search: int(1, 9)
time.sleep(0.4)
print(f"score: {a + b}")
"""


def search(tmp_path, steps: int, code: str = SLOW, **kwargs) -> Search:
    protocol = Protocol.for_script(code, metric="score", maximize=True, time_budget=20)
    return Search(code=code, protocol=protocol, runs_dir=tmp_path / "runs",
                  settings={"steps": steps, "executor": {"name": "local", "workers": 1, "warm": "off"}}, **kwargs)


def wait_until(predicate, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out waiting"
        time.sleep(0.02)


def test_a_held_tree_of_a_live_run_never_changes(tmp_path):
    s = search(tmp_path, steps=3)
    s.prepare()
    run = NotebookRun.live(s).start()
    wait_until(lambda: 0 in run.tree and run.tree[0].status is Status.RUNNING)
    held = run.tree
    before = [n.to_dict() for n in held]
    run.wait()
    # the search went on: the baseline finished and more nodes ran
    now = run.tree
    assert now[0].status is Status.OK and sum(n.operator.value != "ablate" for n in now) == 4
    # the tree held while the baseline ran still says so, node for node
    assert [n.to_dict() for n in held] == before
    assert len(held) == 1 and held[0].status is Status.RUNNING and held[0].metric is None
    assert dict(held.children) == {0: ()}
    # and nothing can change it
    with pytest.raises(dataclasses.FrozenInstanceError):
        held[0].status = Status.OK
    with pytest.raises(TypeError):
        held[0].meta["x"] = 1
    with pytest.raises(TypeError):
        held.add(Node(5, 0, Operator.IMPROVE, "", ""))
    with pytest.raises(TypeError):
        held.nodes[5] = now[1]  # type: ignore[index]
    assert isinstance(held, TreeSnapshot) and isinstance(held, Tree)


def test_every_event_carries_the_node_as_it_was_then(tmp_path):
    seen: list[tuple[str, NodeSnapshot, TreeSnapshot]] = []

    class Recorder(Callback):
        def on_node_created(self, *, node, **info):
            seen.append(("created", node, info["tree"]))

        def on_node_started(self, *, node, **info):
            seen.append(("started", node, info["tree"]))

        def on_node_finished(self, *, node, **info):
            seen.append(("finished", node, info["tree"]))

    s = search(tmp_path, steps=2, callbacks=[Recorder()])
    outcome = s.run()
    assert all(isinstance(node, NodeSnapshot) and isinstance(tree, TreeSnapshot) for _, node, tree in seen)
    started = [(n, t) for kind, n, t in seen if kind == "started"]
    finished = [(n, t) for kind, n, t in seen if kind == "finished"]
    assert [n.id for n, _ in started] == [0, 1, 2]
    # each started node still reads "running" after the run ended; each finished one has its result
    assert all(n.status is Status.RUNNING and n.metric is None for n, _ in started)
    assert all(n.status is Status.OK and n.metric == outcome.tree[n.id].metric for n, _ in finished)
    # the tree of an event is the tree of that moment: the node in it is the event's node
    for node, tree in started + finished:
        assert tree[node.id] is node and len(tree) == node.id + 1
    # the outcome's tree is the final snapshot, equal to the journal on disk
    replay = RunDir.open(outcome.run_dir).load()
    assert [n.to_dict() for n in replay.tree] == [n.to_dict() for n in outcome.tree]
    assert all(a == b for a, b in zip(replay.tree, outcome.tree))  # a snapshot equals its live node


def test_snapshots_are_values():
    live = Node(0, None, Operator.BASELINE, "baseline", "print(1)\n", meta={"moves": [1, {"k": 2}]})
    snap = live.snapshot()
    live.meta["moves"].append(3)
    live.status = Status.OK
    assert snap.meta["moves"] == (1, {"k": 2}) and snap.status is Status.PENDING
    assert copy.deepcopy(snap) is snap and pickle.loads(pickle.dumps(snap)) == snap
    changed = dataclasses.replace(snap, status=Status.BUGGY)
    assert isinstance(changed, NodeSnapshot) and changed.status is Status.BUGGY and snap.status is Status.PENDING
    assert snap.to_dict()["meta"] == {"moves": [1, {"k": 2}]}


class RandomValues(Proposer):
    """Proposes ``a = <a random number>``: each proposal draws from one seeded stream."""

    name = "random-values"

    def __init__(self, seed: int) -> None:
        self.reseed_rng(seed)

    def reseed_rng(self, seed: int) -> None:
        self._rng = random.Random(seed)

    def propose(self, *, context: Context) -> Proposal | None:
        value = round(self._rng.uniform(0.001, 1000), 6)
        return Proposal(operator=context.operator, plan=f"a = {value}",
                        code=re.sub(r"^a = \S+", f"a = {value}", context.parent.code, count=1, flags=re.M))


def test_resume_reseeds_its_parts_with_a_stream_of_its_own(tmp_path):
    code = SLOW.replace("time.sleep(0.4)", "pass")
    seed = Protocol.for_script(code, metric="score", maximize=True).seed
    used = RandomValues(seed)
    first = search(tmp_path, steps=2, code=code, proposer=used).run()  # its stream moved on by 2 draws
    codes = []
    for name, proposer in (("fresh", RandomValues(seed)), ("used", used)):
        folder = tmp_path / name / first.run_dir.name
        shutil.copytree(first.run_dir, folder)
        resumed = Search.resume(RunDir.open(folder), steps=4, proposer=proposer).run()
        codes.append([n.code for n in resumed.tree])
    # reproducible whatever the proposer object drew before ...
    assert len(codes[0]) == 5 and codes[0] == codes[1]
    # ... and not the first session's draws again (the guard would reject those as duplicates)
    tried = {n.code for n in first.tree}
    assert not tried & set(codes[0][3:])


def test_the_public_names_load_lazily_and_open_run_reads_the_latest_run(tmp_path):
    code = (
        "import sys, autoresearch_jupyter as a\n"
        "before = [m for m in ('autoresearch_jupyter.engine.search', 'autoresearch_jupyter.core.tree') if m in sys.modules]\n"
        "names = (a.Callback, a.Node, a.Tree, a.open_run)\n"
        "print(before, 'IPython' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] False"
    outcome = search(tmp_path, steps=1, code=SLOW.replace("time.sleep(0.4)", "pass")).run()
    run = open_run("latest", runs_dir=tmp_path / "runs")
    assert run.id == outcome.run_id and run.state == "finished"
    assert isinstance(run.tree, TreeSnapshot) and [n.id for n in run.nodes] == [0, 1]
    assert run.best is not None and run.best.metric == outcome.best.metric


def test_the_widget_keeps_and_renders_only_snapshots(tmp_path):
    from autoresearch_jupyter.notebook.widget import TreeView

    s = search(tmp_path, steps=2, code=SLOW.replace("time.sleep(0.4)", "pass"))
    view = TreeView(protocol=s.protocol, steps=2, throttle=0.05)
    s.subscribe(view.callback)
    outcome = s.run()
    held = dict(view._index)  # what its throttle timer builds records from
    assert sorted(held) == [0, 1, 2] and all(isinstance(n, NodeSnapshot) for n in held.values())
    assert all(held[i] == outcome.tree[i] for i in held)
    assert [r["status"] for r in view._nodes["nodes"]] == ["ok", "ok", "ok"]
