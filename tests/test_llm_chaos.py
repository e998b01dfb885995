"""The LLM client against an endpoint that misbehaves: a real HTTP server on 127.0.0.1 that sends
HTML, bodies that are not JSON, answers cut short, bytes one at a time, and long Retry-After."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from openai_server import FakeOpenAI, Reply, clear_openai_env, edit
from sandboxing import cli

from autoresearch_jupyter.core.errors import ProposerError
from autoresearch_jupyter.proposers._client import BadAnswerError, ChatClient
from autoresearch_jupyter.proposers._config import LLMSettings

SCRIPT = "x = 1\nprint(f'score: {x}')\n"
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def _env(monkeypatch):
    clear_openai_env(monkeypatch, "sk-chaos")


def client(server: FakeOpenAI, **settings) -> ChatClient:
    return ChatClient(LLMSettings.from_settings({"name": "llm", "model": "m", "base_url": server.url, **settings}))


@pytest.mark.parametrize("reply, words", [
    (Reply(raw=b"<html><body><h1>502 Bad Gateway</h1></body></html>", content_type="text/html"), "not a chat completion"),
    (Reply(raw=b"{this is not json", content_type="application/json"), "not JSON"),
    (Reply(raw=b'{"object": "list", "data": []}', content_type="application/json"), "no choices"),
    (Reply("PLAN: x\n", cut=True), "cut short"),
])
def test_bad_answers_raise_bad_answer_with_the_retries_recorded(reply: Reply, words: str) -> None:
    with FakeOpenAI(default=reply) as server:
        chat = client(server, llm_retries=1)
        chat.sleep = lambda s: None
        with pytest.raises(BadAnswerError, match=words) as caught:
            chat.chat(MESSAGES, temperature=None)
        assert len(caught.value.attempts) == 2 and "wait" in caught.value.attempts[0]
        assert len(server.requests) == 2


def test_a_dripping_endpoint_is_bounded_by_the_whole_request_timeout() -> None:
    with FakeOpenAI(default=Reply("PLAN: slow", drip=0.5)) as server:
        chat = client(server, llm_retries=1, llm_timeout=1.5)
        started = time.monotonic()
        with pytest.raises(ProposerError, match="did not answer within 1.5 s after 1 retry"):
            chat.chat(MESSAGES, temperature=None)
        assert time.monotonic() - started < 1.5 * 2 + 2.0  # two attempts and one short wait, not minutes


def test_retry_after_is_capped_and_said(caplog: pytest.LogCaptureFixture) -> None:
    waits: list[float] = []
    with FakeOpenAI(Reply(status=429, headers={"retry-after": "100"}), Reply("PLAN: fine")) as server:
        chat = client(server, llm_retries=2, llm_timeout=5)
        chat.sleep = waits.append
        with caplog.at_level("WARNING"):
            reply = chat.chat(MESSAGES, temperature=None)
    assert reply.content == "PLAN: fine"
    assert waits == [5.0]  # capped at the request timeout, not 100 s
    assert reply.attempts == ({"error": "RateLimitError 429", "wait": 5.0},)
    assert "asked to wait 100 s" in caplog.text and "the cap" in caplog.text


def test_cli_run_goes_on_past_garbage_answers_and_records_them(tmp_path: Path) -> None:
    good = edit("x = 1", "x = 2", "raise x")
    replies = [
        Reply(raw=b"<html>oops</html>", content_type="text/html"),
        Reply(raw=b"<html>oops</html>", content_type="text/html"),
        Reply(raw=b"{nope", content_type="application/json"),
        Reply(raw=b"{nope", content_type="application/json"),
        Reply(status=503, headers={"retry-after": "100"}),
        Reply(good),
    ]
    (tmp_path / "score.py").write_text(SCRIPT)
    with FakeOpenAI(*replies, default=Reply(edit("x = 2", "x = 3", "raise x more"))) as server:
        started = time.monotonic()
        proc = cli("run", "score.py", "--metric", "score", "--maximize", "--steps", "3", "--proposer", "llm",
                   "--model", "m", "--base-url", server.url, "--llm-retries", "1", "--llm-timeout", "2",
                   "--runs-dir", str(tmp_path / "runs"), "--json", cwd=tmp_path, env={"OPENAI_API_KEY": "sk-chaos"})
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "asked to wait 100 s" in proc.stderr
    assert time.monotonic() - started < 60
    run = next(p for p in (tmp_path / "runs").iterdir() if not p.name.startswith("."))
    shown = json.loads(cli("show", str(run), "--json", cwd=tmp_path).stdout)
    nodes = shown["nodes"][1:]
    assert [n["status"] for n in nodes] == ["rejected", "rejected", "ok"]
    assert "not a chat completion" in nodes[0]["reason"] and "not JSON" in nodes[1]["reason"]
    assert nodes[0]["meta"]["llm"]["transport"][0]["wait"] > 0
    assert nodes[2]["meta"]["llm"]["transport"] == [{"error": "InternalServerError 503", "wait": 2.0}]
    assert nodes[2]["metric"] == 2.0
