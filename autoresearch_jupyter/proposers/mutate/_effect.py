"""Which literals cannot move the metric, so the offline proposer does not spend nodes on them.

Two kinds, both read from the AST (about 1 ms per distinct script, cached; nothing runs):

- **After the metric.** The statement that emits the metric (a ``print``/``logging`` call whose
  text holds the metric's name, or ``report(name=...)``) is found; statements after it in the
  same module body, or in the body of a function called once at module level, run after the
  number was printed. A metric printed inside a loop makes nothing dead (later statements run
  before the next print).
- **Output calls.** Literals inside plotting, display and file-output calls: anything called
  through a name imported from matplotlib, seaborn, plotly, bokeh, altair or logging (and names
  bound from such calls, ``fig, ax = plt.subplots()``), pandas ``.plot``/``.hist``/``.to_*``,
  ``print``, ``display``, loggers' ``info``/``debug``/... A plain name assigned a literal that is
  read only in such places is inert too (``bins = 30`` used by ``plt.hist(x, bins=bins)``).

The baseline's own run would tell exactly which lines ran before its metric line, but only at
the price of tracing every line of a node; the AST answer is free and right for the usual shapes
(plots and exports after the final score).
"""

from __future__ import annotations

import ast
import functools

from ._sites import Site, _offsets

OUTPUT_MODULES = ("matplotlib", "seaborn", "plotly", "bokeh", "altair", "logging", "pprint")
OUTPUT_FUNCS = frozenset({"print", "display", "pprint", "plot"})
OUTPUT_METHODS = frozenset(
    "plot hist boxplot scatter_matrix to_csv to_json to_parquet to_excel to_html to_latex to_markdown "
    "to_pickle to_string to_clipboard to_feather to_hdf to_sql to_stata savefig".split()
)
LOGGER_NAMES = frozenset({"logger", "log", "LOGGER", "LOG", "_logger", "_log"})
LOG_METHODS = frozenset({"debug", "info", "warning", "warn", "error", "exception", "critical", "log"})


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _names(target: ast.AST) -> list[str]:
    return [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]


class _Outputs:
    """Names that are output objects: module aliases and what output calls returned."""

    def __init__(self, tree: ast.Module) -> None:
        self.names: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in OUTPUT_MODULES:
                        self.names.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in OUTPUT_MODULES:
                self.names.update(a.asname or a.name for a in node.names)
        for _ in range(2):  # fig, ax = plt.subplots(); ax2 = ax.twinx()
            for node in ast.walk(tree):
                if isinstance(node, (ast.Assign, ast.With)) and self._is_output_value(node):
                    targets = node.targets if isinstance(node, ast.Assign) else [
                        i.optional_vars for i in node.items if i.optional_vars is not None]
                    for target in targets:
                        self.names.update(_names(target))

    def _is_output_value(self, node: ast.Assign | ast.With) -> bool:
        values = [node.value] if isinstance(node, ast.Assign) else [i.context_expr for i in node.items]
        return any(isinstance(v, ast.Call) and self.is_output(v) for v in values)

    def is_output(self, call: ast.Call) -> bool:
        func = call.func
        root = _root(func)
        if root in self.names:
            return True
        if isinstance(func, ast.Name):
            return func.id in OUTPUT_FUNCS
        if isinstance(func, ast.Attribute):
            if func.attr in OUTPUT_METHODS or func.attr.startswith("to_") and func.attr[3:].isalpha():
                return True
            if isinstance(func.value, ast.Attribute) and func.value.attr == "plot":  # df.plot.bar(...)
                return True
            if func.attr in LOG_METHODS and root in LOGGER_NAMES:
                return True
        return False


def _emits(node: ast.AST, metric: str) -> bool:
    if not isinstance(node, ast.Call):
        return False
    if any(kw.arg == metric for kw in node.keywords):
        return True
    for sub in [*node.args, *(kw.value for kw in node.keywords)]:
        for const in ast.walk(sub):
            if isinstance(const, ast.Constant) and isinstance(const.value, str) and metric in const.value:
                return True
    return False


def _dead_after(tree: ast.Module, metric: str) -> list[tuple[int, int]]:
    """Line spans that run after the metric was emitted for the last time."""
    parents: dict[int, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[id(child)] = node
    emits = [n for n in ast.walk(tree) if _emits(n, metric)]
    if not emits:
        return []
    last = max(emits, key=lambda n: (getattr(n, "lineno", 0), getattr(n, "col_offset", 0)))
    calls: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            calls[node.func.id] = calls.get(node.func.id, 0) + 1
    spans: list[tuple[int, int]] = []
    cur: ast.AST = last
    while True:
        parent = parents.get(id(cur))
        if parent is None:
            return spans
        if isinstance(parent, (ast.For, ast.AsyncFor, ast.While, ast.comprehension, ast.Lambda)):
            return []  # emitted in a loop: later statements run before the next emission
        for field in ("body", "orelse", "finalbody"):
            body = getattr(parent, field, None)
            if isinstance(body, list) and cur in body:
                for stmt in body[body.index(cur) + 1 :]:
                    spans.append((stmt.lineno, stmt.end_lineno or stmt.lineno))
        if isinstance(parent, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if calls.get(parent.name, 0) != 1:
                return []  # called more than once (or never by name): cannot tell the order
            call_sites = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                          and isinstance(n.func, ast.Name) and n.func.id == parent.name]
            cur = call_sites[0]
            continue
        cur = parent


@functools.lru_cache(maxsize=64)
def inert_spans(code: str, metric: str) -> tuple[tuple[tuple[int, int], ...], frozenset[str]]:
    """(char spans of output calls and of code after the metric, names assigned literals that
    only those spans read)."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return (), frozenset()
    offset = _offsets(code)
    outputs = _Outputs(tree)
    spans = [
        (offset(n.lineno, n.col_offset), offset(n.end_lineno or n.lineno, n.end_col_offset or 0))
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and outputs.is_output(n) and not _emits(n, metric)
    ]
    lines = code.count("\n") + 2
    spans += [(offset(a, 0), offset(min(b + 1, lines - 1), 0) if b + 1 < lines else len(code))
              for a, b in _dead_after(tree, metric)]

    def inside(node: ast.AST) -> bool:
        pos = offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        return any(a <= pos < b for a, b in spans)

    loads: dict[str, list[bool]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            loads.setdefault(node.id, []).append(inside(node))
    names = frozenset(name for name, where in loads.items() if where and all(where))
    return tuple(spans), names


def is_inert(code: str, metric: str, site: Site) -> bool:
    """True if changing ``site`` cannot change the metric (see the module docstring)."""
    spans, names = inert_spans(code, metric)
    if any(a <= site.start < b for a, b in spans):
        return True
    return not site.callee and site.name.isidentifier() and site.name in names
