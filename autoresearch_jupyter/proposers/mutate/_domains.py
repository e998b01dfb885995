"""The domain of each site: where its values are valid, and the range worth searching.

Validity comes from, strongest first: the ``# search:`` declaration (exact); bounds learned from
the error text of failed nodes (scikit-learn's ``InvalidParameterError`` "The 'min_samples_split'
parameter ... must be an int in the range [2, inf)", xgboost's "exceed bound [0,1]", LightGBM's
"Check failed: (bagging_fraction) <= (1.0)", "x must be >= 2"); the callable's documented
constraints (scikit-learn ``Interval``); names of fractions and probabilities (``subsample``,
``*_fraction``, ``dropout``: inside (0, 1]). The search range of an undeclared number spans its
value and its library default, widened 100x each way on a log scale (8x for integers), cut to
the valid bounds.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Iterable

from ._sites import Site, _is_number

_NUM = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+|inf)"
_SKLEARN = re.compile(r"The '(\w+)' parameter of \w+ must be (.+?)\. Got")
_RANGE = re.compile(rf"(int|float|real|integer)?[^\[\(]*?([\[\(])\s*({_NUM}|-inf),\s*({_NUM})\s*([\]\)])")
_XGB = re.compile(rf"value\s+({_NUM})\s+for\s+Parameter\s+(\w+)\s+exceed\s+bound\s+\[({_NUM}),\s*({_NUM})\]")
_LGB = re.compile(rf"Check failed:\s*\(?(\w+)\)?\s*(<=|>=|<|>)\s*\(?({_NUM})\)?")
_CMP = re.compile(
    rf"['\"`]?(\w+)['\"`]?\s+(?:must|should|has to|needs to)\s+be\s+"
    rf"(>=|<=|>|<|greater than or equal to|at least|greater than|less than or equal to|at most|less than"
    rf"|positive|strictly positive|non-negative|nonnegative)\s*({_NUM})?",
    re.IGNORECASE,
)
_IN = re.compile(
    rf"['\"`]?(\w+)['\"`]?\s+(?:must|should)\s+be\s+in\s+(?:the\s+)?(?:range|interval)?\s*"
    rf"([\[\(])\s*({_NUM}|-inf),\s*({_NUM})\s*([\]\)])",
    re.IGNORECASE,
)
FRACTION = re.compile(r"fraction|subsample|colsample|(^|_)ratio$|^(p|prob|keep_prob)$|smoothing", re.IGNORECASE)
PROBABILITY = re.compile(r"dropout|^momentum$|^beta[12]?$|_prob$|^drop_rate$", re.IGNORECASE)
RATE_LIKE = re.compile(r"^(eta|lr|learning_rate|learning_rate_init|alpha|lambda|reg_\w+|l[12]_\w*|C|gamma|tol|eps)$")


@dataclasses.dataclass(frozen=True)
class Bounds:
    """Where a site's values are valid; ``why`` says who said so."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_closed: bool = True
    hi_closed: bool = True
    why: str = ""

    def ok(self, x: float) -> bool:
        above = x >= self.lo if self.lo_closed else x > self.lo
        below = x <= self.hi if self.hi_closed else x < self.hi
        return above and below

    def meet(self, other: "Bounds") -> "Bounds":
        lo, lo_c = (self.lo, self.lo_closed) if self.lo > other.lo else (other.lo, other.lo_closed)
        if self.lo == other.lo:
            lo_c = self.lo_closed and other.lo_closed
        hi, hi_c = (self.hi, self.hi_closed) if self.hi < other.hi else (other.hi, other.hi_closed)
        if self.hi == other.hi:
            hi_c = self.hi_closed and other.hi_closed
        why = "; ".join(w for w in (self.why, other.why) if w)
        return Bounds(lo, hi, lo_c, hi_c, why)

    def nearest(self, x: float, integer: bool) -> float:
        """The valid value closest to ``x`` (for a bisection that would stay on the wrong side)."""
        if self.ok(x):
            return x
        step = 1 if integer else max(abs(self.lo if x < self.lo else self.hi) * 1e-3, 1e-12)
        if x < self.lo:
            return self.lo if self.lo_closed else self.lo + step
        return self.hi if self.hi_closed else self.hi - step

    def describe(self) -> str:
        return f"{'[' if self.lo_closed else '('}{self.lo:g}, {self.hi:g}{']' if self.hi_closed else ')'}"


NONE = Bounds()


def _num(text: str) -> float:
    return float(text)


def _interval(text: str, integer: bool) -> Bounds | None:
    """The interval of an ``int in the range [2, inf) or a float in the range (0.0, 1.0]`` text
    that fits the site's type."""
    best = None
    for part in re.split(r"\bor\b|,\s*(?=an?\s)", text):
        match = _RANGE.search(part)
        if not match:
            continue
        kind = (match.group(1) or "").lower()
        b = Bounds(_num(match.group(3)), _num(match.group(4)), match.group(2) == "[", match.group(5) == "]")
        if kind.startswith("int") == integer or best is None:
            best = b
    return best


def learn(text: str, site_names: Iterable[str], integer: dict[str, bool]) -> dict[str, Bounds]:
    """Bounds that an error message states for the named parameters."""
    names = set(site_names)
    out: dict[str, Bounds] = {}

    def add(name: str, b: Bounds) -> None:
        if name in names:
            b = dataclasses.replace(b, why="error said " + b.describe())
            out[name] = out[name].meet(b) if name in out else b

    for match in _SKLEARN.finditer(text):
        b = _interval(match.group(2), integer.get(match.group(1), False))
        if b is not None:
            add(match.group(1), b)
    for match in _XGB.finditer(text):
        add(match.group(2), Bounds(_num(match.group(3)), _num(match.group(4))))
    for match in _IN.finditer(text):
        add(match.group(1), Bounds(_num(match.group(3)), _num(match.group(4)), match.group(2) == "[",
                                   match.group(5) == "]"))
    for match in _LGB.finditer(text):
        op, v = match.group(2), _num(match.group(3))
        add(match.group(1), Bounds(hi=v, hi_closed=op == "<=") if op.startswith("<") else Bounds(lo=v, lo_closed=op == ">="))
    for match in _CMP.finditer(text):
        op, bound = match.group(2).lower(), match.group(3)
        if op in ("positive", "strictly positive"):
            add(match.group(1), Bounds(lo=0.0, lo_closed=False))
        elif op in ("non-negative", "nonnegative"):
            add(match.group(1), Bounds(lo=0.0))
        elif bound is not None:
            x = _num(bound)
            if op in (">=", "greater than or equal to", "at least"):
                add(match.group(1), Bounds(lo=x))
            elif op in (">", "greater than"):
                add(match.group(1), Bounds(lo=x, lo_closed=False))
            elif op in ("<=", "less than or equal to", "at most"):
                add(match.group(1), Bounds(hi=x))
            else:
                add(match.group(1), Bounds(hi=x, hi_closed=False))
    return out


def documented(info: dict[str, Any] | None, value: Any) -> Bounds:
    """Bounds from a scikit-learn ``Interval`` constraint that fits the value's type."""
    if not info:
        return NONE
    integer = isinstance(value, int) and not isinstance(value, bool)
    fits = [iv for iv in info.get("intervals", []) if (iv[0] == "Integral") == integer]
    if not fits:
        return NONE
    kind, left, right, closed = fits[0]
    return Bounds(
        -math.inf if left is None else float(left), math.inf if right is None else float(right),
        closed in ("left", "both"), closed in ("right", "both"), why=f"documented {kind} range",
    )


def by_name(site: Site) -> Bounds:
    """Fractions and probabilities keep to (0, 1] and [0, 1) when their value is there now."""
    v = site.value
    if not _is_number(v) or not 0 < v <= 1:
        return NONE
    if FRACTION.search(site.name):
        return Bounds(0.0, 1.0, False, True, "a fraction")
    if PROBABILITY.search(site.name):
        return Bounds(0.0, 1.0, True, False, "a probability")
    return NONE


def floaty(site: Site, info: dict[str, Any] | None) -> bool:
    """An int literal that is a float in practice: ``{"eta": 1}`` among floats, a learning-rate-like
    name, or a callable whose default or constraint is a float (``C=1`` of ``SVC``)."""
    if type(site.value) is not int or site.declared:
        return False
    if site.floaty or RATE_LIKE.match(site.name):
        return True
    if info:
        default = info.get("default")
        if isinstance(default, float):
            return True
        kinds = {iv[0] for iv in info.get("intervals", [])}
        return bool(kinds) and "Integral" not in kinds
    return False


@dataclasses.dataclass(frozen=True)
class Domain:
    """The search space of one site: a float or int range (``log`` or linear) or choices."""

    kind: str  # float | int | cat
    lo: float = 0.0
    hi: float = 0.0
    log: bool = False
    choices: tuple[Any, ...] = ()
    bounds: Bounds = NONE

    def narrowed(self, around: float, factor: float) -> "Domain":
        """A smaller range around ``around`` (late in the search: refine near the best)."""
        if self.kind == "cat" or not self.lo <= around <= self.hi:
            return self
        if self.log and around > 0:
            lo, hi = around / factor, around * factor
        else:
            half = (self.hi - self.lo) / (2 * factor)
            lo, hi = around - half, around + half
        lo, hi = max(self.lo, lo), min(self.hi, hi)
        if self.kind == "int":
            lo, hi = math.floor(lo), math.ceil(hi)
        return dataclasses.replace(self, lo=lo, hi=hi) if lo < hi else self


def search_domain(site: Site, value: Any, default: Any, bounds: Bounds, choices: tuple[Any, ...]) -> Domain | None:
    """The range worth searching for ``site`` (None for numbers the model cannot place: <= 0)."""
    if site.spec is not None:
        spec = site.spec
        if spec.kind == "choice":
            return Domain("cat", choices=spec.choices)
        return Domain("int" if spec.kind == "int" else "float", spec.lo, spec.hi, spec.kind == "log")
    if choices:
        return Domain("cat", choices=choices)
    if isinstance(value, bool):
        return Domain("cat", choices=(False, True))
    if not _is_number(value) or value <= 0:
        return None
    ref = [value] + ([default] if _is_number(default) and default > 0 else [])
    if isinstance(value, int):
        lo, hi = max(1.0, min(ref) / 8), max(max(ref) * 8, min(ref) + 8)
    else:
        lo, hi = min(ref) / 100, max(ref) * 100
    if bounds.lo > -math.inf:
        edge = bounds.lo if bounds.lo_closed else bounds.lo + (1 if isinstance(value, int) else max(bounds.lo * 1e-3, 1e-9))
        lo = max(lo, edge)
    if bounds.hi < math.inf:
        edge = bounds.hi if bounds.hi_closed else bounds.hi - (1 if isinstance(value, int) else max(abs(bounds.hi) * 1e-3, 1e-9))
        hi = min(hi, edge)
    if isinstance(value, int):
        lo, hi = math.ceil(lo), math.floor(hi)
    if not lo < hi:
        return None
    log = lo > 0 and hi / lo > 4 if isinstance(value, int) else lo > 0 and hi / lo > 10
    return Domain("int" if isinstance(value, int) else "float", lo, hi, log, bounds=bounds)
