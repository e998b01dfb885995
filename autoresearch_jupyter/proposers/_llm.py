"""The LLM proposer: asks any OpenAI-compatible chat model for one change per node.

For each node it sends one prompt (``_prompts.py``: goal, fixed protocol, read-only frozen code,
bounded memory, the code to change, the operator's task) and reads a plan plus search/replace
edits or a whole file from the answer (``_edits.py``). It serves three operators, each with its
own task text: DRAFT (a fundamentally different approach, early), IMPROVE (one logical change;
bold early, fine-tuning late) and DEBUG (fix a failed node from its error and output tail; the
policy limits the depth).

An answer that cannot be used (no change in it, an edit that does not apply, an edit of frozen
code, a script that does not compile, a no-op or an already tried script) gets ONE retry with the
specific error as a follow-up message; if that fails too, the proposal comes back with
``rejected`` set to the reason and the parent's code, and the search records a rejected node and
goes on. An empty answer or a refusal is rejected at once. The metric never comes from the model.

Every request's ``usage`` is added up per node (retries included) into ``Proposal.usage``, with a
cost when prices are set. Run totals are summed over the tree's nodes, so a resumed run keeps
counting where it stopped; reaching ``max_tokens`` or ``max_cost`` raises BudgetExhaustedError,
which ends the run normally. Endpoint faults left after the client's retries raise ProposerError.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

from ..core.errors import BudgetExhaustedError, ProposerError
from ..core.source import normalize, syntax_problem
from ..core.node import Operator, Usage
from ..core.node import usage_totals as node_usage_totals
from ..core.protocol import Protocol
from ..core.tree import Tree
from ._base import Context, Proposal, Proposer
from ._client import BadAnswerError, ChatClient, Reply
from ._config import LLMSettings, choose_proposer
from ._edits import AnswerError, ParsedAnswer, apply_edits, parse_answer
from ._prompts import build_messages, retry_message, summary_messages

__all__ = ["LLMProposer", "usage_totals", "write_llm_summary"]

FROZEN_HINT = (
    "the frozen regions (between `# autoresearch: freeze` and `# autoresearch: end`) are read-only: "
    "keep them exactly as they are and change only code outside them"
)


def usage_totals(tree: Tree) -> Usage:
    """Tokens and cost over every node of a run (cost None when no node has one), as one Usage."""
    totals = node_usage_totals(tree)
    return Usage(0, 0, None) if totals is None else Usage(totals.prompt_tokens, totals.completion_tokens, totals.cost)


def _same(code: str, other: str) -> bool:
    try:
        return normalize(code) == normalize(other)
    except SyntaxError:
        return code == other


def _lines(code: str) -> int:
    return sum(1 for line in code.splitlines() if line.strip())


def _fragment(code: str, parent: str) -> bool:
    """A whole-file answer far shorter than the script it replaces: most likely an excerpt."""
    return _lines(parent) >= 10 and _lines(code) < 0.4 * _lines(parent)


class LLMProposer(Proposer):
    """One chat request (plus at most one retry) per node; see the module docstring."""

    name = "llm"
    operators = frozenset({Operator.DRAFT, Operator.IMPROVE, Operator.DEBUG})

    def __init__(self, *, seed: int = 0, environ: Mapping[str, str] | None = None, **settings: Any) -> None:
        """``settings`` are the fields of LLMSettings; ``environ`` defaults to ``os.environ``."""
        self.settings = LLMSettings.from_settings(settings)
        self._client = ChatClient(self.settings, environ=dict(environ) if environ is not None else None)
        self.name = f"llm ({self._client.describe()})"  # type: ignore[misc]
        self.model = self._client.model
        self._unrecorded = Usage(0, 0)  # tokens of requests that never became a node (a fault mid-way)
        self._lessons: list[dict[str, Any]] = []
        self.reseed_rng(seed)

    def learn(self, *, lessons: list[dict[str, Any]]) -> None:
        """Earlier runs' lessons go into every prompt, as a bounded "what is known" section."""
        self._lessons = list(lessons)

    def reseed_rng(self, seed: int) -> None:
        """The model samples on the server; nothing to reseed here (the seed is not sent: not every
        OpenAI-compatible server accepts it)."""
        self._seed = seed

    # ---- budget ------------------------------------------------------------------------

    def _spent(self, tree: Tree, extra: Usage | None = None) -> tuple[int, float | None]:
        total = usage_totals(tree)
        prompt = total.prompt_tokens + self._unrecorded.prompt_tokens + (extra.prompt_tokens if extra else 0)
        completion = total.completion_tokens + self._unrecorded.completion_tokens + (
            extra.completion_tokens if extra else 0
        )
        return prompt + completion, self.settings.price(prompt, completion)

    def _over_budget(self, tree: Tree, extra: Usage | None = None) -> str | None:
        tokens, cost = self._spent(tree, extra)
        s = self.settings
        if s.max_tokens is not None and tokens >= s.max_tokens:
            return f"token budget of {s.max_tokens} spent ({tokens:,} used)"
        if s.max_cost is not None and cost is not None and cost >= s.max_cost:
            return f"cost budget of {s.max_cost:g} spent ({cost:.4g} used)"
        return None

    # ---- proposing ---------------------------------------------------------------------

    def propose(self, *, context: Context) -> Proposal | None:
        """Ask the model for one change of ``context.parent``; see the module docstring."""
        spent = self._over_budget(context.tree)
        if spent:
            raise BudgetExhaustedError(spent)
        prompt = build_messages(context, max_prompt_tokens=self.settings.max_prompt_tokens, lessons=self._lessons)
        messages = list(prompt.messages)
        usage = Usage(0, 0)
        meta: dict[str, Any] = {
            "model": self.model, "prompt_estimate": prompt.tokens, "memory_items": prompt.memory_items,
        }
        if prompt.tokens > self.settings.max_prompt_tokens:  # the script alone is larger than the cap
            meta["prompt_over_cap"] = True
        errors: list[str] = []
        parsed: ParsedAnswer | None = None
        for attempt in (1, 2):
            meta["attempts"] = attempt
            try:
                reply = self._client.chat(messages, temperature=self.settings.temperature)
            except BadAnswerError as err:  # the endpoint answered garbage: this node is rejected, the run goes on
                meta["transport"] = err.attempts
                return self._rejected(context, usage, meta, parsed, str(err))
            except ProposerError:
                self._unrecorded = Usage(
                    self._unrecorded.prompt_tokens + usage.prompt_tokens,
                    self._unrecorded.completion_tokens + usage.completion_tokens,
                )
                raise
            usage = self._add(usage, reply)
            if reply.attempts:  # retries and waits before this answer
                meta.setdefault("transport", []).extend(reply.attempts)
            meta["finish_reason"] = reply.finish_reason
            if reply.estimated:
                meta["usage_estimated"] = True
            if reply.refusal:
                return self._rejected(context, usage, meta, parsed, f"the model refused: {reply.refusal[:200]}")
            if not reply.content.strip():
                return self._rejected(context, usage, meta, parsed, f"empty answer (finish reason {reply.finish_reason})")
            try:
                parsed = parse_answer(reply.content)
                code = self._code(parsed, context)
            except AnswerError as err:
                error = str(err)
                if reply.finish_reason == "length":
                    error += " (the answer hit the length limit: use short edit blocks)"
                errors.append(error)
                if attempt == 1:
                    over = self._over_budget(context.tree, usage)
                    if over:
                        return self._rejected(context, usage, meta, parsed, f"{error} (no retry: {over})")
                    messages += [
                        {"role": "assistant", "content": reply.content},
                        {"role": "user", "content": retry_message(error)},
                    ]
                continue
            if errors:
                meta["retried_because"] = errors[0]
            meta.update(format=parsed.format, edits=len(parsed.edits))
            return Proposal(
                operator=context.operator, plan=self._plan(parsed, context), code=code, usage=usage,
                meta={"llm": meta},
            )
        meta["retried_because"] = errors[0]
        return self._rejected(context, usage, meta, parsed, f"unusable answer after one retry: {errors[-1]}")

    def _add(self, usage: Usage, reply: Reply) -> Usage:
        prompt = usage.prompt_tokens + reply.prompt_tokens
        completion = usage.completion_tokens + reply.completion_tokens
        return Usage(prompt, completion, self.settings.price(prompt, completion))

    def _code(self, parsed: ParsedAnswer, context: Context) -> str:
        """The new script, checked before any compute is spent; AnswerError says what is wrong."""
        parent = context.parent.code
        if parsed.edits:
            code = apply_edits(parent, parsed.edits)
        else:
            code = parsed.code or ""
            if parent.endswith("\n") and not code.endswith("\n"):
                code += "\n"
            if context.operator is not Operator.DRAFT and _fragment(code, parent):
                raise AnswerError(
                    f"the code block has {_lines(code)} lines against the script's {_lines(parent)}: it looks "
                    "like a fragment; give edit blocks, or the whole script in one block"
                )
        violation = context.protocol.frozen_violation(code)
        if violation:
            raise AnswerError(f"{violation}: {FROZEN_HINT}")
        metric = context.protocol.metric
        if metric in parent and metric not in code:
            raise AnswerError(f"the new script no longer prints the metric `{metric}`: keep its output as it is")
        problem = syntax_problem(code)
        if problem:
            raise AnswerError(f"the new script does not compile: {problem}")
        if _same(code, parent):
            raise AnswerError("the change does nothing: the new script equals the current one up to comments and formatting")
        if context.is_known(code):
            raise AnswerError("that script was already tried (it repeats an earlier node): propose a different change")
        return code

    def _plan(self, parsed: ParsedAnswer | None, context: Context) -> str:
        plan = parsed.plan if parsed is not None else ""
        if plan:
            return self._client.scrub(plan)
        return {Operator.DRAFT: "new approach", Operator.DEBUG: "fix"}.get(context.operator, "change") + " (no plan given)"

    def _rejected(
        self, context: Context, usage: Usage, meta: dict[str, Any], parsed: ParsedAnswer | None, reason: str
    ) -> Proposal:
        plan = self._plan(parsed, context) if parsed is not None else "no usable answer"
        return Proposal(
            operator=context.operator, plan=plan, code=context.parent.code, usage=usage,
            meta={"llm": meta}, rejected=self._client.scrub(" ".join(reason.split()))[:500],
        )


def write_llm_summary(tree: Tree, protocol: Protocol, settings: Mapping[str, Any]) -> str | None:
    """An LLM-written 'what worked and what did not' for a finished run, or None when the run's
    proposer is not an LLM (or there is nothing to summarise). ``settings`` are the run's settings
    (run.json's, with ``proposer`` and ``goal``) or just its proposer settings. Raises
    ProposerError when the endpoint fails: callers print a warning and go on."""
    options = settings.get("proposer", settings) if isinstance(settings.get("proposer"), Mapping) else settings
    name = options.get("name", "llm")
    if name == "auto":
        name, _ = choose_proposer(options)
    if name != "llm" or len(tree) < 2:
        return None
    llm = LLMSettings.from_settings(options)
    client = ChatClient(llm)
    goal = settings.get("goal", "") if options is not settings else ""
    messages = summary_messages(tree, protocol, str(goal or ""), max_prompt_tokens=llm.max_prompt_tokens)
    reply = client.chat(messages, temperature=llm.temperature)
    text = reply.content.strip()
    if not text:
        raise ProposerError(f"the model wrote no summary (finish reason {reply.finish_reason})")
    return text


def print_llm_summary(tree: Tree, protocol: Protocol, settings: Mapping[str, Any], *, stream: TextIO) -> None:
    """``write_llm_summary`` under a heading, for the faces' ``--llm-report``; a failure is a
    warning on stderr, never an error of the run."""
    try:
        text = write_llm_summary(tree, protocol, settings)
    except Exception as err:  # noqa: BLE001 - optional output must not fail the run
        print(f"autoresearch: warning: no LLM summary: {err}", file=sys.stderr)
        return
    if text:
        print(f"\n## What worked and what did not (written by the model)\n{text}", file=stream)
