"""Python source as the guard and the proposers compare it: parsed, normalised, seeds blanked.

A script's normal form is its AST without comments, formatting or docstrings, so a reformatted
copy compares equal; its seedless form also blanks every constant in a seed position, so two
scripts that differ only in seeds compare equal. The guard (``engine/guard.py``) refuses
proposals by these forms and the proposers use them to avoid proposing what was tried.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import re
import warnings

__all__ = [
    "code_hash", "is_seed_call", "is_seed_name", "known_key", "normalize", "parse", "seed_aliases",
    "seedless", "seedless_hash", "strip_docstrings", "syntax_problem",
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


def strip_docstrings(tree: ast.Module) -> ast.Module:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                if isinstance(body[0].value.value, str):
                    node.body = body[1:]
    return tree


@functools.lru_cache(maxsize=128)
def seedless(code: str) -> str:
    """The normal form with every constant in a seed position blanked out."""
    return _seedless_dump(code)


@functools.lru_cache(maxsize=128)
def normalize(code: str) -> str:
    """The script's AST as text, without comments, formatting or docstrings.

    Raises ``SyntaxError`` when ``code`` does not parse: there is no meaningful normal form then.
    """
    return ast.dump(strip_docstrings(parse(code)), include_attributes=False)


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
    tree = strip_docstrings(parse(code))
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


def seedless_hash(code: str) -> str:
    return hashlib.sha256(seedless(code).encode()).hexdigest()


def known_key(code: str) -> str:
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


def dotted_name(node: ast.AST, unknown: str = "") -> str:
    """``np.random.seed`` for the expression a call or attribute names (``f()`` for a call's result,
    ``unknown`` for anything else): how the guard, the proposers and the grader name callables."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{dotted_name(node.value, unknown)}.{node.attr}"
    if isinstance(node, ast.Call):
        return f"{dotted_name(node.func, unknown)}()"
    return unknown
