"""Lessons from earlier runs, as the search uses them (``--learn-from RUN``).

``Learned.load`` resolves each reference (a run id, name, prefix, ``latest``, or ``auto``: the
newest earlier run of the same script), reads its ``lessons.json`` (or derives the lessons from
its journal when the run ended before writing one), and compares the protocol. The engine then
asks it, for every proposal, whether the change repeats an earlier failure (a guard-level check,
so it holds for any proposer), and once, after the baseline, for the earlier best values.

When the protocol differs (another metric or direction, frozen code or evaluation data changed),
only what does not depend on the metric is used: failures and value domains. Every reference
gives one line saying what was used and what was not; nothing here raises on bad input.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Sequence

from ..core import lessons as L
from ..core.errors import AutoResearchError
from ..core.protocol import Protocol

AUTO = "auto"


@dataclasses.dataclass
class Source:
    """One earlier run's lessons and how far they apply."""

    run_id: str
    label: str
    lessons: dict[str, Any]
    matches: bool
    differences: list[str]
    timeouts_apply: bool = True  # False when this run's time budget is larger
    path: Path | None = None  # the run folder (its node scripts)


class Learned:
    """The lessons of the runs a search learns from; counts the proposals they saved."""

    def __init__(self, sources: Sequence[Source] = (), messages: Sequence[str] = (), *,
                 code_hash: Any = None) -> None:
        self.sources = list(sources)
        self.messages = list(messages)
        self.skipped: list[dict[str, Any]] = []  # proposals not run because they repeat a failure
        self._code_hash = code_hash
        self._failed_hashes = {f.get("code_hash"): (s, f) for s in self.sources
                               for f in s.lessons.get("failed", []) if f.get("code_hash")}

    def __bool__(self) -> bool:
        return bool(self.sources)

    @property
    def run_ids(self) -> list[str]:
        return [s.run_id for s in self.sources]

    @property
    def matching(self) -> list[Source]:
        return [s for s in self.sources if s.matches]

    # ---- loading -------------------------------------------------------------------------

    @classmethod
    def load(cls, refs: Sequence[str], *, runs_dir: str | Path, protocol: Protocol, source: str | None,
             exclude: str | None = None, code_hash: Any = None, code: str | None = None) -> "Learned":
        from ..store.runs import resolve_run

        sources: list[Source] = []
        messages: list[str] = []
        for ref in dict.fromkeys(r.strip() for r in refs if r and r.strip()):
            try:
                run_dir = (_auto(runs_dir, source, exclude, code) if ref.lower() == AUTO
                           else _latest(runs_dir, exclude) if ref.lower() in ("latest", "last")
                           else resolve_run(runs_dir, ref))
            except AutoResearchError as err:
                messages.append(f"--learn-from {ref}: nothing used ({str(err).splitlines()[0]})")
                continue
            if run_dir is None:
                what = "run" if ref.lower() != AUTO else "run of this script"
                messages.append(f"--learn-from {ref}: nothing used (no earlier {what} in {runs_dir})")
                continue
            if run_dir.id == exclude:
                messages.append(f"--learn-from {ref}: nothing used (that is this run)")
                continue
            lessons, how = _read(run_dir, code_hash)
            label = run_dir.name or run_dir.id
            if lessons is None:
                messages.append(f"--learn-from {ref}: nothing used from run {label} ({how})")
                continue
            diffs = L.protocol_differences(lessons.get("protocol") or {}, protocol)
            budget = (lessons.get("protocol") or {}).get("time_budget")
            slow = not isinstance(budget, (int, float)) or protocol.time_budget <= budget
            sources.append(Source(run_dir.id, label, lessons, not diffs, diffs, slow, Path(run_dir.path)))
            counts = (f"{len(lessons.get('failed', []))} failure(s), {len(lessons.get('domains', {}))} domain(s)")
            if diffs:
                messages.append(f"learning from run {label} ({how}): used {counts}; not its metric values, "
                                f"best values or model priors, because the protocol differs: {', '.join(diffs)}")
            else:
                best = (lessons.get("best") or {}).get("metric")
                messages.append(f"learning from run {label} ({how}): {counts}, best values"
                                + (f" (best {lessons.get('protocol', {}).get('metric')} {best:g})"
                                   if isinstance(best, (int, float)) else "")
                                + f", {len(lessons.get('observations', []))} observation(s) as priors")
        return cls(sources, messages, code_hash=code_hash)

    # ---- using ---------------------------------------------------------------------------

    def known_failure(self, parent_code: str, code: str) -> str | None:
        """Why ``code`` (a change of ``parent_code``) is known to fail, or None."""
        if not self.sources:
            return None
        if self._code_hash is not None:
            try:
                hit = self._failed_hashes.get(self._code_hash(code))
            except SyntaxError:
                hit = None
            if hit is not None and (hit[0].timeouts_apply or hit[1].get("status") != "timeout"):
                return f"failed in run {hit[0].label} (node {hit[1].get('node')}): {_short(hit[1].get('reason'))}"
        changes = L.literal_changes(parent_code, code)
        if not changes:
            return None
        for change in changes:
            for src in self.sources:
                why = _failure_of(src, change)
                if why:
                    return why
        return None

    def skip(self, parent_code: str, code: str) -> bool:
        """The proposer's ``is_known`` side: True (and counted) for a change known to fail."""
        reason = self.known_failure(parent_code, code)
        if reason is None:
            return False
        self.skipped.append({"reason": reason})
        return True

    def start_values(self) -> tuple[list[dict[str, Any]], Source | None]:
        """The best values of the best matching earlier run (none when no protocol matches)."""
        best: Source | None = None
        for src in self.matching:
            metric = (src.lessons.get("best") or {}).get("metric")
            if not isinstance(metric, (int, float)) or (src.lessons.get("best") or {}).get("node") in (None, 0):
                continue
            ref = (best.lessons.get("best") or {}).get("metric") if best else None
            maximize = src.lessons.get("protocol", {}).get("direction") == "maximize"
            if ref is None or (metric > ref if maximize else metric < ref):
                best = src
        return (list((best.lessons.get("best") or {}).get("values", [])) if best else []), best

    def target(self) -> float | None:
        """The best metric an earlier matching run reached (to count when this run reaches it)."""
        values = [m for s in self.matching if isinstance(m := (s.lessons.get("best") or {}).get("metric"), (int, float))]
        if not values:
            return None
        maximize = self.matching[0].lessons.get("protocol", {}).get("direction") == "maximize"
        return max(values) if maximize else min(values)

    def summary(self) -> dict[str, Any]:
        """What the run's lessons record about the runs it learned from."""
        return {"from": self.run_ids, "matching": [s.run_id for s in self.matching],
                "skipped": len(self.skipped), "target": self.target(), "messages": self.messages}


def _short(text: Any, limit: int = 120) -> str:
    line = str(text or "failed").strip().splitlines()
    out = line[-1] if line else "failed"
    return out if len(out) <= limit else out[: limit - 3] + "..."


def _failure_of(src: Source, change: L.Change) -> str | None:
    for failed in src.lessons.get("failed", []):
        if failed.get("status") == "timeout" and not src.timeouts_apply:
            continue
        for c in failed.get("changes") or []:
            if c.get("key") == change.key and c.get("new") == change.new and len(failed["changes"]) == 1:
                return (f"{change.name} = {change.new} failed in run {src.label} (node {failed.get('node')}): "
                        f"{_short(failed.get('reason'))}")
    dom = (src.lessons.get("domains") or {}).get(change.key)
    value = L.literal_value(change.new)
    if dom and isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        for kind in ("fails", "times_out") if src.timeouts_apply else ("fails",):
            what = "failed" if kind == "fails" else "timed out"
            hi, lo = dom.get(f"{kind}_at_or_above"), dom.get(f"{kind}_at_or_below")
            if isinstance(hi, (int, float)) and value >= hi:
                return f"{change.name} = {change.new}: values from {hi:g} up {what} in run {src.label}"
            if isinstance(lo, (int, float)) and value <= lo:
                return f"{change.name} = {change.new}: values up to {lo:g} {what} in run {src.label}"
    return None


def _auto(runs_dir: str | Path, source: str | None, exclude: str | None, code: str | None = None) -> Any:
    """The newest earlier run of the same script or cell, or None: the same recorded source (a
    notebook's cells share one) and, when ``code`` is given, a baseline sharing at least half of
    its literal sites with it (so another cell of the same notebook does not count)."""
    from ..store.runs import RunDir, _created, _scan

    if not source:
        return None
    candidates = [(p, i) for p, i in _scan(Path(runs_dir)) if i and i.get("source") == source and p.name != exclude]
    mine = {lit.key for lit in L.literals(code) or []} if code is not None else None
    for path, _ in sorted(candidates, key=lambda pair: _created(*pair), reverse=True):
        run = RunDir.open(path)
        if mine is None or _similar(mine, code or "", run):
            return run
    return None


def _latest(runs_dir: str | Path, exclude: str | None) -> Any:
    """The newest run other than this one ("latest" means the one before this run)."""
    from ..store.runs import RunDir, _created, _scan

    earlier = [(p, i) for p, i in _scan(Path(runs_dir)) if p.name != exclude and i is not None]
    return RunDir.open(max(earlier, key=lambda pair: _created(*pair))[0]) if earlier else None


def _similar(mine: set[str], code: str, run: Any) -> bool:
    try:
        theirs = run.script_path(0).read_text(encoding="utf-8")
    except OSError:
        return False
    if theirs == code:
        return True
    keys = {lit.key for lit in L.literals(theirs) or []}
    return bool(mine | keys) and len(mine & keys) * 2 >= max(len(mine), len(keys), 1)


def _read(run_dir: Any, code_hash: Any) -> tuple[dict[str, Any] | None, str]:
    """The run's lessons and where they came from; (None, why) when there are none to use."""
    path = Path(run_dir.path) / L.LESSONS_FILE
    note = ""
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            data, note = None, f"its {L.LESSONS_FILE} is unreadable ({type(err).__name__})"
        if isinstance(data, dict) and data.get("lessons_version") == L.LESSONS_VERSION:
            return data, L.LESSONS_FILE
        if isinstance(data, dict):
            note = (f"its {L.LESSONS_FILE} is version {data.get('lessons_version')!r}, "
                    f"this version reads {L.LESSONS_VERSION}")
    try:
        replay = run_dir.load()
    except AutoResearchError as err:
        return None, (note + "; " if note else "") + f"its journal does not load: {str(err).splitlines()[0]}"
    if replay.tree.root is None:
        return None, (note + "; " if note else "") + "it has no nodes"
    lessons = L.derive(replay.tree, run_dir.protocol, run_id=run_dir.id, name=run_dir.name,
                       source=run_dir.source, code_hash=code_hash, complete=replay.state != "running")
    why = "derived from its journal" + (f": {note}" if note else "" if path.exists() else f", no {L.LESSONS_FILE}")
    return lessons, why


def start_proposal(learned: Learned, code: str) -> Any:
    """A first node that writes the earlier best values into ``code`` (None when none apply)."""
    from ..core.node import Operator
    from ..proposers import Proposal

    values, src = learned.start_values()
    if src is None:
        return None
    exact = _best_script(src, code)
    if exact is not None:  # the same baseline: the earlier best itself, whatever kind of change it was
        best = (src.lessons.get("best") or {}).get("node")
        return Proposal(operator=Operator.IMPROVE, plan=f"start from the best of run {src.label} (node {best})",
                        code=exact, meta={"learned_from": [src.run_id], "lessons": "best script"})
    new_code, made = L.apply_values(code, values)
    if not made:
        return None
    shown = ", ".join(f"{c.name} {c.old} -> {c.new}" for c in made[:6]) + (", ..." if len(made) > 6 else "")
    return Proposal(operator=Operator.IMPROVE, plan=f"apply the best values of run {src.label}: {shown}",
                    code=new_code, meta={"learned_from": [src.run_id], "lessons": "best values"})


def _best_script(src: Source, code: str) -> str | None:
    """The earlier run's best node script when that run started from this very baseline."""
    best = (src.lessons.get("best") or {}).get("node")
    if src.path is None or not isinstance(best, int) or best == 0:
        return None
    from ..store.runs import RunDir

    try:
        run = RunDir.open(src.path)
        if run.script_path(0).read_text(encoding="utf-8") != code:
            return None
        return run.script_path(best).read_text(encoding="utf-8")
    except (OSError, AutoResearchError):
        return None


def load_for(search: Any) -> Learned:
    """The lessons a new search learns from (its ``learn_from`` setting); prints one line per
    run named (stderr), so nothing is used or dropped silently."""
    import sys

    from .guard import code_hash

    refs = tuple(search.settings.learn_from)
    if not refs or search.run_dir is None:
        return Learned()
    learned = Learned.load(refs, runs_dir=search.run_dir.path.parent, protocol=search.protocol,
                           source=search.run_dir.source, exclude=search.run_dir.id, code_hash=code_hash,
                           code=search.code)
    for line in learned.messages:
        print(f"autoresearch: {line}", file=sys.stderr)
    proposer = getattr(search, "proposer", None)
    if proposer is not None and learned.sources:
        proposer.learn(lessons=[s.lessons if s.matches else holding(s.lessons) for s in learned.sources])
    return learned


def holding(lessons: dict[str, Any]) -> dict[str, Any]:
    """The part of ``lessons`` that holds under another protocol: failures and domains only."""
    keep = ("lessons_version", "run_id", "run_name", "source", "protocol", "failed", "domains")
    return {**{k: lessons[k] for k in keep if k in lessons}, "protocol_matches": False}


def earlier_run(runs_dir: str | Path, source: str | None, exclude: str | None = None,
                code: str | None = None) -> Any:
    """The newest earlier run of this script or cell (for the faces' one-line offer), or None."""
    try:
        return _auto(runs_dir, source, exclude, code)
    except (OSError, AutoResearchError):
        return None


def offer_line(search: Any, *, flag: str = "--learn-from auto") -> str | None:
    """One line offering an earlier run's lessons when a run does not learn from any (faces print it)."""
    if search.settings.learn_from or search.run_dir is None or search.tree.root is not None:
        return None  # learning already, or a resumed run
    run = earlier_run(search.run_dir.path.parent, search.run_dir.source, search.run_dir.id, search.code)
    if run is None:
        return None
    return (f"autoresearch: an earlier run of this script is in the runs folder ({run.name or run.id}); "
            f"{flag} starts from its lessons")
