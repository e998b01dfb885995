"""Every executor and proposer we ship passes the same conformance suite."""

from __future__ import annotations

import pytest

from autoresearch_jupyter.executors.local import LocalExecutor
from autoresearch_jupyter.proposers import MutateProposer
from autoresearch_jupyter.testing import ExecutorConformance, ProposerConformance


class TestLocalExecutorCold(ExecutorConformance):
    @pytest.fixture
    def executor(self):
        with LocalExecutor(workers=2, warm="off", grace=0.5) as ex:
            yield ex


class TestLocalExecutorWarm(ExecutorConformance):
    @pytest.fixture
    def executor(self):
        with LocalExecutor(workers=1, warm="on", grace=0.5) as ex:
            ex.start(warm_imports=["json"])
            yield ex


class TestMutateProposer(ProposerConformance):
    @pytest.fixture
    def proposer(self):
        return MutateProposer(seed=0)
