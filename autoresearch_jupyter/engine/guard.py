"""Checks a proposed script before any compute is spent on it.

A proposal is refused, with a one-line reason, when it does not compile, is empty, edits frozen
code, changes a literal that decides what data the evaluation sees (core/dataflow.py), prints the
metric or calls ``report()`` outside frozen code when the baseline reports it only from frozen
code, changes nothing (against its parent), only changes seeds, repeats a script already tried,
or repeats a change that failed before at another parent (failures.py).
Scripts are compared by their normal and seedless forms (``core/source.py``), so a reformatted
copy of an old node counts as a duplicate.

``Guard.check`` is what the search calls on every proposal (it records refused proposals as nodes
with the reason); callers that drive a proposer directly call it the same way.
"""

from __future__ import annotations

import ast
import re
from typing import Iterable

from ..core.dataflow import describe_change
from ..core.protocol import Protocol, frozen_spans
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
from .failures import FailureMemory

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


def _strings(node: ast.AST) -> Iterable[tuple[int, str]]:
    """(line, text) of the string constants in ``node``, with ``"a" + "b"`` folded."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            yield sub.lineno, sub.value
        elif isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Add):
            parts = [p.value for p in (sub.left, sub.right) if isinstance(p, ast.Constant) and isinstance(p.value, str)]
            if len(parts) == 2:
                yield sub.lineno, parts[0] + parts[1]


def _callee(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def metric_sites(code: str, metric: str, tree: ast.AST | None = None) -> list[tuple[int, str]]:
    """(line, what) of every place that can emit the metric: a string naming it as a whole token,
    a ``report()`` call, or the ``AUTORESEARCH_RESULT`` file. Empty if ``code`` does not parse."""
    if tree is None:
        try:
            tree = parse(code)
        except SyntaxError:
            return []
    token = re.compile(rf"(?<![\w.\-/]){re.escape(metric)}(?![\w.\-/])", re.IGNORECASE)
    out: list[tuple[int, str]] = []
    for line, text in _strings(tree):
        if token.search(text):
            out.append((line, f"prints '{metric}'"))
        elif "AUTORESEARCH_RESULT" in text:
            out.append((line, "writes the result file"))
    for sub in ast.walk(tree):
        if isinstance(sub, ast.Call) and _callee(sub.func) == "report":
            out.append((sub.lineno, "calls report()"))
    return sorted(set(out))


def _outside_frozen(code: str, sites: list[tuple[int, str]]) -> list[tuple[int, str]]:
    spans = frozen_spans(code)
    return [(line, what) for line, what in sites if not any(a < line <= b + 1 for a, b in spans)]


class Guard:
    """Remembers what was tried and refuses proposals that would waste a run."""

    def __init__(self, *, protocol: Protocol, known: Iterable[str] = ()) -> None:
        self.protocol = protocol
        self._known: set[str] = set()
        self.seedless: set[str] = set()  # tried scripts with their seeds blanked out
        self.failures = FailureMemory()
        self._frozen_metric = False  # the baseline emits its metric only from frozen code
        self._metric_word = re.compile("$^")
        for code in known:
            self.remember(code)

    def set_baseline(self, code: str) -> None:
        """Learn from the baseline where its metric comes from (call once it is known)."""
        sites = metric_sites(code, self.protocol.metric)
        parts = re.split(r"[\W_]+", self.protocol.metric)  # "val" + "_acc" still shows a part
        self._metric_word = re.compile("|".join(re.escape(p) for p in parts if p) or "$^", re.IGNORECASE)
        self._frozen_metric = bool(sites) and not _outside_frozen(code, sites)

    def _metric_outside(self, code: str, tree: ast.AST | None = None) -> str | None:
        if not self._frozen_metric:
            return None
        spans = frozen_spans(code)
        lines = code.splitlines()
        free = "\n".join(line for i, line in enumerate(lines) if not any(a <= i <= b for a, b in spans))
        if not (self._metric_word.search(free) or "report" in free or "AUTORESEARCH_RESULT" in free):
            return None  # the common case, without parsing: nothing outside frozen code names it
        outside = _outside_frozen(code, metric_sites(code, self.protocol.metric, tree))
        if not outside:
            return None
        line, what = outside[0]
        return (
            f"metric from outside the evaluation: line {line} {what} outside frozen code, "
            "but the baseline reports its metric only from frozen code"
        )

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
        moved = describe_change(parent_code, code, tree)
        if moved:
            return (
                f"changes the evaluation's data ({moved}): literals that decide what the evaluation "
                "sees are protected like frozen code; put '# search:' on the line to declare one tunable"
            )
        outside = self._metric_outside(code, tree)
        if outside:
            return outside
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
        return self.failures.check(parent_code=parent_code, code=code)
