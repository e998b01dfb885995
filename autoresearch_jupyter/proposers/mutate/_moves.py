"""Moves of one site: the classic hill-climb steps (x10, /10; x2, /2; +-1; flips; other choices)
and the bisection of a failed move. The model-based choice (``_model``) uses these when Optuna is
missing, and for sites it cannot model (negative numbers, zero)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from ._sites import Site, _is_number


@dataclasses.dataclass(frozen=True)
class Move:
    """One candidate change of a site: a label like ``x10``, the new source text and value."""

    label: str
    text: str
    value: Any
    scale: str  # "large", "fine" or "choice"





def fmt_float(x: float, like: str) -> str:
    """A readable float literal (4 significant digits), in e-notation if ``like`` used it."""
    y = float(f"{x:.4g}")
    if "e" in like.lower() and y != 0:
        mantissa, exp = f"{y:.3e}".split("e")
        mantissa = mantissa.rstrip("0").rstrip(".")
        text = f"{mantissa}e{int(exp)}"
        return text if float(text) == y else repr(y)
    return repr(y)


def fmt_value(value: Any, like: str) -> str:
    if isinstance(value, float) and not isinstance(value, bool):
        return fmt_float(value, like)
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
            Move(f"={c!r}", fmt_value(c, site.text), c, "choice")
            for c in site.spec.choices
            if not _same(c, v)
        ]
    if site.kind == "str" or isinstance(v, str):
        return []  # undeclared strings: the proposer offers their documented choices
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
        text = str(new) if isinstance(new, int) else fmt_float(new, site.text)
        new = int(text) if isinstance(new, int) else float(text)
        spec = site.spec
        if spec and not spec.lo - 1e-12 * abs(spec.lo) <= new <= spec.hi + 1e-12 * abs(spec.hi):
            continue
        if text == site.text or new == v or any(m.text == text for m in out):
            continue
        out.append(Move(label, text, new, scale))
    return out


def bisect(site: Site, failed: Any) -> Any:
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


