"""Checks a proposed script before any compute is spent on it.

A proposal is refused, with a one-line reason, when it does not compile, is empty, edits frozen
code, changes nothing (against its parent), only changes seeds, or repeats a script already tried.
Scripts are compared by their normal and seedless forms (``core/source.py``), so a reformatted
copy of an old node counts as a duplicate.

``Guard.check`` is what the search calls on every proposal (it records refused proposals as nodes
with the reason); callers that drive a proposer directly call it the same way.
"""

from __future__ import annotations

from typing import Iterable

from ..core.protocol import Protocol
from ..core.source import (  # noqa: F401 - the source helpers are re-exported for callers of the guard
    code_hash,
    is_seed_call,
    is_seed_name,
    known_key,
    normalize,
    parse,
    seed_aliases,
    seedless,
    seedless_hash,
    strip_docstrings,
    syntax_problem,
)

__all__ = [
    "Guard",
    "code_hash",
    "is_seed_call",
    "is_seed_name",
    "normalize",
    "parse",
    "seed_aliases",
    "syntax_problem",
]


class Guard:
    """Remembers what was tried and refuses proposals that would waste a run."""

    def __init__(self, *, protocol: Protocol, known: Iterable[str] = ()) -> None:
        self.protocol = protocol
        self._known: set[str] = set()
        self.seedless: set[str] = set()  # tried scripts with their seeds blanked out
        for code in known:
            self.remember(code)

    def remember(self, code: str) -> None:
        """Record a script as tried (the search calls this for every node it adds)."""
        self._known.add(known_key(code))
        try:
            self.seedless.add(seedless_hash(code))
        except SyntaxError:
            pass

    def is_known(self, code: str) -> bool:
        """True if this script, up to comments and formatting, was already tried."""
        return known_key(code) in self._known

    def __len__(self) -> int:
        return len(self._known)

    def check(self, *, code: str, parent_code: str) -> str | None:
        """None if ``code`` may run, else a one-line reason. Does not remember ``code``."""
        problem = syntax_problem(code)
        if problem:
            return problem
        tree = strip_docstrings(parse(code))
        if not tree.body:
            return "empty script: no statements to run"
        frozen = self.protocol.frozen_violation(code)
        if frozen:
            return frozen
        try:
            parent_norm: str | None = normalize(parent_code)
        except SyntaxError:
            parent_norm = None
        if parent_norm is not None and normalize(code) == parent_norm:
            return "no-op change: a duplicate of the parent (same code up to comments and formatting)"
        if parent_norm is not None and seedless(code) == seedless(parent_code):
            return "seed-only change: every node runs with the same seed; change the method instead"
        if self.is_known(code):
            return "duplicate: this code (up to comments and formatting) was already tried"
        if seedless_hash(code) in self.seedless:
            return "seed-only variant of an already tried node: same code up to seeds"
        return None
