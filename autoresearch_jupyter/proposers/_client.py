"""One chat request to an OpenAI-compatible endpoint, through the ``openai`` client.

The client is imported here, lazily, so ``import autoresearch_jupyter`` never pays for it. The
base URL is always passed explicitly (never left to the client's default), so any model name goes
to the endpoint the user named; AIDE sends ``gpt-*`` names to OpenAI whatever the base URL.
Requests carry no ``tools``: the answer format is plain text.

The endpoint is outside our control, so nothing it does may crash or stall the run:

- ``llm_timeout`` bounds each whole request, however slowly its bytes arrive (the client's own
  timeout is per read, so a server that drips a byte every few seconds would hold it forever):
  each attempt runs in a worker thread that is abandoned at the deadline;
- transient faults (timeouts, refused connections, 429, 5xx) are retried ``llm_retries`` times
  by our loop, waiting with backoff or for ``Retry-After``, capped at the request timeout (at most
  ``RETRY_AFTER_CAP`` seconds, and saying so); every retry and wait is recorded (``Reply.attempts``,
  the node's meta);
- an answer that is not a chat completion (HTML, a body that is not JSON, a stream cut short)
  raises :class:`BadAnswerError`: the proposer records a rejected node and the search goes on;
- what is left (endpoint down, bad key) becomes one ProposerError line saying how to go on: the
  run stops with its journal intact, so ``autoresearch resume RUN`` continues it.

Every text that comes back from the endpoint is scrubbed of the API key before anything stores
or prints it.
"""

from __future__ import annotations

import dataclasses
import email.utils
import logging
import os
import threading
import time
from typing import Any, Mapping

from ..core.errors import ProposerError
from ._config import DEFAULT_BASE_URL, LLMSettings, display_url
from ._memory import estimate_tokens

__all__ = ["BadAnswerError", "ChatClient", "Reply"]

logger = logging.getLogger(__name__)

RESUME = "the journal is intact: continue with `autoresearch resume RUN` once it works again"
REDACTED = "[redacted]"


RETRY_AFTER_CAP = 30.0  # seconds: an endpoint that asks for longer is retried after this
BACKOFF = (0.5, 8.0)  # first wait and cap of the exponential backoff without Retry-After


class BadAnswerError(ProposerError):
    """The endpoint answered, but not with a chat completion; the node is rejected, the run goes on."""

    def __init__(self, message: str, attempts: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.attempts = attempts


@dataclasses.dataclass(frozen=True)
class Reply:
    """One answer: its text, its tokens (from ``usage``, or estimated when the endpoint sent none)."""

    content: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None
    refusal: str | None = None
    estimated: bool = False
    attempts: tuple[dict[str, Any], ...] = ()  # the failed tries before this answer: error and wait


class _Deadline(Exception):
    """An attempt ran past ``llm_timeout`` (counted as a timeout of the endpoint)."""


class ChatClient:
    """A configured ``openai.OpenAI`` client plus the error translation of this package."""

    def __init__(self, settings: LLMSettings, *, environ: dict[str, str] | None = None) -> None:
        env = dict(os.environ if environ is None else environ)
        self.settings = settings
        model = settings.resolved_model(env)
        if not model:
            raise ProposerError(
                "the llm proposer needs a model name: give --model NAME or set OPENAI_MODEL "
                "(or use --proposer mutate, which works offline)"
            )
        self.model = model
        self.base_url = settings.resolved_base_url(env).rstrip("/")
        self.url = display_url(self.base_url)
        key = env.get(settings.api_key_env, "")
        if not key and self.base_url == DEFAULT_BASE_URL:
            raise ProposerError(
                f"no API key for {self.url}: set ${settings.api_key_env} "
                "(or give --base-url for a local server that needs none)"
            )
        self._key = key
        import openai  # lazily: only an LLM run pays for the import

        self._openai = openai
        self._client = self._new_client()
        self.sleep = time.sleep  # waits between retries (a test may record them)

    def _new_client(self) -> Any:
        return self._openai.OpenAI(
            api_key=self._key or "no-key", base_url=self.base_url, timeout=self.settings.llm_timeout,
            max_retries=0,  # our loop retries: it bounds whole requests and caps Retry-After
        )

    def describe(self) -> str:
        return f"model {self.model} at {self.url}"

    def scrub(self, text: str) -> str:
        """``text`` without the API key (endpoints echo parts of bad keys in their errors)."""
        if self._key and len(self._key) >= 4:
            text = text.replace(self._key, REDACTED)
        return text

    def chat(self, messages: list[dict[str, str]], *, temperature: float | None) -> Reply:
        """One completion. Raises BadAnswerError when the endpoint's answers are not completions
        (after the retries), ProposerError when it cannot be reached or refuses us."""
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages}
        if temperature is not None:
            kwargs["temperature"] = temperature
        attempts: list[dict[str, Any]] = []
        retries = self.settings.llm_retries
        for attempt in range(retries + 1):
            try:
                response = self._attempt(kwargs)
                return self._reply(response, messages, attempts)
            except (_Deadline, self._openai.OpenAIError, BadAnswerError, ValueError) as err:
                bad = self._bad_answer(err)
                transient = bad is not None or self._transient(err)
                wait = self._wait(err, attempt) if transient and attempt < retries else None
                attempts.append({"error": bad or self._short(err), **({"wait": round(wait, 3)} if wait else {})})
                if wait is None:
                    if bad is not None:
                        raise BadAnswerError(
                            f"the model endpoint {self.url} gave no usable answer{self._after(attempt)}: {bad}",
                            attempts,
                        ) from None
                    raise ProposerError(self._explain(err, attempt)) from None
                self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(self, kwargs: dict[str, Any]) -> Any:
        """One request, bounded as a whole by ``llm_timeout``: a thread we stop waiting for."""
        box: dict[str, Any] = {}
        done = threading.Event()
        client = self._client

        def call() -> None:
            try:
                box["response"] = client.chat.completions.create(**kwargs)
            except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
                box["error"] = err
            finally:
                done.set()

        threading.Thread(target=call, daemon=True, name="llm-request").start()
        if not done.wait(self.settings.llm_timeout):
            self._client = self._new_client()  # the stuck one ends when its read times out; not reused
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
            raise _Deadline()
        if "error" in box:
            raise box["error"]
        return box["response"]

    def _bad_answer(self, err: BaseException) -> str | None:
        """What was wrong with an answer that is not a completion; None for other faults."""
        if isinstance(err, BadAnswerError):
            return str(err)
        if isinstance(err, ValueError):  # the client could not parse the body as JSON
            return f"the body is not JSON ({str(err).splitlines()[0][:80]})"
        if isinstance(err, self._openai.APIResponseValidationError):
            return "the body is not a chat completion"
        if isinstance(err, self._openai.APIConnectionError) and not isinstance(err, self._openai.APITimeoutError):
            cause = err.__cause__ or err.__context__
            name = type(cause).__name__ if cause is not None else ""
            if name in ("RemoteProtocolError", "ReadError", "IncompleteRead", "DecodingError"):
                return f"the answer was cut short ({name}: {self.scrub(str(cause))[:80]})"
        return None

    def _transient(self, err: BaseException) -> bool:
        o = self._openai
        if isinstance(err, (_Deadline, o.APITimeoutError, o.APIConnectionError, o.RateLimitError)):
            return True
        return isinstance(err, o.APIStatusError) and (err.status_code >= 500 or err.status_code in (408, 409))

    def _wait(self, err: BaseException, attempt: int) -> float:
        """Seconds before the next try: the endpoint's Retry-After (capped, and said), else backoff."""
        asked = _retry_after(getattr(getattr(err, "response", None), "headers", None))
        if asked is None:
            return min(BACKOFF[1], BACKOFF[0] * 2**attempt)
        cap = min(RETRY_AFTER_CAP, max(1.0, self.settings.llm_timeout))
        if asked > cap:
            logger.warning("%s asked to wait %g s before retrying (Retry-After); waiting %g s, the cap "
                           "(the request timeout, at most %g s)", self.url, asked, cap, RETRY_AFTER_CAP)
            return cap
        return max(0.0, asked)

    def _short(self, err: BaseException) -> str:
        if isinstance(err, _Deadline):
            return f"no complete answer within {self.settings.llm_timeout:g} s"
        status = getattr(err, "status_code", None)
        return self.scrub(f"{type(err).__name__}{f' {status}' if status else ''}")[:120]

    @staticmethod
    def _after(attempt: int) -> str:
        return f" after {attempt} {'retry' if attempt == 1 else 'retries'}" if attempt else ""

    def _reply(self, response: Any, messages: list[dict[str, str]], attempts: list[dict[str, Any]]) -> Reply:
        if isinstance(response, (str, bytes)):  # a 200 with a body that is not JSON (an HTML page)
            text = " ".join(str(response if isinstance(response, str) else response.decode(errors="replace")).split())
            raise BadAnswerError(f"the body is not a chat completion ({self.scrub(text)[:80]!r})", [])
        try:
            choice = response.choices[0]
            message = choice.message
            content = message.content or ""
            refusal = getattr(message, "refusal", None)
            finish = choice.finish_reason
        except (AttributeError, IndexError, TypeError):
            raise BadAnswerError("the answer has no choices (not a chat completion)", []) from None
        if not isinstance(content, str):
            raise BadAnswerError("the answer's content is not text", [])
        usage = getattr(response, "usage", None)
        prompt = getattr(usage, "prompt_tokens", None)
        completion = getattr(usage, "completion_tokens", None)
        estimated = not isinstance(prompt, int) or not isinstance(completion, int)
        if not isinstance(prompt, int) or not isinstance(completion, int):  # some local servers send no usage
            prompt = sum(estimate_tokens(m["content"]) for m in messages)  # count what we sent and got
            completion = estimate_tokens(content)
        return Reply(
            content=self.scrub(content), prompt_tokens=prompt, completion_tokens=completion,
            finish_reason=finish, refusal=self.scrub(refusal) if refusal else None, estimated=estimated,
            attempts=tuple(attempts),
        )

    def _explain(self, err: BaseException, attempt: int) -> str:
        """One line: what went wrong with the endpoint, after how many retries, how to go on."""
        o = self._openai
        after = self._after(attempt)
        where = f"the model endpoint {self.url}"
        if isinstance(err, (_Deadline, o.APITimeoutError)):
            what = f"{where} did not answer within {self.settings.llm_timeout:g} s{after}"
        elif isinstance(err, o.APIConnectionError):
            cause = err.__cause__ or err.__context__
            detail = f": {type(cause).__name__}" if cause is not None else ""
            what = f"cannot connect to {where}{after}{detail}"
        elif isinstance(err, (o.AuthenticationError, o.PermissionDeniedError)):
            what = (
                f"{where} refused the API key from ${self.settings.api_key_env} "
                f"({err.status_code}: {self._server_message(err)})"
            )
        elif isinstance(err, o.RateLimitError):
            what = f"{where} kept answering 429 (rate limit){after}: {self._server_message(err)}"
        elif isinstance(err, o.NotFoundError):
            what = f"{where} answered 404 for model {self.model!r}: {self._server_message(err)}"
        elif isinstance(err, o.APIStatusError):
            what = f"{where} answered {err.status_code}{after if err.status_code >= 500 else ''}: {self._server_message(err)}"
        else:
            what = f"{where} failed: {type(err).__name__}: {self.scrub(str(err))[:200]}"
        return f"LLM proposer stopped: {what}; {RESUME}".replace("\n", " ")

    def _server_message(self, err: Any) -> str:
        body = getattr(err, "body", None)
        message = None
        if isinstance(body, dict):
            inner = body.get("error", body)
            message = inner.get("message") if isinstance(inner, dict) else inner
        text = str(message or getattr(err, "message", "") or "no details")
        return self.scrub(" ".join(text.split()))[:200]


def _retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date); None if absent."""
    if not headers:
        return None
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return float(ms) / 1000.0
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return float(value)
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return when.timestamp() - time.time()
    except (TypeError, ValueError, OverflowError):
        return None
