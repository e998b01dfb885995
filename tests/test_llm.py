"""The LLM proposer through the real openai client, against a scripted server on 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from openai_server import server  # noqa: F401 - the fixture
from openai_server import FakeOpenAI, Reply, clear_openai_env, edit, script_of

from autoresearch_jupyter.core.errors import BudgetExhaustedError, ProposerError, UnknownPluginError
from autoresearch_jupyter.core.node import Node, Operator, Status, Usage
from autoresearch_jupyter.proposers import (
    Context,
    HybridProposer,
    LLMProposer,
    LLMSettings,
    MutateProposer,
    get_proposer,
    usage_totals,
)
from autoresearch_jupyter.proposers._memory import aide_memory, estimate_tokens
from autoresearch_jupyter.proposers._prompts import build_messages, messages_tokens
from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.testing import SCRIPT, ProposerConformance
from autoresearch_jupyter.core.tree import Tree

KEY = "sk-test-4f9c2e7a1b"
CODE = """# autoresearch: freeze
import os
DATA = [1, 2, 3]
# autoresearch: end
lr = 0.01
depth = 3
print(f"score: {lr * depth * sum(DATA)}")
"""
PROTOCOL = Protocol.for_script(CODE, metric="score", maximize=True, time_budget=42)


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    clear_openai_env(monkeypatch, KEY)


def baseline_tree(code: str = CODE) -> Tree:
    tree = Tree()
    tree.add(Node(id=0, parent=None, operator=Operator.BASELINE, plan="baseline", code=code,
                  status=Status.OK, metric=0.18, kept=True))
    return tree


def context(tree: Tree, parent: int = 0, operator: Operator = Operator.IMPROVE, progress: float = 0.1,
            protocol: Protocol = PROTOCOL, goal: str = "") -> Context:
    known = {n.code for n in tree}
    return Context(protocol=protocol, tree=tree, parent=tree[parent], operator=operator, progress=progress,
                   is_known=known.__contains__, goal=goal)


def llm(server: FakeOpenAI, **settings) -> LLMProposer:
    settings.setdefault("llm_retries", 1)
    return get_proposer("llm", seed=0, model="any-name", base_url=server.url, **settings)


def user_text(body) -> str:
    return "\n".join(m["content"] for m in body["messages"] if m["role"] == "user")


# ---- answers ---------------------------------------------------------------------------------


def test_edit_answer_and_the_request_the_server_received(server):
    server.add(Reply(edit("lr = 0.01", "lr = 0.03", "triple the learning rate"), prompt_tokens=700,
                     completion_tokens=40))
    proposal = llm(server).propose(context=context(baseline_tree(), goal="beat 0.5 on held-out data"))
    assert proposal.rejected is None and proposal.plan == "triple the learning rate"
    assert proposal.code == CODE.replace("lr = 0.01", "lr = 0.03")
    assert proposal.usage == Usage(700, 40, None)
    assert proposal.meta["llm"]["attempts"] == 1 and proposal.meta["llm"]["format"] == "edits"
    body = server.requests[0]
    assert body["model"] == "any-name" and "tools" not in body and "tool_choice" not in body
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    text = user_text(body)
    for words in ("beat 0.5 on held-out data", "Protocol (fixed", "`score`, to maximize", "42 s per run",
                  "READ-ONLY", "DATA = [1, 2, 3]", "# Current script", "lr = 0.01", "exactly ONE"):
        assert words in text, words
    frozen_at = text.index("READ-ONLY")
    assert text.index("DATA = [1, 2, 3]", frozen_at) < text.index("# Current script")
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(proposal)


def test_whole_file_answer(server):
    new = CODE.replace("depth = 3", "depth = 8")
    server.add(f"PLAN: a deeper model\n\nHere it is:\n```python\n{new}```\n")
    proposal = llm(server).propose(context=context(baseline_tree()))
    assert proposal.rejected is None and proposal.code == new and proposal.meta["llm"]["format"] == "file"


def test_garbage_gets_one_retry_with_the_error_then_a_rejected_node(server):
    server.add(Reply("I would try a bigger model.", prompt_tokens=500, completion_tokens=10),
               Reply("Really, a bigger model.", prompt_tokens=600, completion_tokens=12))
    proposal = llm(server).propose(context=context(baseline_tree()))
    assert proposal.rejected and proposal.rejected.startswith("unusable answer after one retry")
    assert "no change found" in proposal.rejected
    assert proposal.code == CODE  # the parent's code: nothing runs
    assert proposal.usage == Usage(1100, 22, None)  # the retry's tokens count too
    retry = server.requests[1]["messages"]
    assert [m["role"] for m in retry] == ["system", "user", "assistant", "user"]
    assert retry[2]["content"] == "I would try a bigger model."
    assert "could not be used: no change found" in retry[3]["content"]


def test_a_good_retry_is_used(server):
    server.add("Let me think.", edit("depth = 3", "depth = 5", "deeper"))
    proposal = llm(server).propose(context=context(baseline_tree()))
    assert proposal.rejected is None and "depth = 5" in proposal.code
    assert proposal.meta["llm"]["attempts"] == 2 and "no change found" in proposal.meta["llm"]["retried_because"]


def test_edit_of_frozen_code_is_retried_with_the_error_then_rejected(server):
    frozen_edit = edit("DATA = [1, 2, 3]", "DATA = [10, 20, 30]", "more data")
    server.add(frozen_edit, frozen_edit)
    proposal = llm(server).propose(context=context(baseline_tree()))
    assert "frozen code changed" in server.requests[1]["messages"][3]["content"]
    assert "read-only" in server.requests[1]["messages"][3]["content"]
    assert proposal.rejected and "frozen code changed" in proposal.rejected and proposal.code == CODE


@pytest.mark.parametrize("answer,why", [
    (edit("lr = 0.01", "lr = 0.01  # same", "nothing"), "does nothing"),
    (edit("lr = 0.01", "lr = (0.01", "broken"), "does not compile"),
    (edit("lr = 0.001", "lr = 0.1", "wrong search"), "not found"),
])
def test_unusable_changes_are_explained_to_the_model(server, answer, why):
    server.add(answer, edit("depth = 3", "depth = 4", "deeper"))
    proposal = llm(server).propose(context=context(baseline_tree()))
    assert proposal.rejected is None and why in server.requests[1]["messages"][3]["content"]


def test_fragments_and_a_lost_metric_are_sent_back(server):
    long_code = CODE + "".join(f"feature_{i} = {i}\n" for i in range(12))
    protocol = Protocol.for_script(long_code, metric="score", maximize=True)
    server.add("PLAN: lr\n```python\nlr = 0.1\n```", edit('print(f"score: {lr * depth * sum(DATA)}")', 'print(f"accuracy: {lr}")', "rename"),
               edit("depth = 3", "depth = 4", "deeper"))
    proposal = llm(server).propose(context=context(baseline_tree(long_code), protocol=protocol))
    assert proposal.rejected and "no longer prints the metric `score`" in proposal.rejected
    assert "looks like a fragment" in server.requests[1]["messages"][3]["content"]


def test_a_script_already_tried_is_not_proposed_again(server):
    tree = baseline_tree()
    tried = CODE.replace("lr = 0.01", "lr = 0.1")
    tree.add(Node(id=1, parent=0, operator=Operator.IMPROVE, plan="lr x10", code=tried, status=Status.OK,
                  metric=1.8, kept=True))
    server.add(edit("lr = 0.01", "lr = 0.1", "lr x10"), edit("lr = 0.01", "lr = 0.1", "lr x10 again"))
    proposal = llm(server).propose(context=context(tree))
    assert "already tried" in server.requests[1]["messages"][3]["content"]
    assert proposal.rejected and "already tried" in proposal.rejected


def test_empty_answers_and_refusals_are_rejected_without_retry(server):
    server.add(Reply(""), Reply(None, refusal="I can't help with that."))
    proposer = llm(server)
    empty = proposer.propose(context=context(baseline_tree()))
    refused = proposer.propose(context=context(baseline_tree()))
    assert empty.rejected and "empty answer" in empty.rejected
    assert refused.rejected and "refused" in refused.rejected and "can't help" in refused.rejected
    assert len(server.requests) == 2


def test_missing_usage_is_estimated(server):
    server.add(Reply(edit("depth = 3", "depth = 6"), usage=False))
    proposal = llm(server).propose(context=context(baseline_tree()))
    assert proposal.usage.prompt_tokens > 100 and proposal.usage.completion_tokens > 5
    assert proposal.meta["llm"]["usage_estimated"] is True


def test_cost_from_prices(server):
    server.add(Reply(edit("depth = 3", "depth = 6"), prompt_tokens=1000, completion_tokens=200))
    proposal = llm(server, price_in=3.0, price_out=15.0).propose(context=context(baseline_tree()))
    assert proposal.usage.cost == pytest.approx((1000 * 3 + 200 * 15) / 1e6)


# ---- faults ----------------------------------------------------------------------------------


def test_429_is_retried_by_the_client_then_succeeds(server):
    server.add(Reply(status=429, error="slow down"), edit("depth = 3", "depth = 7"))
    proposal = llm(server).propose(context=context(baseline_tree()))
    assert proposal.rejected is None and len(server.requests) == 2


def test_500s_until_the_retries_run_out_raise_a_proposer_error(server):
    server.default = Reply(status=500, error="upstream exploded")
    with pytest.raises(ProposerError) as info:
        llm(server, llm_retries=2).propose(context=context(baseline_tree()))
    message = str(info.value)
    assert len(server.requests) == 3  # the first try and two retries
    assert "answered 500 after 2 retries" in message and "upstream exploded" in message
    assert "autoresearch resume" in message and "\n" not in message


def test_an_answer_slower_than_the_timeout(server):
    server.add(Reply(edit("depth = 3", "depth = 9"), delay=5))
    start = time.monotonic()
    with pytest.raises(ProposerError, match=r"did not answer within 0.3 s"):
        llm(server, llm_timeout=0.3, llm_retries=0).propose(context=context(baseline_tree()))
    assert time.monotonic() - start < 3


def test_a_refused_connection(server):
    proposer = get_proposer("llm", model="m", base_url="http://127.0.0.1:9/v1", llm_retries=0)
    with pytest.raises(ProposerError, match="cannot connect to the model endpoint http://127.0.0.1:9/v1"):
        proposer.propose(context=context(baseline_tree()))


def test_a_rejected_key_is_never_repeated_in_the_message(server):
    server.add(Reply(status=401, error=f"Incorrect API key provided: {KEY}."))
    with pytest.raises(ProposerError) as info:
        llm(server).propose(context=context(baseline_tree()))
    assert "refused the API key from $OPENAI_API_KEY" in str(info.value)
    assert KEY not in str(info.value) and "[redacted]" in str(info.value)


def test_any_model_name_goes_to_the_given_base_url(server):
    server.add(edit("depth = 3", "depth = 4"))
    proposer = get_proposer("llm", model="gpt-4o-mini", base_url=server.url)
    assert proposer.propose(context=context(baseline_tree())).rejected is None
    assert server.requests[0]["model"] == "gpt-4o-mini"


# ---- budget and accounting -------------------------------------------------------------------


def tree_with_usage(*usages: Usage) -> Tree:
    tree = baseline_tree()
    for i, usage in enumerate(usages, 1):
        tree.add(Node(id=i, parent=0, operator=Operator.IMPROVE, plan=f"change {i}",
                      code=CODE.replace("depth = 3", f"depth = {10 + i}"), status=Status.OK, metric=0.1,
                      kept=False, usage=usage))
    return tree


def test_totals_come_from_the_tree_and_the_budget_stops_the_run(server):
    tree = tree_with_usage(Usage(600, 50), Usage(400, 62), None)
    assert usage_totals(tree) == Usage(1000, 112, None)
    with pytest.raises(BudgetExhaustedError, match=r"^token budget of 1000 spent \(1,112 used\)$"):
        llm(server, max_tokens=1000).propose(context=context(tree))
    with pytest.raises(BudgetExhaustedError, match="cost budget of 0.002 spent"):
        llm(server, max_cost=0.002, price_in=1.0, price_out=10.0).propose(context=context(tree))
    assert server.requests == []  # nothing was asked once the budget was spent
    server.add(edit("depth = 3", "depth = 5"))
    assert llm(server, max_tokens=1200).propose(context=context(tree)).rejected is None


def test_no_retry_when_the_first_answer_spent_the_budget(server):
    server.add(Reply("no edits here", prompt_tokens=900, completion_tokens=200))
    proposal = llm(server, max_tokens=1000).propose(context=context(baseline_tree()))
    assert proposal.rejected and "no retry: token budget of 1000 spent (1,100 used)" in proposal.rejected
    assert len(server.requests) == 1


# ---- prompts ---------------------------------------------------------------------------------


def grown_tree(n: int) -> Tree:
    """A search tree of ``n`` nodes with long plans, metrics, failures and rejections."""
    tree = baseline_tree()
    best, metric = 0, 0.18
    for i in range(1, n):
        plan = f"node {i}: switch the optimiser schedule and widen layer {i % 7} with dropout {i % 5 / 10}" * 2
        code = CODE.replace("depth = 3", f"depth = {i + 3}")
        if i % 6 == 0:
            node = Node(id=i, parent=best, operator=Operator.IMPROVE, plan=plan, code=code, status=Status.BUGGY,
                        kept=False, reason=f"ValueError: shapes ({i},) and (3,) not aligned at layer {i}")
        elif i % 11 == 0:
            node = Node(id=i, parent=best, operator=Operator.IMPROVE, plan=plan, code=code, status=Status.REJECTED,
                        reason="duplicate: this code was already tried")
        else:
            m = metric + (0.01 if i % 3 == 0 else -0.02)
            kept = m > metric
            node = Node(id=i, parent=best, operator=Operator.IMPROVE, plan=plan, code=code, status=Status.OK,
                        metric=m, kept=kept)
        tree.add(node)
        if node.kept:
            best, metric = i, node.metric
    return tree


def test_the_prompt_stays_under_the_cap_as_the_tree_grows_to_200_nodes(server):
    cap = 2000
    sizes, aide = [], []
    for n in (10, 50, 200):
        tree = grown_tree(n)
        best = tree.best(PROTOCOL)
        prompt = build_messages(context(tree, parent=best.id), max_prompt_tokens=cap)
        sizes.append(prompt.tokens)
        aide.append(estimate_tokens(aide_memory(tree, PROTOCOL)))
        assert prompt.tokens <= cap and prompt.memory_items > 0
    assert aide[2] > 10 * aide[0] and aide[2] > cap  # AIDE's memory alone outgrows the whole cap
    assert max(sizes) - min(sizes) < cap * 0.5
    # and the request really sent at 200 nodes is within the cap
    server.add(edit("lr = 0.01", "lr = 0.02"))
    tree = grown_tree(200)
    llm(server, max_prompt_tokens=cap).propose(context=context(tree, parent=tree.best(PROTOCOL).id))
    assert messages_tokens(server.requests[0]["messages"]) <= cap
    text = user_text(server.requests[0])
    assert "Path from the baseline to the best node" in text and "Recent failures" in text


def test_memory_shows_what_was_tried_at_this_parent():
    tree = tree_with_usage(None, None)
    tree[1].plan, tree[2].plan = "switch to gradient boosting", "add polynomial features"
    tree[2].status, tree[2].reason, tree[2].metric = Status.BUGGY, "MemoryError: too many features", None
    text = build_messages(context(tree), max_prompt_tokens=6000).messages[1]["content"]
    tried = text.split("Already tried from the current script", 1)[1].split("\n##", 1)[0]
    assert "switch to gradient boosting -> score 0.1 (-0.08), reverted" in tried
    assert "add polynomial features -> buggy: MemoryError: too many features" in tried


def test_each_operator_has_its_own_task():
    tree = baseline_tree()
    failed = CODE.replace("depth = 3", "depth = int('x')")
    tree.add(Node(id=1, parent=0, operator=Operator.IMPROVE, plan="p", code=failed, status=Status.BUGGY,
                  reason="ValueError: invalid literal for int() with base 10: 'x'",
                  output_tail="Traceback (most recent call last):\n  File train.py, line 6\nValueError: invalid literal"))

    def task(**kw) -> str:
        return build_messages(context(tree, **kw), max_prompt_tokens=6000).messages[1]["content"].split("# Task")[1]

    assert "fundamentally different approach" in task(operator=Operator.DRAFT)
    assert "bold change" in task(progress=0.1) and "fine-tune" in task(progress=0.9)
    debug = task(parent=1, operator=Operator.DEBUG)
    assert "ValueError: invalid literal" in debug and "Traceback" in debug and "smallest change" in debug


# ---- the factory, settings, hybrid -----------------------------------------------------------


def test_auto_says_which_proposer_it_chose(monkeypatch, server):
    monkeypatch.delenv("OPENAI_API_KEY")
    chosen = get_proposer("auto", seed=0)
    assert isinstance(chosen, MutateProposer) and chosen.name == "mutate (auto: no model endpoint configured)"
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert "no model" in get_proposer("auto").name and isinstance(get_proposer("auto"), MutateProposer)
    monkeypatch.setenv("OPENAI_MODEL", "local-model")
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    chosen = get_proposer("auto", seed=0)
    assert isinstance(chosen, LLMProposer) and chosen.name == f"llm (model local-model at {server.url})"
    with pytest.raises(UnknownPluginError, match="Valid proposers: mutate, llm, auto"):
        get_proposer("gpt")


def test_settings_round_trip_and_bad_settings(server):
    settings = LLMSettings(model="m", base_url=server.url, max_tokens=5000, hybrid_after=0.7)
    assert settings.to_settings() == {"name": "llm", "model": "m", "base_url": server.url, "max_tokens": 5000,
                                      "hybrid_after": 0.7}
    assert LLMSettings.from_settings(settings.to_settings()) == settings
    for bad, words in [({"colour": 1}, "unknown LLM proposer setting"), ({"api_key_env": "HOME"}, "secret"),
                       ({"max_cost": 1.0}, "needs --price-in"), ({"temperature": 5}, "--temperature"),
                       ({"base_url": "localhost:8000"}, "http")]:
        with pytest.raises(ProposerError, match=words):
            LLMSettings.from_settings(bad)
    with pytest.raises(ProposerError, match="needs a model name"):
        get_proposer("llm", base_url=server.url)


def test_api_key_from_another_variable(monkeypatch, server):
    monkeypatch.delenv("OPENAI_API_KEY")
    monkeypatch.setenv("MY_LLM_TOKEN", "tok-123456")
    server.add(edit("depth = 3", "depth = 4"))
    llm(server, api_key_env="MY_LLM_TOKEN").propose(context=context(baseline_tree()))
    assert server.headers[0]["authorization"] == "Bearer tok-123456"
    with pytest.raises(ProposerError, match=r"no API key .* \$OPENAI_API_KEY"):
        get_proposer("llm", model="m")  # OpenAI's own endpoint needs a key


def test_hybrid_gives_late_fine_tuning_to_mutate(server):
    proposer = get_proposer("llm", model="m", base_url=server.url, hybrid_after=0.7)
    assert isinstance(proposer, HybridProposer) and "after 70%" in proposer.name
    assert proposer.operators == {Operator.DRAFT, Operator.IMPROVE, Operator.DEBUG}
    late = proposer.propose(context=context(baseline_tree(), progress=0.8))
    assert late.meta["hybrid"] == "mutate" and "mutate" in late.meta and server.requests == []
    server.add(edit("depth = 3", "depth = 4"))
    early = proposer.propose(context=context(baseline_tree(), progress=0.5))
    assert early.meta["hybrid"] == "llm" and len(server.requests) == 1
    server.add(edit("depth = 3", "depth = 5"))
    draft = proposer.propose(context=context(baseline_tree(), operator=Operator.DRAFT, progress=0.9))
    assert draft.meta["hybrid"] == "llm"
    no_literals = 'print("score: 1")\n'
    server.add('PLAN: print more\n```python\nprint("score: 2")\n```')
    fallback = proposer.propose(context=context(baseline_tree(no_literals), progress=0.9,
                                                protocol=Protocol.for_script(no_literals, metric="score",
                                                                             maximize=True)))
    assert fallback.meta["hybrid"] == "llm" and fallback.rejected is None


def test_importing_the_package_does_not_import_openai():
    code = ("import sys, autoresearch_jupyter, autoresearch_jupyter.proposers, autoresearch_jupyter.engine.search\n"
            "from autoresearch_jupyter.proposers import get_proposer, LLMSettings\n"
            "get_proposer('mutate'); LLMSettings(model='m')\n"
            "assert 'openai' not in sys.modules, 'openai imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True)


class TestLLMProposerConformance(ProposerConformance):
    @pytest.fixture
    def proposer(self, server):
        line = next(ln for ln in SCRIPT.splitlines() if ln.startswith("lr = 0.01"))
        server.default = lambda body: edit(line, line.replace("0.01", "0.02"), "double lr") if line in script_of(
            body) else "nothing"
        return llm(server)
