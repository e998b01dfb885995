"""A small OpenAI-compatible chat server for tests: scripted answers over real HTTP on 127.0.0.1.

The LLM proposer is tested through the real ``openai`` client against this server, never a real
provider. It speaks ``POST /v1/chat/completions`` and answers from a script: each entry is a
:class:`Reply` (content, status code, delay, usage, headers) or a callable that gets the request
body and returns one (or a plain string). It records every request body and its headers.

    with FakeOpenAI(Reply("PLAN: ..."), Reply(status=500)) as server:
        client = OpenAI(base_url=server.url, api_key="x")
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self, Union

import pytest

__all__ = ["FakeOpenAI", "Reply", "clear_openai_env", "edit", "script_of"]

OPENAI_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID",
               "OPENAI_ADMIN_KEY")


def clear_openai_env(monkeypatch: pytest.MonkeyPatch, key: str | None = None) -> None:
    """No OPENAI_* variable of the machine leaks into a test (``auto`` would pick them up);
    ``key`` becomes the test's OPENAI_API_KEY."""
    for name in OPENAI_VARS:
        monkeypatch.delenv(name, raising=False)
    if key is not None:
        monkeypatch.setenv("OPENAI_API_KEY", key)


@pytest.fixture
def server():
    """A fake OpenAI endpoint on 127.0.0.1 for one test (import this fixture into a test module)."""
    with FakeOpenAI() as fake:
        yield fake


@dataclasses.dataclass
class Reply:
    """One scripted answer. Error statuses send an OpenAI-style error body and, unless ``headers``
    say otherwise, ``retry-after-ms: 10`` so the client's retries stay fast."""

    content: str | None = ""
    status: int = 200
    delay: float = 0.0
    prompt_tokens: int | None = None  # None: estimated from the request (chars / 4)
    completion_tokens: int | None = None  # None: estimated from the content
    usage: bool = True  # False: send no usage object (some local servers do not)
    finish_reason: str = "stop"
    refusal: str | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    error: str = "scripted error"
    # Chaos, for the client's robustness tests:
    raw: bytes | None = None  # send this body as it is (with ``status`` and ``content_type``)
    content_type: str = "application/json"
    drip: float = 0.0  # seconds between single bytes of the body
    cut: bool = False  # announce the full length, send half the body and close the connection


Entry = Union[Reply, str, Callable[[dict[str, Any]], Union[Reply, str]]]  # noqa: UP007 (a runtime alias)


def script_of(body: dict[str, Any]) -> str:
    """The current script the proposer put in the first user message (the last fenced block
    under '# Current script')."""
    text = next(m["content"] for m in body["messages"] if m["role"] == "user")
    part = text.split("# Current script", 1)[1]
    return part.split("```python\n", 1)[1].split("\n```", 1)[0] + "\n"


def edit(search: str, replace: str, plan: str = "a change") -> str:
    """An answer with one search/replace block."""
    return f"PLAN: {plan}\n\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {"_raw": raw.decode(errors="replace")}
        fake = self.server.fake
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}}, {})
            return
        reply = fake._next(body, dict(self.headers))
        if reply.delay and fake._stopping.wait(reply.delay):
            return
        if reply.raw is not None or reply.drip or reply.cut:
            self._chaos(reply, fake)
            return
        if reply.status != 200:
            headers = reply.headers or {"retry-after-ms": "10"}
            self._send(reply.status, {"error": {"message": reply.error, "type": "scripted", "code": None}}, headers)
            return
        content = reply.content or ""
        prompt = reply.prompt_tokens
        if prompt is None:
            prompt = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4
        completion = reply.completion_tokens if reply.completion_tokens is not None else len(content) // 4
        message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": reply.refusal}
        data: dict[str, Any] = {
            "id": f"chatcmpl-{len(fake.requests)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", "?"),
            "choices": [{"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}],
        }
        if reply.usage:
            data["usage"] = {"prompt_tokens": prompt, "completion_tokens": completion,
                             "total_tokens": prompt + completion}
        fake.served.append((prompt, completion) if reply.usage else (0, 0))
        self._send(200, data, reply.headers)

    def _chaos(self, reply: Reply, fake: FakeOpenAI) -> None:
        payload = reply.raw
        if payload is None:
            message = {"role": "assistant", "content": reply.content, "refusal": None}
            payload = json.dumps({
                "id": "chatcmpl-chaos", "object": "chat.completion", "created": int(time.time()), "model": "m",
                "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
            }).encode()
        try:
            self.send_response(reply.status)
            self.send_header("content-type", reply.content_type)
            self.send_header("content-length", str(len(payload)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if reply.cut:
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            if not reply.drip:
                self.wfile.write(payload)
                return
            for i in range(len(payload)):
                self.wfile.write(payload[i : i + 1])
                self.wfile.flush()
                if fake._stopping.wait(reply.drip):
                    return
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _send(self, status: int, data: dict[str, Any], headers: dict[str, str]) -> None:
        payload = json.dumps(data).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
            pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeOpenAI


class FakeOpenAI:
    """The server; a context manager. ``url`` is the base URL to give the client (…/v1)."""

    def __init__(self, *entries: Entry, default: Entry | None = None) -> None:
        self.entries: list[Entry] = list(entries)
        self.default = default
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.served: list[tuple[int, int]] = []  # (prompt, completion) tokens reported per 200 answer
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def add(self, *entries: Entry) -> None:
        with self._lock:
            self.entries.extend(entries)

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in headers.items()})
            entry = self.entries.pop(0) if self.entries else self.default
        if entry is None:
            return Reply(status=500, error="the fake server has no scripted answer left")
        if callable(entry):
            entry = entry(body)
        return Reply(entry) if isinstance(entry, str) else entry

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
