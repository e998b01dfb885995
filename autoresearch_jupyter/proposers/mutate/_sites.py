"""Tunable sites: the literals of a script that one node may change, found in its AST.

A site is a numeric or boolean literal that is the whole value of an assignment (``lr = 0.01``,
``self.depth = 3``, ``lr: float = 1e-3``), of a keyword argument (``LogisticRegression(C=0.01)``)
or of a string-keyed dict entry (``{"C": 0.01}``). A ``# search: ...`` comment on a site's line
declares its space and makes any literal tunable::

    lr = 0.01           # search: log(1e-5, 1)          log-uniform float range
    depth = 3           # search: int(1, 12)            integer range
    frac = 0.5          # search: float(0, 1)           linear float range
    opt = "adam"        # search: ["adam", "sgd", None]  choices, any literal types

Not sites: frozen code, seeds (changing luck is not an experiment), settings that define the
evaluation (``cv``, ``test_size``, arguments of splitters and dataset makers: moving them moves
the goalposts), settings with no effect on the result (``verbose``, ``n_jobs``, ``axis``),
positional arguments, indices and slices, function defaults, literals inside larger expressions.

String keyword arguments (``loss="squared_error"``) are found with ``strings=True`` as ``str``
sites; the proposer keeps them only when the callable documents a closed set of choices. Site
ids combine scope, call and name with an occurrence index, not the line, so they stay valid
across the tree even where another proposer shifted lines.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import io
import math
import re
import tokenize
from typing import Any

from ...core.errors import ScriptError
from ...core.protocol import frozen_spans
from ...core.source import dotted_name, is_seed_name, parse, seed_aliases

# Names whose value defines the evaluation protocol, or the run's budget: never tuned.
PROTOCOL_NAMES = frozenset(
    "cv n_splits n_repeats n_folds folds test_size train_size val_size valid_size validation_size "
    "test_split val_split validation_split holdout time_budget timeout time_limit max_time budget "
    "n_samples".split()
)
# Names that change speed, logging or the shape of data, not the result: tuning them wastes runs.
NO_EFFECT_NAMES = frozenset(
    "verbose verbosity n_jobs num_workers workers nthread nthreads n_threads num_threads thread_count "
    "pin_memory persistent_workers prefetch_factor non_blocking copy copy_x disp silent quiet "
    "log_interval log_every print_every save_every eval_every logging_steps save_steps precision dpi "
    "flush axis dim keepdims keepdim inplace ignore_index warm_start cache_size".split()
)
# Calls whose keywords are the evaluation (splitters, scorers) or not about the model at all.
FIXED_CALLS = frozenset(
    "cross_val_score cross_validate cross_val_predict train_test_split KFold StratifiedKFold "
    "GroupKFold StratifiedGroupKFold ShuffleSplit StratifiedShuffleSplit GroupShuffleSplit "
    "RepeatedKFold RepeatedStratifiedKFold TimeSeriesSplit LeaveOneOut LeavePOut PredefinedSplit "
    "random_split print set_printoptions basicConfig filterwarnings simplefilter figure subplots "
    "savefig report".split()
)
FIXED_CALL_PREFIXES = ("make_", "load_", "fetch_")  # dataset makers and loaders: the data itself

_SEARCH_COMMENT = re.compile(r"\bsearch:\s*(.*?)\s*$")


@dataclasses.dataclass(frozen=True)
class Spec:
    """A declared search space: ``log``/``float``/``int`` ranges or ``choice``."""

    kind: str
    lo: float = 0.0
    hi: float = 0.0
    choices: tuple[Any, ...] = ()

    def describe(self) -> str:
        if self.kind == "choice":
            return "choices [" + ", ".join(repr(c) for c in self.choices) + "]"
        return f"{self.kind}({self.lo!r}, {self.hi!r})"

    def contains(self, value: Any) -> bool:
        if self.kind == "choice":
            return any(type(c) is type(value) and c == value for c in self.choices)
        if not _is_number(value) or (self.kind == "int" and not isinstance(value, int)):
            return False
        return self.lo - 1e-12 * abs(self.lo) <= value <= self.hi + 1e-12 * abs(self.hi)


@dataclasses.dataclass(frozen=True)
class Site:
    """One tunable literal: where it is (char offsets ``start:end``) and what it holds.

    A site *at its default* (``at_default``) is a keyword the call leaves out: ``start == end``
    is where ``name=value`` is inserted, ``value`` the callable's default and ``text`` empty.
    """

    id: str
    name: str
    value: Any
    text: str
    line: int
    start: int
    end: int
    kind: str  # float | int | bool | str (undeclared), or the declared spec's kind
    spec: Spec | None = None
    callee: str = ""  # the dotted callee of a keyword site ("" for assignments and dict entries)
    floaty: bool = False  # an int literal among floats (a dict of floats): a float in practice
    at_default: bool = False
    prefix: str = ""  # what goes before ``name=`` when a default site is inserted (", " or "")

    @property
    def declared(self) -> bool:
        return self.spec is not None

    def apply(self, code: str, text: str) -> str:
        """``code`` with this literal's source replaced by ``text``; nothing else changes."""
        if self.at_default:
            text = f"{self.prefix}{self.name}={text}"
        return code[: self.start] + text + code[self.end :]


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# ---- declarations ----------------------------------------------------------------------------


def parse_spec(text: str) -> tuple[Spec | None, str]:
    """The declared space of a ``# search:`` comment's text, or (None, what is wrong)."""
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None, f"cannot parse {text!r}: write log(lo, hi), float(lo, hi), int(lo, hi) or [choices]"
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        try:
            choices = tuple(ast.literal_eval(e) for e in node.elts)
        except ValueError:
            return None, "choices must be literals (numbers, strings, True/False/None)"
        if len(choices) < 2:
            return None, "a choice needs at least two values"
        return Spec("choice", choices=choices), ""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 2):
        return None, f"cannot parse {text!r}: write log(lo, hi), float(lo, hi), int(lo, hi) or [choices]"
    kind = node.func.id
    if kind not in ("log", "float", "int"):
        return None, f"unknown space {kind!r}: use log, float, int or a [list] of choices"
    try:
        lo, hi = (ast.literal_eval(a) for a in node.args)
    except ValueError:
        return None, "the bounds must be numbers"
    if not all(_is_number(x) for x in (lo, hi)):
        return None, "the bounds must be finite numbers"
    if not lo < hi:
        return None, f"the lower bound {lo!r} is not below the upper bound {hi!r}"
    if kind == "log" and lo <= 0:
        return None, f"a log range needs a positive lower bound, got {lo!r}"
    if kind == "int" and not (float(lo).is_integer() and float(hi).is_integer()):
        return None, "int bounds must be whole numbers"
    return Spec(kind, int(lo) if kind == "int" else lo, int(hi) if kind == "int" else hi), ""


def _search_comments(code: str) -> dict[int, tuple[Spec | None, str]]:
    out: dict[int, tuple[Spec | None, str]] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.COMMENT:
                match = _SEARCH_COMMENT.search(tok.string)
                if match:
                    out[tok.start[0]] = parse_spec(match.group(1))
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


# ---- finding sites ---------------------------------------------------------------------------


def _dotted(node: ast.AST) -> str:
    return dotted_name(node, "?")


def _plain_literal(node: ast.AST, strings: bool = False) -> tuple[bool, Any]:
    """(True, value) for a number or bool literal, including ``-0.5``; else (False, None)."""
    if isinstance(node, ast.Constant) and (isinstance(node.value, bool) or _is_number(node.value)):
        return True, node.value
    if strings and isinstance(node, ast.Constant) and isinstance(node.value, str):
        return True, node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = node.operand.value if isinstance(node.operand, ast.Constant) else None
        if isinstance(value, (int, float)) and _is_number(value):
            return True, -value if isinstance(node.op, ast.USub) else value
    return False, None


def _line_starts(code: str) -> list[int]:
    """Char offset of each line start, lines numbered from 1 as ast numbers them."""
    starts = [0, 0]
    for match in re.finditer(r"\r\n|\r|\n", code):
        starts.append(match.end())
    return starts


@dataclasses.dataclass
class _Found:
    value: ast.expr
    scope: str
    where: str
    name: str
    callee: str = ""
    floaty: bool = False
    keyword: bool = False


class _Collector(ast.NodeVisitor):
    """Walks the module and records candidate literals (and calls) in order."""

    def __init__(self, aliases: set[str]) -> None:
        self.scope: list[str] = []
        self.aliases = aliases
        self.found: list[_Found] = []
        self.calls: list[tuple[ast.Call, str, str]] = []  # (call, scope, callee) of tunable calls
        self.owners: dict[int, str] = {}  # id(dict node) -> what it is assigned or passed to

    def _add(self, found: _Found, key: str) -> None:
        low = key.lower()
        if is_seed_name(key) or key in self.aliases or low in PROTOCOL_NAMES or low in NO_EFFECT_NAMES:
            return
        self.found.append(found)

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        for sub in node.decorator_list:  # decorators belong to the enclosing scope
            self.visit(sub)
        self.scope.append(node.name)
        for stmt in node.body:  # defaults of function arguments are not sites
            self.visit(stmt)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped

    def _target(self, target: ast.AST, value: ast.expr) -> None:
        self.owners[id(value)] = ast.unparse(target)
        scope = ".".join(self.scope)
        if isinstance(target, (ast.Name, ast.Attribute)):
            key = target.id if isinstance(target, ast.Name) else target.attr
            self._add(_Found(value, scope, "", ast.unparse(target)), key)
        elif isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
            if isinstance(target.slice.value, str):  # params["C"] = 0.1, never x[3] = ...
                self._add(_Found(value, scope, "", ast.unparse(target)), target.slice.value)

    def visit_Assign(self, node: ast.Assign) -> None:
        if len(node.targets) == 1:
            self._target(node.targets[0], node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._target(node.target, node.value)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        callee = _dotted(node.func)
        short = callee.rsplit(".", 1)[-1]
        if not (short in FIXED_CALLS or short.startswith(FIXED_CALL_PREFIXES)):
            scope = ".".join(self.scope)
            self.calls.append((node, scope, callee))
            for kw in node.keywords:
                if kw.arg is not None:
                    self.owners[id(kw.value)] = kw.arg
                    self._add(_Found(kw.value, scope, f"{callee}().", kw.arg, callee, keyword=True), kw.arg)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        owner = self.owners.get(id(node), "dict")
        floats = any(isinstance(v, ast.Constant) and type(v.value) is float for v in node.values)
        for key, value in zip(node.keys, node.values):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                self.owners[id(value)] = f"{owner}[{key.value!r}]"
                found = _Found(value, ".".join(self.scope), "", f"{owner}[{key.value!r}]", floaty=floats)
                self._add(found, key.value)
        self.generic_visit(node)


@dataclasses.dataclass(frozen=True)
class Parsed:
    """What one script offers: its sites, and the calls whose left-out keywords may become sites."""

    sites: tuple[Site, ...]
    calls: tuple[tuple[int, str, str, str, frozenset[str]], ...]  # (offset, scope, callee, prefix, given)


def _offsets(code: str) -> Any:
    starts = _line_starts(code)

    def offset(lineno: int, col: int) -> int:
        line = code[starts[lineno] : starts[lineno + 1] if lineno + 1 < len(starts) else len(code)]
        return starts[lineno] + len(line.encode("utf-8")[:col].decode("utf-8", errors="replace"))

    return offset


def _overlaps(frozen: list[tuple[int, int]], first: int, last: int) -> bool:
    return any(a <= last and first <= b for a, b in frozen)


@functools.lru_cache(maxsize=1024)
def scan(code: str, *, strings: bool = False) -> Parsed:
    """Sites and tunable calls of ``code`` in source order (empty if it does not parse)."""
    try:
        tree = parse(code)
    except SyntaxError:
        return Parsed((), ())
    collector = _Collector(seed_aliases(tree))
    collector.visit(tree)
    frozen = [(a + 1, b + 1) for a, b in frozen_spans(code)]
    specs = _search_comments(code)
    offset = _offsets(code)
    # A ``# search:`` comment belongs to the last candidate that ends on its line.
    last_on_line: dict[int, int] = {}
    for i, found in enumerate(collector.found):
        last_on_line[found.value.end_lineno or found.value.lineno] = i
    sites: list[Site] = []
    for i, found in enumerate(collector.found):
        value = found.value
        first, last = value.lineno, value.end_lineno or value.lineno
        if _overlaps(frozen, first, last):
            continue
        spec = specs.get(last, (None, ""))[0] if last_on_line.get(last) == i else None
        plain, val = _plain_literal(value, strings=strings and found.keyword)
        if spec is not None and not plain:
            try:
                val = ast.literal_eval(value)
            except ValueError:
                spec = None
            else:
                plain = True
        if not plain or (isinstance(val, str) and spec is None and not found.keyword):
            continue
        if spec is not None and not spec.contains(val):
            spec = None  # check_declarations names the problem before the run starts
            if not (_is_number(val) or isinstance(val, (bool, str))):
                continue
        kind = spec.kind if spec else "bool" if isinstance(val, bool) else type(val).__name__
        start = offset(value.lineno, value.col_offset)
        end = offset(last, value.end_col_offset or 0)
        label = f"{found.scope}/{found.where}{found.name}"
        sites.append(Site(label, found.name, val, code[start:end], first, start, end, kind, spec,
                          found.callee, found.floaty and type(val) is int))
    calls = []
    for call, scope, callee in collector.calls:
        first, last = call.lineno, call.end_lineno or call.lineno
        if _overlaps(frozen, first, last) or any(kw.arg is None for kw in call.keywords):
            continue  # ``**params`` may already hold any keyword
        end = offset(last, call.end_col_offset or 0) - 1
        if code[end : end + 1] != ")":
            continue
        inner = code[offset(call.func.end_lineno or first, call.func.end_col_offset or 0) : end]
        has_args = bool(call.args or call.keywords)
        prefix = "" if not has_args or inner.rstrip().endswith(",") else ", "
        given = frozenset(kw.arg for kw in call.keywords if kw.arg)
        calls.append((end, scope, callee, prefix, given))
    return Parsed(tuple(number(sorted(sites, key=lambda s: s.start))), tuple(calls))


def number(sites: list[Site]) -> list[Site]:
    """Give each site its occurrence index (``#k``) among sites with the same label, by offset."""
    seen: dict[str, int] = {}
    out: list[Site] = []
    for site in sites:
        label = site.id.rsplit("#", 1)[0] if "#" in site.id and site.id.rsplit("#", 1)[1].isdigit() else site.id
        k = seen.get(label, 0)
        seen[label] = k + 1
        out.append(dataclasses.replace(site, id=f"{label}#{k}"))
    return out


def find_sites(code: str, *, strings: bool = False) -> list[Site]:
    """The tunable sites of ``code`` in source order (empty if it does not parse)."""
    return list(scan(code, strings=strings).sites)


def check_declarations(code: str) -> None:
    """Raise ScriptError naming the line of the first ``# search:`` declaration that cannot be
    parsed, belongs to no literal, or whose space excludes the literal's current value."""
    try:
        tree = parse(code)
    except SyntaxError:
        return  # the script's own syntax error is reported elsewhere
    collector = _Collector(set())
    collector.visit(tree)
    ends: dict[int, ast.expr] = {}
    for found in collector.found:
        ends[found.value.end_lineno or found.value.lineno] = found.value
    for line, (spec, problem) in sorted(_search_comments(code).items()):
        where = f"line {line}: # search: declaration"
        if spec is None:
            raise ScriptError(f"{where}: {problem}")
        value = ends.get(line)
        if value is None:
            raise ScriptError(f"{where} is not on the line of an assignment, keyword argument or dict entry")
        try:
            current = ast.literal_eval(value)
        except ValueError:
            raise ScriptError(f"{where}: the value {ast.unparse(value)} is not a literal") from None
        if not spec.contains(current):
            raise ScriptError(f"{where}: the current value {current!r} is outside {spec.describe()}")
