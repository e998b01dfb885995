"""What the mutate proposer takes from earlier runs' lessons (``core/lessons.py``).

Lessons name a change by its literal *key*; the proposer names it by its own site id. The two
meet at the literal's place in this run's baseline. From each earlier run the proposer takes:

* **prior trials** (only where the protocol matches: metric values mean nothing under another
  metric or other data): each earlier observation re-expressed on this baseline
  (``prior_scripts``), its site values parsed with the proposer's own site finder, and each
  earlier failure's change written into the baseline as a failed trial (timeouts aside), at most
  ``MAX_PRIORS`` of them, picked the same way in every session (a resumed run asks the same way);
* **effects** (matching protocol only): how much a site's kept changes moved the metric, so the
  model asks about the sites that mattered before;
* **domains** (whatever the protocol): a value at or beyond which a site failed is out of its
  valid range (timeouts aside: a slower value may fit another time budget).
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from typing import Any, Iterable, Mapping

from ...core import lessons as L
from ._domains import Bounds
from ._knowledge import Knowledge

MAX_PRIORS = 200


@dataclasses.dataclass(frozen=True)
class Priors:
    """Earlier runs' facts in the proposer's terms (site ids)."""

    observations: tuple[tuple[int, dict[str, Any], float | None], ...] = ()  # ids < 0: never a node's
    effects: dict[str, float] = dataclasses.field(default_factory=dict)
    bounds: dict[str, Bounds] = dataclasses.field(default_factory=dict)


def key_sites(know: Knowledge, code: str) -> dict[str, str]:
    """Lesson key -> site id, for the literals of ``code`` that are sites of the proposer."""
    starts = [0] + [m.end() for m in re.finditer("\n", code)]
    by_start = {s.start: s.id for s in know.sites(code) if not s.at_default}
    out: dict[str, str] = {}
    for lit in L.literals(code) or []:
        row, col = lit.start
        if row - 1 >= len(starts):
            continue
        offset = starts[row - 1] + col
        sid = by_start.get(offset)
        if sid is None and offset > 0 and code[offset - 1] == "-":  # a negative number's site holds the sign
            sid = by_start.get(offset - 1)
        if sid is not None:
            out[lit.key] = sid
    return out


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def build(lessons: Iterable[Mapping[str, Any]], know: Knowledge, baseline: str) -> Priors:
    """The priors of ``lessons`` for a run whose baseline is ``baseline``."""
    lessons = list(lessons)
    keys = key_sites(know, baseline)
    scripts: list[tuple[str, float | None]] = list(L.prior_scripts(lessons, baseline))
    for data in lessons:  # a failure as a trial at the worst metric: the model steers away from it
        if data.get("protocol_matches") is False:
            continue
        for failed in data.get("failed", []) or []:
            if failed.get("status") == "buggy" and failed.get("changes"):
                code, made = L.apply_values(baseline, failed["changes"])
                if made:
                    scripts.append((code, None))
    if len(scripts) > MAX_PRIORS:  # the same pick in every session: not the session's seed
        keep = sorted(random.Random("mutate-priors").sample(range(len(scripts)), MAX_PRIORS))
        scripts = [scripts[i] for i in keep]
    observations = tuple((-(i + 1), know.values_of(code), metric) for i, (code, metric) in enumerate(scripts))
    effects: dict[str, float] = {}
    bounds: dict[str, Bounds] = {}
    for data in lessons:
        label = data.get("run_name") or data.get("run_id") or "an earlier run"
        if data.get("protocol_matches") is not False:
            for helped in data.get("helped", []) or []:
                effect = _num(helped.get("effect"))
                for change in helped.get("changes", []) or []:
                    sid = keys.get(str(change.get("key")))
                    if sid is not None and effect is not None:
                        effects[sid] = max(effects.get(sid, 0.0), abs(effect))
        for key, dom in (data.get("domains") or {}).items():
            sid = keys.get(str(key))
            if sid is None or not isinstance(dom, Mapping):
                continue
            name = dom.get("name", "value")
            b = Bounds()
            if (hi := _num(dom.get("fails_at_or_above"))) is not None:
                b = b.meet(Bounds(hi=hi, hi_closed=False, why=f"{name} failed at {hi:g} in run {label}"))
            if (lo := _num(dom.get("fails_at_or_below"))) is not None:
                b = b.meet(Bounds(lo=lo, lo_closed=False, why=f"{name} failed at {lo:g} in run {label}"))
            if b.why:
                bounds[sid] = bounds[sid].meet(b) if sid in bounds else b
    return Priors(observations, effects, bounds)
