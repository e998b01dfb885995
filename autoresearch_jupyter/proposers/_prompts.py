"""The prompts of the LLM proposer: one per operator, all built from the same parts.

A prompt holds, in this order: the goal; the protocol, stated as fixed (metric, direction, time
budget, seed); the frozen code, marked read-only; the bounded memory (``_memory.py``); the code
to change; the task for the operator. The order puts what the model must act on last, nearest to
its answer. The fixed parts are always included; the memory gets whatever is left of the token
cap, so a prompt stays the same size however large the tree grows (only a script larger than the
cap itself can push a prompt over it).

The answer format (``_edits.py``) is plain text, so any chat model works, with or without tool
calling; the model is told that the runner measures the metric, never the model.
"""

from __future__ import annotations

import dataclasses
import re

from ..core.node import Node, Operator, Status
from ..core.protocol import Protocol
from ..core.tree import Tree
from ._base import Context
from ._memory import estimate_tokens, render_memory

__all__ = ["SYSTEM", "Prompt", "build_messages", "known_text", "messages_tokens", "retry_message",
           "summary_messages"]

MESSAGE_OVERHEAD = 4  # tokens a chat message costs beyond its text (role, separators)
TAIL_LINES = 40
TAIL_CHARS = 3000
KNOWN_SHARE = 0.25  # of the prompt cap, at most, for what earlier runs learned (--learn-from)
KNOWN_HEADER = "# What is known from earlier runs of this task\n"

SYSTEM = """You are an expert machine-learning engineer running experiments on a training script. \
Each experiment is one change to the script. A runner executes the changed script once under a \
fixed protocol and measures the metric itself; the change is kept only if the metric improves. \
You never state, estimate or print a metric value of your own.

Answer in plain text (no tool calls), in this format:

PLAN: <one line: the change, and why it should help>

<<<<<<< SEARCH
<lines copied exactly from the current script>
=======
<the lines that replace them>
>>>>>>> REPLACE

Use one or more edit blocks; each SEARCH text must match the current script in exactly one place \
(include a few surrounding lines when needed). For a rewrite, give instead the whole new script \
in one ```python block. Never edit the read-only (frozen) code, and never change how the metric \
is computed or printed."""


@dataclasses.dataclass(frozen=True)
class Prompt:
    """The chat messages for one request, their estimated size, and how much memory made it in."""

    messages: list[dict[str, str]]
    tokens: int
    memory_items: int


def messages_tokens(messages: list[dict[str, str]]) -> int:
    """Estimated prompt tokens of a chat request."""
    return sum(estimate_tokens(m["content"]) + MESSAGE_OVERHEAD for m in messages)


def _fence(code: str, lang: str = "python") -> str:
    """``code`` in a fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{code.rstrip()}\n{ticks}"


def protocol_text(protocol: Protocol, progress: float | None = None) -> str:
    better = "higher" if protocol.maximize else "lower"
    lines = [
        "# Protocol (fixed for the whole run: you cannot change it)",
        (f"- Metric: `{protocol.metric}`, to {protocol.direction} ({better} is better). The script prints "
         f"it as `{protocol.metric}: <value>` (or calls `autoresearch_jupyter.report`); the runner reads it."),
        f"- Time budget: {protocol.time_budget:g} s per run, enforced: a slower run is killed and fails.",
        (f"- Seed: every run gets the same seed ({protocol.seed}, in AUTORESEARCH_SEED); "
         "changing seeds is not an experiment."),
    ]
    if protocol.min_delta > 0:
        lines.append(f"- An improvement counts only if it is larger than {protocol.min_delta:g}.")
    if progress is not None:
        lines.append(f"- Search progress: {progress:.0%} of the budget spent.")
    return "\n".join(lines)


def frozen_text(protocol: Protocol) -> str:
    if not protocol.frozen:
        return ""
    blocks = "\n".join(_fence(block) for block in protocol.frozen)
    return (
        "# Read-only code (frozen)\n"
        "These regions of the script, between `# autoresearch: freeze` and `# autoresearch: end`, "
        "are READ-ONLY: keep them exactly as they are and do not edit them.\n" + blocks
    )


def _tail(text: str) -> str:
    lines = text.rstrip().splitlines()[-TAIL_LINES:]
    out = "\n".join(lines)
    return out[-TAIL_CHARS:]


def task_text(context: Context) -> str:
    metric = context.protocol.metric
    pct = f"{context.progress:.0%}"
    if context.operator is Operator.DRAFT:
        return (
            "# Task: draft\n"
            "Write a fundamentally different approach to the problem than the current script and the "
            "drafts already tried: another model family, feature pipeline or training scheme. Keep the "
            "frozen code exactly as it is, print the metric the same way, and fit the time budget. "
            "Give the whole new script in one ```python block (or edit blocks for a local change); "
            "the PLAN line names the approach."
        )
    if context.operator is Operator.DEBUG:
        node = context.parent
        what = "timed out" if node.status is Status.TIMEOUT else "failed"
        reason = (node.reason or node.status.value).strip().splitlines()[0][:300]
        tail = _tail(node.output_tail)
        fix = (
            f" It must finish within the time budget of {context.protocol.time_budget:g} s."
            if node.status is Status.TIMEOUT else ""
        )
        return (
            f"# Task: debug\nThe current script {what}: {reason}.{fix}\n"
            "Fix the cause with the smallest change and keep everything else as it is; the PLAN line "
            "names the bug and the fix.\n"
            + (f"Last lines of its output:\n{_fence(tail, 'text')}" if tail else "It printed nothing.")
        )
    phase = (
        f"The search is early ({pct} of its budget spent): prefer a bold change with a high upside, "
        "e.g. a different model or features, or a key hyperparameter moved by an order of magnitude."
        if context.early
        else f"The search is late ({pct} of its budget spent): fine-tune what works with a small, careful "
        "adjustment, e.g. one hyperparameter step or a regularisation tweak."
    )
    return (
        "# Task: improve\n"
        f"Make exactly ONE logical change to the current script that you expect to improve `{metric}`, "
        f"and name it in the PLAN line. {phase} Do not repeat a direction already tried from this "
        "script. Prefer edit blocks."
    )


def _current(node: Node, protocol: Protocol) -> str:
    if node.is_good:
        state = f"{protocol.metric} {node.metric:.6g}"
    elif node.status.is_finished():
        state = node.status.value
    else:
        state = "not run yet"
    return f"# Current script (node {node.id}, {state})\n{_fence(node.code)}"


def known_text(lessons: list[dict], max_tokens: int) -> str:
    """What earlier runs learned (``core/lessons.py``), as short lines that fit ``max_tokens``:
    failures first (they hold whatever the protocol), then value domains, then, where the
    protocol matched, what helped and the best values. Empty when nothing fits."""
    lines: list[str] = []
    for data in lessons:
        run = data.get("run_name") or data.get("run_id") or "an earlier run"
        for f in data.get("failed", []):
            what = "; ".join(f"{c.get('name')} {c.get('old')} -> {c.get('new')}" for c in f.get("changes") or [])
            reason = str(f.get("reason") or f.get("status") or "failed").strip().splitlines()
            lines.append(f"- Failed in {run}: {what or str(f.get('plan', ''))[:120]} ({(reason or [''])[-1][:120]})")
        for d in (data.get("domains") or {}).values():
            if d.get("fails_at_or_above") is not None:
                lines.append(f"- {d.get('name')}: values from {d['fails_at_or_above']:g} up failed in {run}")
            if d.get("fails_at_or_below") is not None:
                lines.append(f"- {d.get('name')}: values up to {d['fails_at_or_below']:g} failed in {run}")
        for h in sorted(data.get("helped", []), key=lambda h: -float(h.get("effect") or 0))[:8]:
            what = "; ".join(f"{c.get('name')} {c.get('old')} -> {c.get('new')}" for c in h.get("changes") or [])
            lines.append(f"- Helped in {run}: {what or str(h.get('plan', ''))[:120]} (gain {h.get('effect'):.4g})")
        best = data.get("best") or {}
        if best.get("values"):
            shown = ", ".join(f"{v.get('name')} = {v.get('new')}" for v in best["values"][:10])
            lines.append(f"- Best values in {run} (metric {best.get('metric'):.6g}): {shown}")
    if not lines:
        return ""
    out = [KNOWN_HEADER + "Do not repeat these failures; build on what helped."]
    used = estimate_tokens(out[0])
    for line in dict.fromkeys(lines):
        cost = estimate_tokens(line) + 1
        if used + cost > max_tokens:
            break
        out.append(line)
        used += cost
    return "\n".join(out) if len(out) > 1 else ""


def build_messages(context: Context, *, max_prompt_tokens: int, lessons: list[dict] | None = None) -> Prompt:
    """The request for one proposal: fixed parts always, then what earlier runs learned (at most
    KNOWN_SHARE of the cap), then the memory fitted into the rest of the cap."""
    goal = context.goal.strip() or f"Improve `{context.protocol.metric}` on this task."
    head = [f"# Goal\n{goal}", protocol_text(context.protocol, context.progress)]
    if context.grading:  # a separate evaluator: what it reads, never the data only it sees
        head[-1] += "\n" + context.grading
    frozen = frozen_text(context.protocol)
    if frozen:
        head.append(frozen)
    tail = [_current(context.parent, context.protocol), task_text(context)]
    fixed = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n\n".join(head + tail)}]
    header = "# Memory: what was tried so far\n"
    room = max_prompt_tokens - messages_tokens(fixed) - estimate_tokens(header + "\n\n")
    known = known_text(lessons, min(room, int(max_prompt_tokens * KNOWN_SHARE)) - 2) if lessons and room > 0 else ""
    if known:
        head = head + [known]
        room -= estimate_tokens(known + "\n\n")
    memory, items = ("", 0)
    if room > 0:
        memory, items = render_memory(context.tree, context.protocol, context.parent, room)
    body = head + ([header + memory] if memory else []) + tail
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n\n".join(body)}]
    return Prompt(messages, messages_tokens(messages), items)


def retry_message(error: str) -> str:
    """The follow-up after an unusable answer: the specific error, and the format again."""
    return (
        f"Your answer could not be used: {error}.\n"
        "Answer again with a PLAN line and edit blocks whose SEARCH text is copied exactly from the "
        "current script (or the whole script in one ```python block). Leave the read-only code as it is."
    )


def summary_messages(tree: Tree, protocol: Protocol, goal: str, *, max_prompt_tokens: int) -> list[dict[str, str]]:
    """The request for the end-of-run notes: what worked and what did not, from the record only."""
    counts = {k: v for k, v in tree.counts().items() if v}
    root, best = tree.root, tree.best(protocol)
    facts = [f"- {len(tree) - 1} experiments after the baseline; by status: {counts}"]
    if root is not None and root.metric is not None:
        facts.append(f"- baseline {protocol.metric}: {root.metric:.6g}")
    if best is not None and best.metric is not None:
        facts.append(f"- best: node {best.id}, {protocol.metric} {best.metric:.6g}")
    system = (
        "You write the end-of-run notes of an automated ML experiment search. Use only the facts "
        "and numbers in the record; never invent results."
    )
    head = "\n\n".join([
        f"# Goal\n{goal.strip() or 'Improve ' + protocol.metric}",
        protocol_text(protocol),
        "# Outcome\n" + "\n".join(facts),
    ])
    ask = (
        "Write short notes (under 250 words) with two headed sections, 'What worked' and "
        "'What did not', citing node ids and metric changes from the record; end with one line "
        "suggesting the next experiment."
    )
    fixed = [{"role": "system", "content": system}, {"role": "user", "content": head + "\n\n" + ask}]
    room = max_prompt_tokens - messages_tokens(fixed) - 20
    anchor = root if root is not None else next(iter(tree))
    memory, _ = render_memory(tree, protocol, anchor, room) if room > 0 else ("", 0)
    user = head + ("\n\n# Record\n" + memory if memory else "") + "\n\n" + ask
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]
