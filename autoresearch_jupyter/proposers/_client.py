"""One chat request to an OpenAI-compatible endpoint, through the ``openai`` client.

The client is imported here, lazily, so ``import autoresearch_jupyter`` never pays for it. The
base URL is always passed explicitly (never left to the client's default), so any model name goes
to the endpoint the user named; AIDE sends ``gpt-*`` names to OpenAI whatever the base URL.
Requests carry no ``tools``: the answer format is plain text.

Transient faults (timeouts, refused connections, 429, 5xx) are retried with backoff by the
client's own retry loop (``max_retries``, honouring ``Retry-After``); what is left after that
becomes one ProposerError line saying what happened and how to go on. The run then stops with
state "failed" and its journal intact, so ``autoresearch resume RUN`` continues it. Every text that
comes back from the endpoint is scrubbed of the API key before anything stores or prints it.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from ..core.errors import ProposerError
from ._config import DEFAULT_BASE_URL, LLMSettings, display_url
from ._memory import estimate_tokens

__all__ = ["ChatClient", "Reply"]

RESUME = "the journal is intact: continue with `autoresearch resume RUN` once it works again"
REDACTED = "[redacted]"


@dataclasses.dataclass(frozen=True)
class Reply:
    """One answer: its text, its tokens (from ``usage``, or estimated when the endpoint sent none)."""

    content: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None
    refusal: str | None = None
    estimated: bool = False


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
        self._client = openai.OpenAI(
            api_key=key or "no-key", base_url=self.base_url, timeout=settings.llm_timeout,
            max_retries=settings.llm_retries,
        )

    def describe(self) -> str:
        return f"model {self.model} at {self.url}"

    def scrub(self, text: str) -> str:
        """``text`` without the API key (endpoints echo parts of bad keys in their errors)."""
        if self._key and len(self._key) >= 4:
            text = text.replace(self._key, REDACTED)
        return text

    def chat(self, messages: list[dict[str, str]], *, temperature: float | None) -> Reply:
        """One completion; raises ProposerError once the client's retries are spent."""
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages}
        if temperature is not None:
            kwargs["temperature"] = temperature
        try:
            response = self._client.chat.completions.create(**kwargs)
        except self._openai.OpenAIError as err:
            raise ProposerError(self._explain(err)) from None
        return self._reply(response, messages)

    def _reply(self, response: Any, messages: list[dict[str, str]]) -> Reply:
        try:
            choice = response.choices[0]
            message = choice.message
            content = message.content or ""
            refusal = getattr(message, "refusal", None)
            finish = choice.finish_reason
        except (AttributeError, IndexError, TypeError):
            content, refusal, finish = "", None, None
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
        )

    def _explain(self, err: Exception) -> str:
        """One line: what went wrong with the endpoint, after how many retries, how to go on."""
        o = self._openai
        retries = self.settings.llm_retries
        after = f" after {retries} {'retry' if retries == 1 else 'retries'}" if retries else ""
        where = f"the model endpoint {self.url}"
        if isinstance(err, o.APITimeoutError):
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
