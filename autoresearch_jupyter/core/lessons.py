"""What one run learned, as data: the versioned ``lessons.json`` format and how it is derived.

A *change* is named the same way in every run of a script, whatever proposed it: a literal (a
number or ``True``/``False``) is found by its *key*, the tokens of its logical line before it with
every number blanked (``lr = #`` ...; ``Ridge ( alpha =`` ...), plus an occurrence count, so the
key survives the value changing and does not depend on a proposer's own site ids. Two scripts
that differ only in such literals differ by a list of ``(key, old, new)`` changes.

Lessons hold, for the protocol they were measured under (metric, direction, frozen-code hash,
evaluation data fingerprint): the changes that helped (with their effect), those that failed
(with the reason), the value domains the failures imply, the noise floor, the best value per
site, and a bounded list of observations (values, metric) that a model-based proposer can take
as prior trials. Only the standard library and ``core`` are used.
"""

from __future__ import annotations

import ast
import dataclasses
import io
import math
import tokenize
from collections.abc import Mapping
from typing import Any, Iterable

from .node import Operator, Status
from .protocol import Protocol
from .tree import Tree

LESSONS_VERSION = 1
LESSONS_FILE = "lessons.json"
MAX_OBSERVATIONS = 200  # bounded: a lessons file stays small whatever the run's length
MAX_FAILED = 100
FAILED_STATUSES = (Status.BUGGY, Status.TIMEOUT)


@dataclasses.dataclass(frozen=True)
class Literal:
    """One literal of a script: its key (stable across values), a readable name, line, text."""

    key: str
    name: str
    line: int
    text: str
    start: tuple[int, int]
    end: tuple[int, int]

    @property
    def value(self) -> Any:
        return literal_value(self.text)


@dataclasses.dataclass(frozen=True)
class Change:
    """One literal changed from ``old`` to ``new`` (source texts) at ``key``."""

    key: str
    name: str
    line: int
    old: str
    new: str

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def literal_value(text: str) -> Any:
    """The value of a literal's source text (None where it is not a plain literal)."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return value if isinstance(value, (bool, int, float, str)) else None


def _tokens(code: str) -> list[tokenize.TokenInfo] | None:
    try:
        return [t for t in tokenize.generate_tokens(io.StringIO(code).readline)
                if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT,
                                  tokenize.ENDMARKER)]
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None


def _is_literal(tok: tokenize.TokenInfo) -> bool:
    return tok.type in (tokenize.NUMBER, tokenize.STRING) or (
        tok.type == tokenize.NAME and tok.string in ("True", "False"))


def literals(code: str) -> list[Literal] | None:
    """The literals of ``code`` with their keys, in source order; None if it does not tokenize."""
    toks = _tokens(code)
    if toks is None:
        return None
    out: list[Literal] = []
    seen: dict[str, int] = {}
    line: list[str] = []
    for tok in toks:
        if tok.type in (tokenize.NEWLINE,):
            line = []
            continue
        if _is_literal(tok):
            base = " ".join(line[-12:])  # a bounded context: long calls still give short keys
            k = seen.get(base, 0)
            seen[base] = k + 1
            names = [w for w in reversed(line) if w.isidentifier() and w not in ("True", "False")]
            out.append(Literal(f"{base}#{k}", names[0] if names else "literal", tok.start[0], tok.string,
                               tok.start, tok.end))
            line.append("#")
        else:
            line.append(tok.string)
    return out


def literal_changes(before: str, after: str) -> list[Change] | None:
    """The literal changes that turn ``before`` into ``after``; None if they differ otherwise."""
    a, b = _tokens(before), _tokens(after)
    if a is None or b is None or len(a) != len(b):
        return None
    for x, y in zip(a, b):
        if x.string != y.string and not (_is_literal(x) and _is_literal(y)):
            return None
    lits_a = literals(before) or []
    lits_b = literals(after) or []
    if len(lits_a) != len(lits_b):
        return None
    return [Change(la.key, la.name, la.line, la.text, lb.text)
            for la, lb in zip(lits_a, lits_b) if la.text != lb.text]


def apply_values(code: str, values: Iterable[dict[str, Any]]) -> tuple[str, list[Change]]:
    """``code`` with each ``{key, new}`` in ``values`` written at its key (keys not found are
    skipped); returns the new code and the changes made."""
    wanted = {str(v.get("key")): str(v.get("new")) for v in values if literal_value(str(v.get("new"))) is not None}
    lits = literals(code) or []
    lines = code.splitlines(keepends=True)
    made: list[Change] = []
    for lit in reversed(lits):  # from the end: earlier offsets stay valid
        new = wanted.get(lit.key)
        if new is None or new == lit.text or lit.start[0] != lit.end[0]:
            continue
        row = lit.start[0] - 1
        text = lines[row]
        lines[row] = text[: lit.start[1]] + new + text[lit.end[1]:]
        made.append(Change(lit.key, lit.name, lit.line, lit.text, new))
    return "".join(lines), list(reversed(made))


# ---- deriving lessons from a finished (or interrupted) run ------------------------------------


def protocol_facts(protocol: Protocol) -> dict[str, Any]:
    """The parts of a protocol lessons hold for; two runs agree on the goalposts iff these match."""
    data = None
    for name in ("data_fingerprint", "data_hash", "eval_fingerprint"):
        data = getattr(protocol, name, None) or data
    return {"metric": protocol.metric, "direction": protocol.direction,
            "frozen_hash": protocol.frozen_hash, "data": data, "time_budget": protocol.time_budget}


def protocol_differences(held: dict[str, Any], protocol: Protocol) -> list[str]:
    """Which parts of the protocol ``held`` (lessons) differ from ``protocol``, in words."""
    now = protocol_facts(protocol)
    out = []
    words = {"metric": "metric", "direction": "direction", "frozen_hash": "frozen code", "data": "evaluation data"}
    for key, word in words.items():
        if key in ("data",) and key not in held:
            continue
        if held.get(key) != now[key]:
            if key in ("metric", "direction"):
                out.append(f"{word} {held.get(key)} -> {now[key]}")
            else:
                out.append(f"{word} changed")
    return out


def _trust() -> Any:
    """The noise floor and ablation module where this version has one (None otherwise)."""
    try:
        from . import noise
    except ImportError:
        return None
    return noise


def _ablation(tree: Tree, protocol: Protocol) -> list[dict[str, Any]]:
    """The ablation's "change -> effect" rows of the best node, when the run has them."""
    trust, best = _trust(), tree.best(protocol)
    if trust is None or best is None or not hasattr(trust, "ablation_rows"):
        return []
    try:
        rows = trust.ablation_rows(tree, protocol, best)
    except Exception:  # lessons must not fail on a record an older version wrote  # noqa: BLE001
        return []
    return [dict(r) for r in rows if isinstance(r, Mapping)][:50]


def _noise(tree: Tree) -> dict[str, Any] | None:
    trust = _trust()
    if trust is not None and hasattr(trust, "sigma"):
        try:
            return {"sigma": float(trust.sigma(tree))}
        except Exception:  # noqa: BLE001
            pass
    root = tree.root
    meta = root.meta if root is not None and isinstance(root.meta, Mapping) else {}
    for key in ("noise", "noise_floor"):
        if isinstance(meta.get(key), dict):
            return dict(meta[key])
    sigma = meta.get("sigma")
    return {"sigma": sigma} if isinstance(sigma, (int, float)) else None


def _num(text: str) -> float | None:
    value = literal_value(text)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def derive(tree: Tree, protocol: Protocol, *, run_id: str, name: str | None = None,
           source: str | None = None, code_hash: Any = None, complete: bool = True) -> dict[str, Any]:
    """The lessons of a run, from its tree (works on any prefix of a journal)."""
    root = tree.root
    ok = [n for n in tree if n.status is Status.OK and n.metric is not None]
    best = tree.best(protocol)
    helped: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    bounds: dict[str, dict[str, Any]] = {}
    ok_values: dict[str, list[float]] = {}
    observations: list[dict[str, Any]] = []
    ablate = getattr(Operator, "ABLATE", None)
    for node in tree:
        if node.parent is None or (ablate is not None and node.operator is ablate):
            continue  # ablation runs remove changes: their effect is read from the ablation rows
        parent = tree[node.parent]
        while not parent.is_good and parent.parent is not None:  # a failure is measured from what worked
            parent = tree[parent.parent]
        changes = literal_changes(parent.code, node.code) or []
        if node.status is Status.OK and node.metric is not None and root is not None:
            base = literal_changes(root.code, node.code)
            if base is not None and len(observations) < MAX_OBSERVATIONS:
                observations.append({"node": node.id, "metric": node.metric,
                                     "values": {c.key: c.new for c in base}})
            for c in base or []:
                if (v := _num(c.new)) is not None:
                    ok_values.setdefault(c.key, []).append(v)
            if node.kept and parent.metric is not None:
                helped.append({"node": node.id, "changes": [c.to_dict() for c in changes], "plan": node.plan,
                               "effect": round(node.metric - parent.metric if protocol.maximize
                                               else parent.metric - node.metric, 12),
                               "measured": "against its parent"})
        elif node.status in FAILED_STATUSES and len(failed) < MAX_FAILED:
            failed.append({"node": node.id, "status": node.status.value, "reason": node.reason or "",
                           "plan": node.plan, "changes": [c.to_dict() for c in changes],
                           "code_hash": code_hash(node.code) if code_hash else None})
            if len(changes) == 1 and parent.is_good:
                c = changes[0]
                old, new = _num(c.old), _num(c.new)
                if old is not None and new is not None and new != old:
                    side = "fails_at_or_above" if new > old else "fails_at_or_below"
                    if node.status is Status.TIMEOUT:  # holds only while the time budget does
                        side = side.replace("fails", "times_out")
                    dom = bounds.setdefault(c.key, {"name": c.name})
                    prev = dom.get(side)
                    dom[side] = new if prev is None else (min(prev, new) if new > old else max(prev, new))
    for lit in (literals(root.code) if root else None) or []:
        if (v := _num(lit.text)) is not None:
            ok_values.setdefault(lit.key, []).append(v)
    domains: dict[str, dict[str, Any]] = {}
    for key, dom in bounds.items():
        seen = ok_values.get(key, [])
        kept = {"name": dom["name"]}
        for side, value in dom.items():
            if side == "name":
                continue
            above = side.endswith("above")
            if not any((v >= value) if above else (v <= value) for v in seen):  # else it was no bound
                kept[side] = value
        if len(kept) > 1:
            domains[key] = {"fails_at_or_above": None, "fails_at_or_below": None, **kept}
    best_values = literal_changes(root.code, best.code) if root is not None and best is not None else None
    return {
        "lessons_version": LESSONS_VERSION,
        "run_id": run_id, "run_name": name, "source": source, "complete": complete,
        "protocol": protocol_facts(protocol),
        "baseline": {"metric": root.metric if root else None},
        "best": {"node": best.id if best else None, "metric": best.metric if best else None,
                 "values": [c.to_dict() for c in best_values or []],
                 "code_hash": code_hash(best.code) if best and code_hash else None},
        "nodes": len(tree) - 1 if root else 0,
        "helped": helped, "ablation": _ablation(tree, protocol), "failed": failed, "domains": domains,
        "noise": _noise(tree), "observations": observations,
        "ok_nodes": len(ok),
    }


def prior_scripts(lessons: Iterable[Mapping[str, Any]], baseline: str) -> list[tuple[str, float]]:
    """Each earlier observation as (this run's baseline with its values written in, its metric):
    what a model-based proposer parses with its own site finder and adds as prior trials.
    Observations whose values no longer fit (a site gone) keep what fits."""
    out: list[tuple[str, float]] = []
    for data in lessons:
        if data.get("protocol_matches") is False:
            continue  # metric values do not carry over to another protocol
        for obs in data.get("observations", []) or []:
            metric = obs.get("metric")
            if not isinstance(metric, (int, float)) or not math.isfinite(metric):
                continue
            code, _ = apply_values(baseline, [{"key": k, "new": v} for k, v in (obs.get("values") or {}).items()])
            out.append((code, float(metric)))
    return out
