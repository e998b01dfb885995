"""Shared fixtures: small scripts, a scripted proposer, and a clean environment for node runs."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest

from autoresearch_jupyter.core.node import Operator
from autoresearch_jupyter.proposers import Context, Proposal, Proposer

ROOT = Path(__file__).resolve().parents[1]


class ScriptedProposer(Proposer):
    """A test double for the model side: hands out fixed scripts in order, then stops.

    Each entry is (plan, code) or a callable(parent_code) -> (plan, code).
    """

    name = "scripted"
    operators = frozenset({Operator.IMPROVE})

    def __init__(self, entries) -> None:
        self.entries = list(entries)
        self.told: list[int] = []

    def propose(self, *, context: Context) -> Proposal | None:
        if not self.entries:
            return None
        entry = self.entries.pop(0)
        plan, code = entry(context.parent.code) if callable(entry) else entry
        return Proposal(operator=context.operator, plan=plan, code=code)

    def on_node_finished(self, *, node, tree) -> None:
        self.told.append(node.id)


@pytest.fixture
def scripted() -> type[ScriptedProposer]:
    return ScriptedProposer


@pytest.fixture(autouse=True)
def _single_threaded_blas(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Keep test node runs from fighting over the 2 cores of a CI machine."""
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))
    yield
collect_ignore = ["browser"]  # browser tests run on their own: pytest tests/browser
collect_ignore.append("lab")  # the JupyterLab extension tests too: pytest tests/lab
collect_ignore.append("ray")  # the Ray executor's suite starts a cluster: pytest tests/ray

# One chromium for the browser suites (tests/browser, tests/lab), defined once so both can also
# run in one pytest process; it starts only when a test asks for it.
from chromium import browser, pytest_runtest_makereport  # noqa: E402,F401
