"""Constraints: bounds a node must meet to count at all, e.g. ``peak_memory<2G``, ``val_acc>=0.95``.

A constraint is part of the protocol (fixed before the first node). A node that breaks one is
``infeasible``: it keeps its record and its metric, but it is never kept and never the best.
Constraints test any metric a node has: the runner's measurements (``time``, ``peak_memory``,
``gpu_memory``, which no script output can change) and every ``name: value`` the script printed
or passed to ``report()``.

Units: sizes for ``peak_memory`` and ``gpu_memory`` take K, M, G, T (powers of 1024, as for
``--memory-limit``; an optional B or iB); ``time`` takes s, ms, min or h (seconds by default).
Other metrics are plain numbers.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import TYPE_CHECKING, Iterable, Mapping

from .errors import ConstraintError

if TYPE_CHECKING:
    from .node import Node

MEASURED = {"time": "seconds", "peak_memory": "bytes", "gpu_memory": "bytes"}
"""Metrics the runner measures for every node; a script cannot report them (the names are reserved)."""
MEASURED_NAMES = frozenset(MEASURED)
SIZE_METRICS = frozenset({"peak_memory", "gpu_memory"})

_OPS = ("<=", ">=", "<", ">")
_SHAPE = re.compile(
    r"^\s*(?P<name>[A-Za-z_][\w.\-/]*?)\s*(?P<op><=|>=|=<|=>|<|>)\s*"
    r"(?P<num>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<unit>[A-Za-z%]*)\s*$"
)
_SIZE_UNITS = {"": 1, "b": 1}
for _i, _p in enumerate("kmgt", start=1):
    for _suffix in ("", "b", "ib"):
        _SIZE_UNITS[_p + _suffix] = 1024**_i
_TIME_UNITS = {"": 1.0, "s": 1.0, "sec": 1.0, "ms": 1e-3, "min": 60.0, "h": 3600.0}
_HELP = "write NAME OP VALUE with OP one of <, <=, >, >= (e.g. peak_memory<2G, time<30, val_acc>=0.95)"


@dataclasses.dataclass(frozen=True)
class Constraint:
    """``metric op bound``: ``bound`` in the metric's own units (bytes, seconds); ``text`` as given."""

    metric: str
    op: str
    bound: float
    text: str

    def holds(self, value: float) -> bool:
        return {
            "<": value < self.bound, "<=": value <= self.bound,
            ">": value > self.bound, ">=": value >= self.bound,
        }[self.op]

    def violation(self, values: Mapping[str, float]) -> str | None:
        """Why a node with these metric values breaks this constraint; None if it meets it."""
        value = values.get(self.metric)
        if value is None:
            return f"no {self.metric} to check {self.text}"
        if not math.isfinite(value):
            return f"{self.metric} is {value}, so {self.text} does not hold"
        if self.holds(value):
            return None
        return f"{self.metric} {format_value(self.metric, value)} breaks {self.text}"


def format_value(metric: str, value: float) -> str:
    """A metric value for people: sizes in KiB/MiB/GiB, times in seconds."""
    if metric in SIZE_METRICS:
        for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
            if abs(value) >= scale:
                return f"{value / scale:.3g} {unit}"
        return f"{value:.0f} B"
    if metric == "time":
        return f"{value:.3g} s"
    return f"{value:.6g}"


def parse_constraint(text: str, *, code: str | None = None) -> Constraint:
    """One constraint from its text; ConstraintError says in one line what is wrong.

    With ``code`` (the baseline script), a name that looks like a misspelt measured metric
    (``peak_mem``) and that the script never mentions is refused with a suggestion.
    """
    if not isinstance(text, str) or not text.strip():
        raise ConstraintError(f"empty constraint: {_HELP}")
    match = _SHAPE.match(text)
    if not match:
        raise ConstraintError(f"cannot parse constraint {text.strip()!r}: {_HELP}")
    name, op, unit = match["name"], match["op"], match["unit"]
    op = {"=<": "<=", "=>": ">="}.get(op, op)
    number = float(match["num"])
    if name in SIZE_METRICS:
        scale = _SIZE_UNITS.get(unit.lower())
        if scale is None:
            raise ConstraintError(
                f"unknown unit {unit!r} in constraint {text.strip()!r}: {name} takes a size in bytes "
                "or with K, M, G or T (powers of 1024), e.g. 512M"
            )
        bound = number * scale
    elif name == "time":
        seconds = _TIME_UNITS.get(unit.lower())
        if seconds is None:
            raise ConstraintError(
                f"unknown unit {unit!r} in constraint {text.strip()!r}: time takes seconds, or s, ms, min, h"
            )
        bound = number * seconds
    else:
        _check_name(name, text.strip(), code, unit)
        bound = number
    return Constraint(metric=name, op=op, bound=bound, text="".join(text.split()))


def _check_name(name: str, text: str, code: str | None, unit: str) -> None:
    import difflib  # here: the settings (and so the magics) import this module at load

    close = difflib.get_close_matches(name, sorted(MEASURED_NAMES), n=1, cutoff=0.6)
    mentioned = code is not None and re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", code) is not None
    if unit:
        if close and not mentioned:
            raise ConstraintError(f"unknown metric {name!r} in constraint {text!r}: did you mean {close[0]}?")
        raise ConstraintError(
            f"unknown unit {unit!r} in constraint {text!r}: {name} is a plain number; only "
            "peak_memory and gpu_memory take sizes (2G) and time takes s, ms, min, h"
        )
    if close and code is not None and not mentioned:
        raise ConstraintError(
            f"unknown metric {name!r} in constraint {text!r}: did you mean {close[0]}? "
            f"(the runner measures {', '.join(MEASURED)}; other names are what the script prints)"
        )


def parse_constraints(texts: Iterable[str] | str | None, *, code: str | None = None) -> tuple[Constraint, ...]:
    """Every constraint of a run (a string may hold several, separated by commas or semicolons)."""
    if texts is None:
        return ()
    if isinstance(texts, str):
        texts = [texts]
    out: list[Constraint] = []
    for item in texts:
        if not isinstance(item, str):
            raise ConstraintError(f"a constraint must be text such as 'peak_memory<2G', got {item!r}")
        pieces = [p for p in re.split(r"[;,]", item) if p.strip()]
        if not pieces:
            raise ConstraintError(f"empty constraint: {_HELP}")
        out.extend(parse_constraint(p, code=code) for p in pieces)
    seen: dict[str, Constraint] = {}
    for c in out:
        seen.setdefault(c.text, c)
    return tuple(seen.values())


def violations(constraints: Iterable[Constraint], values: Mapping[str, float]) -> list[str]:
    """Every constraint a node's values break, as one reason each (empty: feasible)."""
    return [why for c in constraints if (why := c.violation(values)) is not None]


def uses(constraints: Iterable[Constraint]) -> set[str]:
    """The metric names the constraints test."""
    return {c.metric for c in constraints}


def ruled_out(constraints: Iterable[Constraint], nodes: Iterable["Node"]) -> list[tuple[str, int]]:
    """For each constraint, how many infeasible nodes break it (a node may break several)."""
    constraints = list(constraints)
    counts = {c.text: 0 for c in constraints}
    for node in nodes:
        if node.is_infeasible:
            values = node.values()
            for c in constraints:
                if c.violation(values) is not None:
                    counts[c.text] += 1
    return list(counts.items())
