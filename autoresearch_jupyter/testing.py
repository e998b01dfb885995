"""A conformance suite for proposers and executors: subclass, provide the fixture, run pytest.

    from .testing import ExecutorConformance

    class TestMyExecutor(ExecutorConformance):
        @pytest.fixture
        def executor(self):
            with MyExecutor(workers=2) as ex:
                yield ex

Every implementation of an interface passes the same tests, so a new backend (Ray, an LLM)
is held to the contract the search loop relies on. Requires pytest.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import pytest

from .executors import Executor, Job
from .core.node import Node, Operator, Status
from .proposers import Context, Proposer
from .core.protocol import Protocol
from .core.tree import Tree

SCRIPT = """lr = 0.01  # search: log(1e-5, 1)
depth = 3  # search: int(1, 12)
opt = "adam"  # search: ["adam", "sgd"]
print(f"score: {lr * depth}")
"""


def _job(tmp_path: Path, node_id: int, code: str, *, timeout: float = 20.0) -> Job:
    workdir = tmp_path / str(node_id)
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "train.py"
    script.write_text(code)
    return Job(node_id=node_id, script=script, workdir=workdir, timeout=timeout,
               env={"AUTORESEARCH_NODE_ID": str(node_id), "AUTORESEARCH_SEED": "0"})


class ExecutorConformance:
    """What the search loop needs from any executor. Provide an ``executor`` fixture."""

    @pytest.fixture
    def executor(self) -> Executor:  # pragma: no cover - subclasses override
        raise NotImplementedError("provide an executor fixture")

    def test_runs_a_script_and_captures_its_output(self, executor: Executor, tmp_path: Path) -> None:
        result = executor.submit(job=_job(tmp_path, 1, "import os, sys\nprint('hello', os.environ['AUTORESEARCH_NODE_ID'])\n"
                                          "print('oops', file=sys.stderr)\n")).result(timeout=60)
        assert result.node_id == 1 and result.exit_code == 0
        assert not result.timed_out and not result.cancelled
        text = result.log_path.read_text()
        assert "hello 1" in text and "oops" in text and "hello 1" in result.output_tail

    def test_reports_a_failing_exit_code(self, executor: Executor, tmp_path: Path) -> None:
        result = executor.submit(job=_job(tmp_path, 2, "raise SystemExit(3)\n")).result(timeout=60)
        assert result.exit_code == 3

    def test_enforces_the_time_limit(self, executor: Executor, tmp_path: Path) -> None:
        started = time.monotonic()
        result = executor.submit(job=_job(tmp_path, 3, "while True: pass\n", timeout=1.0)).result(timeout=60)
        assert result.timed_out and time.monotonic() - started < 15

    def test_cancel_stops_a_running_job(self, executor: Executor, tmp_path: Path) -> None:
        future = executor.submit(job=_job(tmp_path, 4, "import time\ntime.sleep(60)\n", timeout=60))
        time.sleep(0.5)
        executor.cancel(node_id=4)
        assert future.result(timeout=30).cancelled

    def test_capacity_is_positive(self, executor: Executor) -> None:
        assert executor.capacity >= 1


class ProposerConformance:
    """What the search loop needs from any proposer. Provide a ``proposer`` fixture; it must be
    able to propose at least one IMPROVE change to :data:`SCRIPT` (override ``script`` if not)."""

    script = SCRIPT

    @pytest.fixture
    def proposer(self) -> Proposer:  # pragma: no cover - subclasses override
        raise NotImplementedError("provide a proposer fixture")

    def context(self, *, progress: float = 0.0) -> Context:
        protocol = Protocol.for_script(self.script, metric="score", maximize=True)
        tree = Tree()
        tree.add(Node(id=0, parent=None, operator=Operator.BASELINE, plan="baseline", code=self.script,
                      status=Status.OK, metric=0.03, kept=True))
        return Context(protocol=protocol, tree=tree, parent=tree[0], operator=Operator.IMPROVE,
                       progress=progress, is_known=lambda code: code == self.script)

    def test_declares_operators(self, proposer: Proposer) -> None:
        assert proposer.operators and Operator.BASELINE not in proposer.operators

    def test_proposes_a_valid_change(self, proposer: Proposer) -> None:
        proposal = proposer.propose(context=self.context())
        assert proposal is not None and proposal.rejected is None
        assert proposal.code != self.script and proposal.plan.strip()
        compile(proposal.code, "proposal", "exec")

    def test_does_not_change_what_it_is_given(self, proposer: Proposer) -> None:
        context = self.context()
        before = copy.deepcopy([n.to_dict() for n in context.tree])
        proposer.propose(context=context)
        assert [n.to_dict() for n in context.tree] == before

    def test_same_seed_same_proposal(self, proposer: Proposer) -> None:
        first = proposer.propose(context=self.context())
        proposer.reseed_rng(0)
        again = proposer.propose(context=self.context())
        assert first is not None and again is not None and first.code == again.code


__all__ = ["ExecutorConformance", "ProposerConformance", "SCRIPT"]
