"""Which literals decide the data the evaluation sees: a small dataflow over the script's AST.

A literal is a *goalpost* when its value flows, directly or through names, into

- a slice or index bound of an array outside a loop (``X[:n_split]``; minibatch slices inside a
  training loop are not the evaluation's data),
- a split / cross-validation / resampling call (``train_test_split(test_size=...)``, ``KFold(5)``,
  ``cross_val_score(..., cv=...)``, ``df.sample(frac=...)``, ``random_split``),
- a dataset constructor or loader (``make_classification(n_samples=...)``, ``load_digits(...)``,
  ``*Dataset(...)``),
- a metric function (``f1_score(..., average=...)``, ``top_k_accuracy_score(k=...)``),
- an evaluation sample count: a keyword or a name like ``test_size``, ``n_eval``, ``eval_iters``.

Names are followed through scalar expressions (``n = int(0.8 * len(X))``, ``a, b = 40, 60``,
function parameters and the arguments of local calls), not through objects: ``model =
Boosting(n_estimators=100)`` does not make 100 a goalpost when ``model`` is scored. A ``# search:``
comment on a literal's line declares it tunable and wins. The analysis is flow-insensitive and
scope-insensitive on purpose: it may protect a little too much, never a split it can see.
"""

from __future__ import annotations

import ast
import collections
import re
from typing import Any, Iterator

__all__ = ["Goalpost", "describe_change", "goalposts", "protected_literals"]

Site = tuple[int, int]  # (lineno, col_offset) of a literal, as ast reports them

_SEARCH = re.compile(r"#\s*search:")
_SPLIT_KW = {
    "train_test_split": ({"test_size", "train_size", "stratify", "shuffle"}, ()),
    "cross_val_score": ({"cv", "scoring"}, ()),
    "cross_validate": ({"cv", "scoring"}, ()),
    "cross_val_predict": ({"cv"}, ()),
    "learning_curve": ({"cv", "scoring", "train_sizes"}, ()),
    "validation_curve": ({"cv", "scoring"}, ()),
    "permutation_test_score": ({"cv", "scoring", "n_permutations"}, ()),
    "GridSearchCV": ({"cv", "scoring", "refit"}, ()),
    "RandomizedSearchCV": ({"cv", "scoring", "refit"}, ()),
    "HalvingGridSearchCV": ({"cv", "scoring"}, ()),
    "HalvingRandomSearchCV": ({"cv", "scoring"}, ()),
    "resample": ({"n_samples", "replace", "stratify"}, ()),
    "sample": ({"n", "frac", "replace"}, (0,)),
    "head": ({"n"}, (0,)),
    "tail": ({"n"}, (0,)),
    "nlargest": ({"n"}, (0,)),
    "random_split": ({"lengths"}, (1,)),
    "Subset": ({"indices"}, (1,)),
    "array_split": ({"indices_or_sections"}, (1,)),
    "split": ({"indices_or_sections", "test_size", "train_size"}, ()),
    "take": ({"indices"}, ()),
    "choice": ({"size", "replace"}, (1,)),
    "permutation": (set(), ()),
    "cv": ({"nfold", "folds", "metrics", "stratified"}, ()),  # xgboost.cv / lightgbm.cv
}
_SPLITTER = re.compile(r"(KFold|Split|LeaveOneOut|LeavePOut|LeaveOneGroupOut|LeavePGroupsOut|PredefinedSplit)$")
_DATA_CALL = re.compile(r"^(make_\w+|load_\w+|fetch_\w+|\w*Dataset)$")
_METRIC_CALL = re.compile(
    r"^(\w+_score|\w+_error|\w+_loss|\w+_deviance|log_loss|hinge_loss|brier_score_loss|"
    r"accuracy|precision|recall|f1|auc|roc_curve|precision_recall_curve|confusion_matrix|"
    r"classification_report|dcg_score|ndcg_score|top_k_accuracy_score)$"
)
_EVAL_NAME = re.compile(
    r"^(?:n_?|num_?)?(?:test|val|valid|validation|eval|evaluation|holdout|heldout)"
    r"(?:_(?:size|samples|split|frac|fraction|ratio|iters|steps|batches|count|n|points|examples))?$"
    r"|^(?:cv|n_splits|n_folds|nfold|folds|train_size|test_size|validation_split)$",
    re.IGNORECASE,
)
_SEEDISH = re.compile(r"seed|random_?state|verbose|n_jobs", re.IGNORECASE)
_SCALAR_CALLS = frozenset(
    {"int", "float", "round", "len", "min", "max", "abs", "floor", "ceil", "sum", "range", "slice", "arange",
     "linspace", "int32", "int64", "float32", "float64", "sqrt", "log", "exp", "pow"}
)


def _last(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _key(node: ast.AST) -> str | None:
    """A name-like target as text: ``n``, ``args.n_split``, ``cfg["test_size"]``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _key(node.value)
        return f"{inner}.{node.attr}" if inner else None
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
        inner = _key(node.value)
        return f"{inner}[{node.slice.value!r}]" if inner else None
    return None


def _targets(node: ast.AST) -> Iterator[str]:
    if isinstance(node, (ast.Tuple, ast.List)):
        for elt in node.elts:
            yield from _targets(elt)
    elif isinstance(node, ast.Starred):
        yield from _targets(node.value)
    else:
        key = _key(node)
        if key:
            yield key


class Goalpost(tuple[str, Any]):
    """(kind, value) of one protected literal; line-free, so moving code does not change it."""

    __slots__ = ()


class _Collector(ast.NodeVisitor):
    """One pass: name definitions, function parameters, and the sink expressions with their kind."""

    def __init__(self) -> None:
        self.defs: dict[str, list[ast.AST]] = collections.defaultdict(list)
        self.sinks: list[tuple[str, ast.AST]] = []
        self.funcs: dict[str, ast.arguments] = {}
        self.calls: list[ast.Call] = []
        self._loops = 0

    # leaves: nothing below them can be a sink (skipping them is most of the speed)
    def visit_Constant(self, node: ast.AST) -> None:
        return None

    visit_Name = visit_Constant
    visit_JoinedStr = visit_Constant  # f-strings format output, they never cut data

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.visit(node.value)

    def generic_visit(self, node: ast.AST) -> None:
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        self.visit(item)
            elif isinstance(value, ast.AST):
                self.visit(value)

    # definitions
    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._define(target, node.value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._define(node.target, node.value)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._define(node.target, node.value)
        self.generic_visit(node)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self._define(node.target, node.value)
        self.generic_visit(node)

    def _define(self, target: ast.AST, value: ast.AST) -> None:
        if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)) and len(
            target.elts
        ) == len(value.elts):
            for t, v in zip(target.elts, value.elts):
                self._define(t, v)
            return
        for key in _targets(target):
            self.defs[key].append(value)
            if _EVAL_NAME.match(key.rsplit(".", 1)[-1]) and not self._loops:
                self.sinks.append((f"evaluation count {key}", value))

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.funcs[node.name] = node.args
        args = node.args
        positional = [*args.posonlyargs, *args.args]
        for arg, default in zip(positional[len(positional) - len(args.defaults):], args.defaults):
            self.defs[arg.arg].append(default)
        for arg, kw_default in zip(args.kwonlyargs, args.kw_defaults):
            if kw_default is not None:
                self.defs[arg.arg].append(kw_default)
        loops, self._loops = self._loops, 0  # a function body runs when called, not per iteration
        self.generic_visit(node)
        self._loops = loops

    visit_AsyncFunctionDef = visit_FunctionDef

    # loops: slices inside them are minibatches, not the evaluation's data
    def _loop(self, node: ast.AST) -> None:
        self._loops += 1
        self.generic_visit(node)
        self._loops -= 1

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self._define(node.target, node.iter)
        self.visit(node.iter)
        self._loops += 1
        for stmt in [node.target, *node.body, *node.orelse]:
            self.visit(stmt)
        self._loops -= 1

    visit_AsyncFor = visit_For
    visit_While = _loop
    visit_ListComp = _loop
    visit_SetComp = _loop
    visit_DictComp = _loop
    visit_GeneratorExp = _loop

    # sinks
    def visit_Subscript(self, node: ast.Subscript) -> None:
        if not self._loops and _key(node) is None:
            parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            for part in parts:
                if isinstance(part, ast.Slice):
                    for bound in (part.lower, part.upper, part.step):
                        if bound is not None:
                            self.sinks.append(("slice bound", bound))
                else:
                    self.sinks.append(("index", part))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        name = _last(node.func)
        self.calls.append(node)
        if name:
            spec = _SPLIT_KW.get(name)
            if spec is None and _SPLITTER.search(name):
                spec = ({"n_splits", "n_repeats", "test_size", "train_size", "p", "n_groups", "gap",
                         "max_train_size", "shuffle"}, (0,))
            whole = spec is None and (_DATA_CALL.match(name) or _METRIC_CALL.match(name))
            for i, arg in enumerate(node.args):
                if whole or (spec and i in spec[1]):
                    self.sinks.append((f"{name}(argument {i + 1})", arg))
            for kw in node.keywords:
                if kw.arg is None or _SEEDISH.search(kw.arg):
                    continue
                if whole or (spec and kw.arg in spec[0]) or _EVAL_NAME.match(kw.arg):
                    self.sinks.append((f"{name}({kw.arg}=)", kw.value))
        self.generic_visit(node)


class _Flow:
    """Literal sites reaching an expression through scalar definitions."""

    def __init__(self, collector: _Collector) -> None:
        self.defs = collector.defs
        for call in collector.calls:  # arguments of local functions flow into their parameters
            args = collector.funcs.get(call.func.id) if isinstance(call.func, ast.Name) else None
            if args is None:
                continue
            names = [a.arg for a in [*args.posonlyargs, *args.args]]
            for name, value in zip(names, call.args):
                self.defs[name].append(value)
            for kw in call.keywords:
                if kw.arg:
                    self.defs[kw.arg].append(kw.value)
        self._memo: dict[str, tuple[ast.AST, ...]] = {}

    def literals(self, expr: ast.AST, seen: frozenset[str] = frozenset()) -> list[ast.AST]:
        if isinstance(expr, ast.Constant):
            return [] if expr.value is None or expr.value is Ellipsis else [expr]
        if isinstance(expr, ast.UnaryOp) and isinstance(expr.operand, ast.Constant):
            return [expr]
        key = _key(expr)
        if key is not None:
            return list(self._resolve(key, seen))
        if isinstance(expr, ast.Call):
            name = _last(expr.func)
            if name not in _SCALAR_CALLS:
                return []
            children: list[ast.AST] = [*expr.args, *(k.value for k in expr.keywords)]
        elif isinstance(expr, (ast.BinOp, ast.UnaryOp, ast.BoolOp, ast.Compare, ast.IfExp, ast.Tuple,
                               ast.List, ast.Set, ast.Starred, ast.Slice, ast.JoinedStr, ast.FormattedValue)):
            children = list(ast.iter_child_nodes(expr))
        else:
            return []
        out: list[ast.AST] = []
        for child in children:
            out.extend(self.literals(child, seen))
        return out

    def _resolve(self, key: str, seen: frozenset[str]) -> tuple[ast.AST, ...]:
        if key in self._memo:
            return self._memo[key]
        if key in seen:
            return ()
        found: list[ast.AST] = []
        for value in self.defs.get(key, ()):
            found.extend(self.literals(value, seen | {key}))
        result = tuple(dict.fromkeys(found))
        if not seen:
            self._memo[key] = result
        return result


def _value(lit: ast.AST) -> object:
    if isinstance(lit, ast.Constant):
        return lit.value
    try:
        return ast.literal_eval(lit)
    except (ValueError, SyntaxError, TypeError):
        return ast.unparse(lit)


_CACHE: collections.OrderedDict[str, tuple[tuple[Site, str, object, int, bool], ...]] = collections.OrderedDict()
_CACHE_SIZE = 256


def _analyse(code: str, tree: ast.Module | None = None) -> tuple[tuple[Site, str, object, int, bool], ...]:
    """(site, kind, value, line, primary) per protected literal, in source order (``primary`` is
    False for the operand of a negated literal); SyntaxError if unparsable. ``tree`` is the
    script already parsed (the guard parses once), cached by ``code``."""
    found = _CACHE.get(code)
    if found is None:
        found = _CACHE[code] = _analyse_tree(code, tree if tree is not None else ast.parse(code))
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return found


_analyse.cache_clear = _CACHE.clear  # type: ignore[attr-defined]


def _analyse_tree(code: str, tree: ast.Module) -> tuple[tuple[Site, str, object, int, bool], ...]:
    collector = _Collector()
    collector.visit(tree)
    flow = _Flow(collector)
    tunable = {i + 1 for i, line in enumerate(code.splitlines()) if _SEARCH.search(line)}
    out: dict[Site, tuple[str, object, int, bool]] = {}
    for kind, expr in collector.sinks:
        for lit in flow.literals(expr):
            line, col = getattr(lit, "lineno", 0), getattr(lit, "col_offset", 0)
            if line in tunable:
                continue
            if kind == "index" and not isinstance(_value(lit), int):
                continue  # d["key"]: a name, not a position in the data
            out.setdefault((line, col), (kind, _value(lit), getattr(expr, "lineno", 0), True))
            if isinstance(lit, ast.UnaryOp):
                out[(lit.operand.lineno, lit.operand.col_offset)] = (kind, _value(lit), getattr(expr, "lineno", 0), False)
    return tuple((site, *rest) for site, rest in sorted(out.items()))


def protected_literals(code: str) -> dict[Site, str]:
    """``{(lineno, col_offset): why}`` for every literal that decides what data the evaluation sees.

    Positions are those of ``ast.Constant`` nodes (for ``-1`` both the ``UnaryOp`` and its
    operand). Empty when ``code`` does not parse. A proposer must not change these literals; the
    guard refuses proposals that do.
    """
    try:
        found = _analyse(code)
    except (SyntaxError, ValueError, RecursionError):
        return {}
    return {site: f"flows into {kind} (line {line})" for site, kind, _, line, _ in found}


def goalposts(code: str, tree: ast.Module | None = None) -> collections.Counter[Goalpost]:
    """The multiset of (sink kind, value) over the protected literals: equal for two scripts iff
    they agree on what data the evaluation sees, as far as the dataflow can tell."""
    try:
        found = _analyse(code, tree)
    except (SyntaxError, ValueError, RecursionError):
        return collections.Counter()
    return collections.Counter(Goalpost((kind, repr(value))) for _, kind, value, _, primary in found if primary)


def describe_change(parent: str, code: str, tree: ast.Module | None = None) -> str | None:
    """None when both scripts give the evaluation the same data, else one line naming the change.

    A change of number literals only (what ``mutate`` proposes) is judged against the parent's
    protected sites without analysing the new script: the flows are the same, only values moved.
    """
    from .changes import literal_edits

    edits = literal_edits(parent, code)
    if edits is not None:
        protected = protected_literals(parent)
        for line, col, old, new in edits:
            why = protected.get((line, col))
            if why is not None:
                kind = why.removeprefix("flows into ").rsplit(" (line", 1)[0]
                return f"{kind}: {old} -> {new}"
        return None
    before, after = goalposts(parent), goalposts(code, tree)
    if before == after:
        return None
    gone = before - after
    added = after - before
    if gone and added:
        (kind, was), (_, value) = next(iter(gone)), next(iter(added))
        return f"{kind}: {was} -> {value}"
    if gone:
        kind, was = next(iter(gone))
        return f"{kind} {was} removed"
    kind, value = next(iter(added))
    return f"new {kind} {value}"
