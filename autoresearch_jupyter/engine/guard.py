"""Checks a proposed script before any compute is spent on it.

A proposal is refused, with a one-line reason, when it does not compile, is empty, edits frozen
code, changes a literal that decides what data the evaluation sees (core/dataflow.py), prints the
metric or calls ``report()`` outside frozen code when the baseline reports it only from frozen
code, changes nothing (against its parent), only changes seeds, repeats a script already tried,
or repeats a change that failed before at another parent (failures.py).
Scripts are compared by a normalised AST (comments, formatting and docstrings ignored), so a
reformatted copy of an old node counts as a duplicate.

``Guard.check`` is usable on its own (the search calls it on every proposal and records refused
proposals as nodes with the reason); ``GuardedProposer`` adds the same checks to any proposer by
wrapping it, for callers that drive a proposer directly.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import hashlib
import re
import warnings
from typing import Iterable

from ..core.dataflow import describe_change
from ..core.node import Node
from ..core.protocol import Protocol, frozen_spans
from .failures import FailureMemory
from ..proposers._base import Context, Proposal, Proposer
from ..core.tree import Tree

__all__ = [
    "Guard",
    "GuardedProposer",
    "code_hash",
    "is_seed_call",
    "is_seed_name",
    "normalize",
    "parse",
    "seed_aliases",
    "syntax_problem",
]

_SEED_WORD = re.compile(r"seed|random_?state", re.IGNORECASE)
# Constructors that take a seed as their (positional) argument, beside names containing "seed".
_SEED_CALLS = frozenset(
    {"default_rng", "RandomState", "Random", "PRNGKey", "PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64"}
)


def is_seed_name(name: str) -> bool:
    """True for names that hold or set a random seed (``seed``, ``random_state``, ``PYTHONHASHSEED``,
    ``manual_seed``, ``default_rng`` ...): changing them changes luck, not the method."""
    return bool(_SEED_WORD.search(name)) or name in _SEED_CALLS


def _last_name(node: ast.AST) -> str | None:
    """The name a target or callee ends with: ``x`` -> x, ``a.b.c`` -> c, ``env["K"]`` -> K."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        if isinstance(node.slice.value, str):
            return node.slice.value
    return None


def is_seed_call(call: ast.Call) -> bool:
    """True for calls whose arguments are seeds: ``np.random.seed(1)``, ``default_rng(0)`` ..."""
    name = _last_name(call.func)
    return name is not None and is_seed_name(name)


def seed_aliases(tree: ast.AST) -> set[str]:
    """Plain names whose value flows into a seed position, e.g. ``RS`` in ``fit(random_state=RS)``."""
    out: set[str] = set()
    for node in ast.walk(tree):
        values: list[ast.AST] = []
        if isinstance(node, ast.keyword) and node.arg and is_seed_name(node.arg):
            values.append(node.value)
        elif isinstance(node, ast.Call) and is_seed_call(node):
            values.extend(node.args)
        out.update(v.id for v in values if isinstance(v, ast.Name))
    return out


def parse(code: str) -> ast.Module:
    """``ast.parse`` that reports every kind of unparsable source as ``SyntaxError``."""
    try:
        return ast.parse(code)
    except SyntaxError:
        raise
    except (ValueError, RecursionError, MemoryError) as err:  # null bytes, absurd nesting
        raise SyntaxError(str(err) or type(err).__name__) from err


def _strip_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:]
    return tree


@functools.lru_cache(maxsize=128)
def _seedless(code: str) -> str:
    """The normal form with every constant in a seed position blanked out."""
    return _seedless_dump(code)


@functools.lru_cache(maxsize=128)
def normalize(code: str) -> str:
    """The script's AST as text, without comments, formatting or docstrings.

    Raises ``SyntaxError`` when ``code`` does not parse: there is no meaningful normal form then.
    """
    return ast.dump(_strip_docstrings(parse(code)), include_attributes=False)


def code_hash(code: str) -> str:
    """sha256 of the normalised AST; raises ``SyntaxError`` like ``normalize``."""
    return hashlib.sha256(normalize(code).encode()).hexdigest()


def _blank(node: ast.AST) -> None:
    """Blank the constants under ``node``, except under keywords that are not seeds: in
    ``seed_model = build(lr=0.1)`` or ``run_with_seed(lr=0.1)`` the ``lr`` is a real setting."""
    stack = [node]
    while stack:
        sub = stack.pop()
        if isinstance(sub, ast.keyword) and not (sub.arg and is_seed_name(sub.arg)):
            continue
        if isinstance(sub, ast.Constant):
            sub.value = "<seed>"
        stack.extend(ast.iter_child_nodes(sub))


def _seedless_dump(code: str) -> str:
    tree = _strip_docstrings(parse(code))
    aliases = seed_aliases(tree)

    def seedy(target: ast.AST) -> bool:
        name = _last_name(target)
        return name is not None and (is_seed_name(name) or name in aliases)

    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(seedy(t) for t in node.targets):
            _blank(node.value)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value and seedy(node.target):
            _blank(node.value)
        elif isinstance(node, ast.keyword) and node.arg and is_seed_name(node.arg):
            _blank(node.value)
        elif isinstance(node, ast.Call):
            if is_seed_call(node):
                for arg in [*node.args, *node.keywords]:
                    _blank(arg)
            elif node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
                if is_seed_name(node.args[0].value):  # os.environ.setdefault("PYTHONHASHSEED", "0")
                    for arg in node.args[1:]:
                        _blank(arg)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if isinstance(key, ast.Constant) and isinstance(key.value, str) and is_seed_name(key.value):
                    _blank(value)
        elif isinstance(node, ast.arguments):
            positional = [*node.posonlyargs, *node.args]
            for arg, default in zip(positional[len(positional) - len(node.defaults) :], node.defaults):
                if is_seed_name(arg.arg):
                    _blank(default)
            for arg, kw_default in zip(node.kwonlyargs, node.kw_defaults):
                if kw_default is not None and is_seed_name(arg.arg):
                    _blank(kw_default)
    return ast.dump(tree, include_attributes=False)


def _seedless_hash(code: str) -> str:
    return hashlib.sha256(_seedless(code).encode()).hexdigest()


def _known_key(code: str) -> str:
    try:
        return code_hash(code)
    except SyntaxError:
        return "raw:" + hashlib.sha256(code.encode()).hexdigest()


def syntax_problem(code: str) -> str | None:
    """Why ``code`` does not compile (with the line), or None. Uses ``compile``, which also
    catches what the parser lets through (``return`` outside a function, ``break`` outside a loop)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(code, "train.py", "exec", dont_inherit=True)
    except SyntaxError as err:
        where = f" at line {err.lineno}" if err.lineno else ""
        return f"syntax error{where}: {err.msg}"
    except (ValueError, RecursionError, MemoryError) as err:
        return f"syntax error: {err or type(err).__name__}"
    return None


def _strings(node: ast.AST) -> Iterable[tuple[int, str]]:
    """(line, text) of the string constants in ``node``, with ``"a" + "b"`` folded."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
            yield sub.lineno, sub.value
        elif isinstance(sub, ast.BinOp) and isinstance(sub.op, ast.Add):
            parts = [p.value for p in (sub.left, sub.right) if isinstance(p, ast.Constant) and isinstance(p.value, str)]
            if len(parts) == 2:
                yield sub.lineno, parts[0] + parts[1]


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
        if isinstance(sub, ast.Call) and _last_name(sub.func) == "report":
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
        self._seedless: set[str] = set()  # tried scripts with their seeds blanked out
        self.failures = FailureMemory()
        self._frozen_metric = False  # the baseline emits its metric only from frozen code
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
        free = "\n".join(l for i, l in enumerate(lines) if not any(a <= i <= b for a, b in spans))
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
        self._known.add(_known_key(code))
        try:
            self._seedless.add(_seedless_hash(code))
        except SyntaxError:
            pass

    def is_known(self, code: str) -> bool:
        """True if this script, up to comments and formatting, was already tried."""
        return _known_key(code) in self._known

    def __len__(self) -> int:
        return len(self._known)

    def check(self, *, code: str, parent_code: str) -> str | None:
        """None if ``code`` may run, else a one-line reason. Does not remember ``code``."""
        problem = syntax_problem(code)
        if problem:
            return problem
        tree = _strip_docstrings(parse(code))
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
        if parent_norm is not None and _seedless(code) == _seedless(parent_code):
            return "seed-only change: every node runs with the same seed; change the method instead"
        if self.is_known(code):
            return "duplicate: this code (up to comments and formatting) was already tried"
        if _seedless_hash(code) in self._seedless:
            return "seed-only variant of an already tried node: same code up to seeds"
        return self.failures.check(parent_code=parent_code, code=code)


class GuardedProposer(Proposer):
    """Wraps a proposer so that each proposal is checked; a refused one comes back with
    ``rejected`` set to the reason (the search records it as a rejected node)."""

    def __init__(self, proposer: Proposer, guard: Guard) -> None:
        self.proposer = proposer
        self.guard = guard
        self.name = proposer.name  # type: ignore[misc]
        self.operators = proposer.operators  # type: ignore[misc]

    def propose(self, *, context: Context) -> Proposal | None:
        proposal = self.proposer.propose(context=context)
        if proposal is None or proposal.rejected:
            return proposal
        reason = self.guard.check(code=proposal.code, parent_code=context.parent.code)
        return dataclasses.replace(proposal, rejected=reason) if reason else proposal

    def on_node_finished(self, *, node: Node, tree: Tree) -> None:
        self.proposer.on_node_finished(node=node, tree=tree)

    def reseed_rng(self, seed: int) -> None:
        self.proposer.reseed_rng(seed)
