"""The offline proposer: each node changes exactly one literal of its parent's script.

Tunable *sites* are found in the parent's AST: numeric and boolean literals that are the whole
value of an assignment (``lr = 0.01``, ``self.depth = 3``, ``lr: float = 1e-3``), of a keyword
argument (``LogisticRegression(C=0.01)``) or of a string-keyed dict entry (``{"C": 0.01}``).
A ``# search: ...`` comment on a site's line declares its space and makes any literal tunable::

    lr = 0.01           # search: log(1e-5, 1)          log-uniform float range
    depth = 3           # search: int(1, 12)            integer range
    frac = 0.5          # search: float(0, 1)           linear float range
    opt = "adam"        # search: ["adam", "sgd", None]  choices, any literal types

Not sites: frozen code, seeds (changing luck is not an experiment), settings that define the
evaluation (``cv``, ``test_size``, arguments of splitters and dataset makers: moving them moves
the goalposts), settings with no effect on the result (``verbose``, ``n_jobs``), positional
arguments, indices and slices, function defaults, literals inside larger expressions or strings.

A move replaces the literal's source text in place, so the rest of the file is byte-identical.
Moves are large early in the search (x10, /10; x2, //2; flips; other choices) and fine later
(x2, /2; +-1 or x1.5 for big ints; small steps inside declared ranges). Declared sites come first,
then sites not yet moved on the path; after a kept move, going on the same way is tried first
(a pattern search). A failed move is debugged by bisecting it. Choices are seeded by
``seed:parent:number of children``, so proposals are deterministic and survive a resume without
hidden state. Site ids combine scope, call and name with an occurrence index, not the line, so
they stay valid across the tree even where another proposer shifted lines.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import math
import random
import re
import tokenize
from typing import Any

from ..core.source import is_seed_name, parse, seed_aliases
from ..core.node import Node, Operator
from ..core.protocol import frozen_spans
from ._base import Context, Proposal, Proposer

__all__ = ["MutateProposer", "Move", "Site", "Spec", "find_sites", "site_moves"]

# Names whose value defines the evaluation protocol, or the run's budget: never tuned.
PROTOCOL_NAMES = frozenset(
    "cv n_splits n_repeats n_folds folds test_size train_size val_size valid_size validation_size "
    "test_split val_split validation_split holdout time_budget timeout time_limit max_time budget "
    "n_samples".split()
)
# Names that change speed or logging, not the result: tuning them wastes runs.
NO_EFFECT_NAMES = frozenset(
    "verbose verbosity n_jobs num_workers workers nthread nthreads n_threads num_threads thread_count "
    "pin_memory persistent_workers prefetch_factor non_blocking copy copy_x disp silent quiet "
    "log_interval log_every print_every save_every eval_every logging_steps save_steps precision dpi "
    "flush".split()
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

DECLARED_TIER = 0.85  # chance of moving a declared site when declared and undeclared moves remain
_SEARCH_COMMENT = re.compile(r"\bsearch:\s*(.+?)\s*$")


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


@dataclasses.dataclass(frozen=True)
class Site:
    """One tunable literal: where it is (char offsets ``start:end``) and what it holds."""

    id: str
    name: str
    value: Any
    text: str
    line: int
    start: int
    end: int
    kind: str  # float | int | bool (undeclared), or the declared spec's kind
    spec: Spec | None = None

    @property
    def declared(self) -> bool:
        return self.spec is not None

    def apply(self, code: str, text: str) -> str:
        """``code`` with this literal's source replaced by ``text``; nothing else changes."""
        return code[: self.start] + text + code[self.end :]


@dataclasses.dataclass(frozen=True)
class Move:
    """One candidate change of a site: a label like ``x10``, the new source text and value."""

    label: str
    text: str
    value: Any
    scale: str  # "large", "fine" or "choice"


# ---- finding sites ---------------------------------------------------------------------------


def _parse_spec(text: str) -> Spec | None:
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return None
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        try:
            choices = tuple(ast.literal_eval(e) for e in node.elts)
        except ValueError:
            return None
        return Spec("choice", choices=choices) if len(choices) >= 2 else None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 2):
        return None
    kind = node.func.id
    try:
        lo, hi = (ast.literal_eval(a) for a in node.args)
    except ValueError:
        return None
    if kind not in ("log", "float", "int") or not all(_is_number(x) for x in (lo, hi)) or not lo < hi:
        return None
    if kind == "log" and lo <= 0:
        return None
    if kind == "int" and not (float(lo).is_integer() and float(hi).is_integer()):
        return None
    return Spec(kind, int(lo) if kind == "int" else lo, int(hi) if kind == "int" else hi)


def _search_comments(code: str) -> dict[int, Spec]:
    out: dict[int, Spec] = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type == tokenize.COMMENT:
                match = _SEARCH_COMMENT.search(tok.string)
                spec = _parse_spec(match.group(1)) if match else None
                if spec is not None:
                    out[tok.start[0]] = spec
    except (tokenize.TokenError, SyntaxError):
        pass
    return out


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    if isinstance(node, ast.Call):
        return f"{_dotted(node.func)}()"
    return "?"


def _plain_literal(node: ast.AST) -> tuple[bool, Any]:
    """(True, value) for a number or bool literal, including ``-0.5``; else (False, None)."""
    if isinstance(node, ast.Constant) and (isinstance(node.value, bool) or _is_number(node.value)):
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


class _Collector(ast.NodeVisitor):
    """Walks the module and records candidate (value node, scope, where, name, key) in order."""

    def __init__(self, aliases: set[str]) -> None:
        self.scope: list[str] = []
        self.aliases = aliases
        self.found: list[tuple[ast.expr, str, str, str]] = []
        self.owners: dict[int, str] = {}  # id(dict node) -> what it is assigned or passed to

    def _add(self, value: ast.expr, where: str, name: str, key: str) -> None:
        low = key.lower()
        if is_seed_name(key) or key in self.aliases or low in PROTOCOL_NAMES or low in NO_EFFECT_NAMES:
            return
        self.found.append((value, ".".join(self.scope), where, name))

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
        if isinstance(target, (ast.Name, ast.Attribute)):
            key = target.id if isinstance(target, ast.Name) else target.attr
            self._add(value, "", ast.unparse(target), key)
        elif isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant):
            if isinstance(target.slice.value, str):  # params["C"] = 0.1, never x[3] = ...
                self._add(value, "", ast.unparse(target), target.slice.value)

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
            for kw in node.keywords:
                if kw.arg is not None:
                    self.owners[id(kw.value)] = kw.arg
                    self._add(kw.value, f"{callee}().", kw.arg, kw.arg)
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        owner = self.owners.get(id(node), "dict")
        for key, value in zip(node.keys, node.values):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                self.owners[id(value)] = f"{owner}[{key.value!r}]"
                self._add(value, "", f"{owner}[{key.value!r}]", key.value)
        self.generic_visit(node)


def find_sites(code: str) -> list[Site]:
    """The tunable sites of ``code`` in source order (empty if it does not parse)."""
    try:
        tree = parse(code)
    except SyntaxError:
        return []
    collector = _Collector(seed_aliases(tree))
    collector.visit(tree)
    frozen = [(a + 1, b + 1) for a, b in frozen_spans(code)]
    specs = _search_comments(code)
    starts = _line_starts(code)

    def offset(lineno: int, col: int) -> int:
        line = code[starts[lineno] : starts[lineno + 1] if lineno + 1 < len(starts) else len(code)]
        return starts[lineno] + len(line.encode("utf-8")[:col].decode("utf-8", errors="replace"))

    # A ``# search:`` comment belongs to the last candidate that ends on its line.
    last_on_line: dict[int, int] = {}
    for i, (value, *_rest) in enumerate(collector.found):
        last_on_line[value.end_lineno or value.lineno] = i
    sites: list[tuple[int, Site]] = []
    for i, (value, scope, where, name) in enumerate(collector.found):
        first, last = value.lineno, value.end_lineno or value.lineno
        if any(a <= last and first <= b for a, b in frozen):
            continue
        spec = specs.get(last) if last_on_line.get(last) == i else None
        plain, val = _plain_literal(value)
        if spec is not None and not plain:
            try:
                val = ast.literal_eval(value)
            except ValueError:
                spec = None
            else:
                plain = True
        if not plain:
            continue
        if spec is not None and spec.kind != "choice" and not (
            _is_number(val) and (spec.kind != "int" or isinstance(val, int))
        ):
            spec = None
            if not (_is_number(val) or isinstance(val, bool)):
                continue
        kind = spec.kind if spec else "bool" if isinstance(val, bool) else type(val).__name__
        start = offset(value.lineno, value.col_offset)
        end = offset(last, value.end_col_offset or 0)
        label = f"{scope}/{where}{name}"
        sites.append((start, Site(label, name, val, code[start:end], first, start, end, kind, spec)))
    sites.sort(key=lambda pair: pair[0])
    seen: dict[str, int] = {}
    out: list[Site] = []
    for _, site in sites:
        k = seen.get(site.id, 0)
        seen[site.id] = k + 1
        out.append(dataclasses.replace(site, id=f"{site.id}#{k}"))
    return out


# ---- moves -----------------------------------------------------------------------------------


def _fmt_float(x: float, like: str) -> str:
    """A readable float literal (4 significant digits), in e-notation if ``like`` used it."""
    y = float(f"{x:.4g}")
    if "e" in like.lower() and y != 0:
        mantissa, exp = f"{y:.3e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        text = f"{mantissa}e{int(exp)}"
        return text if float(text) == y else repr(y)
    return repr(y)


def _fmt_value(value: Any, like: str) -> str:
    if isinstance(value, float) and not isinstance(value, bool):
        return _fmt_float(value, like)
    if isinstance(value, str) and like[:1] == '"' and '"' not in value and "\\" not in value:
        return '"' + value + '"'  # keep the script's quote style
    return repr(value)


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def _range_moves(site: Site, v: float, early: bool) -> list[tuple[str, Any, str]]:
    spec = site.spec
    assert spec is not None
    if spec.kind == "log":
        if v <= 0:
            return []
        return _scaled(v, early)
    if spec.kind == "int":
        step, scale = (max(1, int((spec.hi - spec.lo) // 4)), "large") if early else (1, "fine")
        return [(f"+{step}", int(v) + step, scale), (f"-{step}", int(v) - step, scale)]
    delta = (spec.hi - spec.lo) / (4 if early else 20)
    text, scale = f"{delta:.4g}", "large" if early else "fine"
    return [(f"+{text}", v + delta, scale), (f"-{text}", v - delta, scale)]


def _plain_moves(site: Site, v: Any, early: bool) -> list[tuple[str, Any, str]]:
    if isinstance(v, int):
        if v < 0:  # negative ints are sentinels (n_jobs=-1, max_depth=-1): leave them
            return []
        if v == 0:
            return [("+1", 1, "fine")]
        floor = 1
        if early:
            return [("x2", v * 2, "large"), ("//2", max(floor, v // 2), "large")]
        if v < 10:
            return [("+1", v + 1, "fine"), ("-1", max(floor, v - 1), "fine")]
        return [("x1.5", round(v * 1.5), "fine"), ("/1.5", max(floor, round(v / 1.5)), "fine")]
    if v == 0:
        return []
    return _scaled(v, early)


def _scaled(v: float, early: bool) -> list[tuple[str, Any, str]]:
    pairs = [("x10", 10.0), ("/10", 0.1)] if early else [("x2", 2.0), ("/2", 0.5)]
    return [(label, v * f, "large" if early else "fine") for label, f in pairs]


def _finest_moves(site: Site) -> list[tuple[str, Any, str]]:
    """x1.5 and /1.5 for floats and log ranges: offered at a parent only once every other move
    there was tried, so a hill climb can settle between the values that halving and doubling reach."""
    v = site.value
    if isinstance(v, bool) or not isinstance(v, float) or v == 0:
        return []
    if site.spec is not None and (site.spec.kind != "log" or v < 0):
        return []
    return [("x1.5", v * 1.5, "fine"), ("/1.5", v / 1.5, "fine")]


def site_moves(site: Site, *, early: bool, finest: bool = False) -> list[Move]:
    """The moves of a site for a phase (or the finest tier, after both phases); no-ops and moves
    leaving a declared range are dropped."""
    v = site.value
    if finest:
        raw_finest = _finest_moves(site)
        if not raw_finest:
            return []
    if site.kind == "choice":
        assert site.spec is not None
        return [
            Move(f"={c!r}", _fmt_value(c, site.text), c, "choice")
            for c in site.spec.choices
            if not _same(c, v)
        ]
    if site.kind == "bool":
        return [Move("flip", repr(not v), not v, "choice")]
    if finest:
        raw = raw_finest
    else:
        raw = _range_moves(site, v, early) if site.spec else _plain_moves(site, v, early)
    out: list[Move] = []
    for label, new, scale in raw:
        if isinstance(new, float) and not math.isfinite(new):
            continue
        text = str(new) if isinstance(new, int) else _fmt_float(new, site.text)
        new = int(text) if isinstance(new, int) else float(text)
        spec = site.spec
        if spec and not spec.lo - 1e-12 * abs(spec.lo) <= new <= spec.hi + 1e-12 * abs(spec.hi):
            continue
        if text == site.text or new == v or any(m.text == text for m in out):
            continue
        out.append(Move(label, text, new, scale))
    return out


def _bisect(site: Site, failed: Any) -> Any:
    """The value half-way between a site's good value and a failed one, or None."""
    good = site.value
    if not (_is_number(good) and _is_number(failed)) or site.kind in ("bool", "choice"):
        return None
    if site.kind == "int" or (isinstance(good, int) and isinstance(failed, int)):
        mid = round((good + failed) / 2)
        return None if mid in (good, failed) else int(mid)
    if good > 0 and failed > 0 and site.kind in ("log", "float") and (site.kind == "log" or not site.spec):
        mid = math.sqrt(good * failed)
    else:
        mid = (good + failed) / 2
    return float(mid)


# ---- the proposer ----------------------------------------------------------------------------


def _mutate_meta(node: Node) -> dict[str, Any] | None:
    meta = node.meta.get("mutate") if isinstance(node.meta, dict) else None
    return meta if isinstance(meta, dict) and "site" in meta else None


def _direction(label: str) -> str | None:
    return "up" if label[:1] in ("x", "+") else "down" if label[:1] in ("/", "-") else None


def _momentum(parent: Node) -> tuple[str, str] | None:
    """(site, direction) of the parent's own move if it was kept: going on that way is the most
    promising next step of a hill climb (a pattern search), so it is tried first most of the time."""
    meta = _mutate_meta(parent)
    if not parent.kept or meta is None:
        return None
    direction = _direction(str(meta.get("move", "")))
    return (meta["site"], direction) if direction else None


class MutateProposer(Proposer):
    """Offline proposer: one literal mutation per node, deterministic for a given seed."""

    name = "mutate"
    operators = frozenset({Operator.IMPROVE, Operator.DEBUG})

    def __init__(self, *, seed: int = 0) -> None:
        self.reseed_rng(seed)

    def reseed_rng(self, seed: int) -> None:
        self._seed = seed

    def propose(self, *, context: Context) -> Proposal | None:
        """A one-literal change of ``context.parent``; None when nothing is left to try there."""
        if context.operator is Operator.DEBUG:
            return self._debug(context)
        if context.operator is not Operator.IMPROVE:
            return None
        return self._improve(context)

    def _usable(self, context: Context, code: str) -> bool:
        return not context.is_known(code) and context.protocol.frozen_violation(code) is None

    def _improve(self, context: Context) -> Proposal | None:
        parent, tree = context.parent, context.tree
        sites = {s.id: s for s in find_sites(parent.code)}
        kids = tree.kids(parent.id)
        tried: set[tuple[str, str]] = set()
        for kid in kids:
            meta = _mutate_meta(kid)
            if meta:  # a move counts as tried by its label and by the value it wrote
                tried.add((meta["site"], "move:" + str(meta.get("move"))))
                tried.add((meta["site"], "new:" + str(meta.get("new"))))
        tried_here = {site for site, _ in tried}
        on_path = {m["site"] for n in tree.path(parent.id)[1:] if (m := _mutate_meta(n))}
        momentum = _momentum(parent)
        rng = random.Random(f"{self._seed}:{parent.id}:{len(kids)}")
        # This phase's moves, then the other phase's, then the finest tier.
        for early, finest in ((context.early, False), (not context.early, False), (False, True)):
            pool: dict[str, list[Move]] = {}
            for sid, site in sites.items():
                moves = [
                    m for m in site_moves(site, early=early, finest=finest)
                    if (sid, "move:" + m.label) not in tried and (sid, "new:" + m.text) not in tried
                ]
                if moves:
                    pool[sid] = moves
            while pool:
                sid = self._pick_site(rng, pool, sites, tried_here, on_path, momentum)
                moves = pool[sid]
                ahead = [i for i, m in enumerate(moves) if momentum == (sid, _direction(m.label))]
                move = moves.pop(ahead[0] if ahead else rng.randrange(len(moves)))
                if not pool[sid]:
                    del pool[sid]
                site = sites[sid]
                code = site.apply(parent.code, move.text)
                if self._usable(context, code):
                    return self._proposal(context, site, move, code, early)
        return None

    @staticmethod
    def _pick_site(
        rng: random.Random,
        pool: dict[str, list[Move]],
        sites: dict[str, Site],
        tried_here: set[str],
        on_path: set[str],
        momentum: tuple[str, str] | None,
    ) -> str:
        """Declared sites first (most of the time), then spread: sites not moved on this path and
        not tried at this parent weigh more; the site of the parent's kept move weighs most."""
        declared = [sid for sid in pool if sites[sid].declared]
        plain = [sid for sid in pool if not sites[sid].declared]
        if declared and plain:
            ids = declared if rng.random() < DECLARED_TIER else plain
        else:
            ids = declared or plain
        weights = [
            (9 if momentum and sid == momentum[0] else 3 if sid not in on_path else 1)
            * (3 if sid not in tried_here else 1)
            for sid in ids
        ]
        return rng.choices(ids, weights=weights)[0]

    def _proposal(self, context: Context, site: Site, move: Move, code: str, early: bool) -> Proposal:
        if move.scale == "choice":
            why = "flip" if move.label == "flip" else "other choice"
        else:
            why = f"{move.label}, {move.scale} move {'early' if context.early else 'late'}"
        if site.spec is not None:
            why += f", declared {site.spec.describe()}"
        meta = {
            "site": site.id, "name": site.name, "move": move.label, "old": site.text, "new": move.text,
            "line": site.line, "declared": site.declared, "base": context.parent.id,
            "phase": "early" if early else "late",
        }
        return Proposal(
            operator=Operator.IMPROVE, plan=f"{site.name}: {site.text} -> {move.text} ({why})",
            code=code, meta={"mutate": meta},
        )

    def _debug(self, context: Context) -> Proposal | None:
        """Bisect a failed mutate move: the good node's code, the site half-way to the failed value."""
        failed, tree = context.parent, context.tree
        meta = _mutate_meta(failed)
        base_id = meta.get("base", failed.parent) if meta else None
        if meta is None or not isinstance(base_id, int) or base_id not in tree:
            return None
        base = tree[base_id]
        site = next((s for s in find_sites(base.code) if s.id == meta["site"]), None)
        try:
            failed_value = ast.literal_eval(str(meta.get("new")))
        except (ValueError, SyntaxError):
            return None
        mid = _bisect(site, failed_value) if site is not None else None
        if site is None or mid is None:
            return None
        text = str(mid) if isinstance(mid, int) else _fmt_float(mid, site.text)
        if text in (site.text, str(meta.get("new"))):
            return None
        code = site.apply(base.code, text)
        done = {m.get("new") for k in tree.kids(failed.id) if (m := _mutate_meta(k))}
        if text in done or not self._usable(context, code):
            return None
        new_meta = {
            "site": site.id, "name": site.name, "move": "bisect", "old": site.text, "new": text,
            "line": site.line, "declared": site.declared, "base": base.id, "failed": str(meta.get("new")),
        }
        plan = (
            f"{site.name}: {meta.get('new')} failed ({failed.status.value}); try {text}, half-way back "
            f"to {site.text} (bisect the failed move)"
        )
        return Proposal(operator=Operator.DEBUG, plan=plan, code=code, meta={"mutate": new_meta})
