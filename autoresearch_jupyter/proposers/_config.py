"""Settings of the LLM proposer, one plain dataclass for every face.

Each field is a key of ``settings["proposer"]`` in run.json and a CLI flag of ``autoresearch
run`` (underscores become dashes: ``max_prompt_tokens`` is ``--max-prompt-tokens``); the notebook
face can declare the same names as traitlets and pass them through unchanged. Values left as
None fall back to the environment (``OPENAI_MODEL``, ``OPENAI_BASE_URL``) or to a default.

The API key is never a setting: only the *name* of the environment variable that holds it is
stored, so run.json, the journal and exported files cannot leak it. The name must look like a
secret to the executor's scrubber (it contains KEY, TOKEN, SECRET ... or starts with OPENAI_ and
the like), so that proposed code running in a node never sees the key either.

``auto`` (the default proposer) means: the LLM proposer when a model endpoint is configured (a
model name or a base URL, given as settings or in ``OPENAI_MODEL`` / ``OPENAI_BASE_URL``), the
offline ``mutate`` proposer otherwise. An API key alone does not pick a model, so it selects
``mutate`` and the proposer's name says why; choosing a model for the user would spend their money
on a guess.
"""

from __future__ import annotations

import dataclasses
import math
import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

from ..core.errors import ProposerError
from ..core.credentials import is_secret

__all__ = ["DEFAULT_BASE_URL", "LLMSettings", "choose_proposer", "display_url"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


@dataclasses.dataclass(frozen=True)
class LLMSettings:
    """The LLM proposer's settings; the docstring of each field is its help text."""

    model: str | None = None
    """Model name, sent as given to the endpoint (default: $OPENAI_MODEL)."""
    base_url: str | None = None
    """OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else OpenAI's)."""
    temperature: float | None = None
    """Sampling temperature (default: the model's own; reasoning models accept no other)."""
    api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable that holds the API key (the key itself is never stored)."""
    max_prompt_tokens: int = 6000
    """Cap on a prompt's estimated tokens: the memory of what was tried is cut to fit."""
    max_tokens: int | None = None
    """Token budget of the run (prompt + completion, retries included); reaching it ends the run."""
    max_cost: float | None = None
    """Cost budget of the run, in the currency of the prices; needs price_in and price_out."""
    price_in: float | None = None
    """Price of 1M prompt tokens (for the cost of each node)."""
    price_out: float | None = None
    """Price of 1M completion tokens."""
    llm_timeout: float = 120.0
    """Seconds to wait for one answer before the client retries."""
    llm_retries: int = 3
    """Retries (with backoff) after a timeout, refused connection, 429 or 5xx; then the run stops."""
    hybrid_after: float | None = None
    """From this fraction of the budget on, IMPROVE goes to the mutate proposer when the parent
    has tunable literals (late fine-tuning without tokens); None: never."""
    llm_report: bool = False
    """Ask the model for a 'what worked and what did not' summary at the end of the run."""

    def __post_init__(self) -> None:
        def bad(what: str) -> ProposerError:
            return ProposerError(what)

        if self.temperature is not None and not 0 <= self.temperature <= 2:
            raise bad(f"--temperature must be between 0 and 2, got {self.temperature}")
        if not isinstance(self.max_prompt_tokens, int) or self.max_prompt_tokens < 500:
            raise bad(f"--max-prompt-tokens must be an integer of at least 500, got {self.max_prompt_tokens!r}")
        if self.max_tokens is not None and (not isinstance(self.max_tokens, int) or self.max_tokens <= 0):
            raise bad(f"--max-tokens must be a positive integer, got {self.max_tokens!r}")
        for name in ("max_cost", "price_in", "price_out"):
            value = getattr(self, name)
            if value is not None and not (value >= 0 and math.isfinite(value)):
                raise bad(f"--{name.replace('_', '-')} must be a non-negative number, got {value!r}")
        if self.max_cost is not None and (self.price_in is None or self.price_out is None):
            raise bad("--max-cost needs --price-in and --price-out (prices per 1M tokens) to count cost")
        if not (self.llm_timeout > 0 and math.isfinite(self.llm_timeout)):
            raise bad(f"--llm-timeout must be a positive number of seconds, got {self.llm_timeout!r}")
        if not isinstance(self.llm_retries, int) or self.llm_retries < 0:
            raise bad(f"--llm-retries must be a non-negative integer, got {self.llm_retries!r}")
        if self.hybrid_after is not None and not 0 <= self.hybrid_after <= 1:
            raise bad(f"--hybrid-after must be between 0 and 1, got {self.hybrid_after}")
        if not self.api_key_env or not is_secret(self.api_key_env):
            raise bad(
                f"--api-key-env {self.api_key_env!r}: use a variable whose name marks it as a secret "
                "(containing KEY, TOKEN or SECRET, or starting with OPENAI_), so that node scripts never get it"
            )
        if self.base_url is not None and not urllib.parse.urlsplit(self.base_url).scheme.startswith("http"):
            raise bad(f"--base-url must be an http(s) URL, got {display_url(self.base_url)!r}")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> LLMSettings:
        """From ``settings["proposer"]`` (its ``name`` ignored); unknown keys are an error."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in settings.items() if k != "name"}
        unknown = sorted(set(values) - fields)
        if unknown:
            raise ProposerError(
                f"unknown LLM proposer setting(s): {', '.join(unknown)}. Valid settings: {', '.join(sorted(fields))}"
            )
        return cls(**{k: v for k, v in values.items() if v is not None})

    def to_settings(self, name: str = "llm") -> dict[str, Any]:
        """``settings["proposer"]`` for run.json: the name and every value that is not a default."""
        out: dict[str, Any] = {"name": name}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value != field.default:
                out[field.name] = value
        return out

    def resolved_model(self, environ: Mapping[str, str] | None = None) -> str | None:
        env = os.environ if environ is None else environ
        return self.model or env.get("OPENAI_MODEL") or None

    def resolved_base_url(self, environ: Mapping[str, str] | None = None) -> str:
        env = os.environ if environ is None else environ
        return self.base_url or env.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL

    def price(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """The cost of some tokens, or None when no prices are set."""
        if self.price_in is None or self.price_out is None:
            return None
        return (prompt_tokens * self.price_in + completion_tokens * self.price_out) / 1e6


def display_url(url: str) -> str:
    """``url`` without any user or password in it (for names, logs and error messages)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return "<invalid URL>"
    if parts.username or parts.password:
        host = parts.hostname or ""
        netloc = host + (f":{parts.port}" if parts.port else "")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


def choose_proposer(settings: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """What ``auto`` means here: ("llm", why) when a model endpoint is configured, else ("mutate", why)."""
    env = os.environ if environ is None else environ
    if settings.get("model") or env.get("OPENAI_MODEL"):
        return "llm", "a model is configured"
    if settings.get("base_url") or env.get("OPENAI_BASE_URL"):
        return "llm", "a base URL is configured"
    key_env = settings.get("api_key_env") or "OPENAI_API_KEY"
    if env.get(key_env):
        return "mutate", f"${key_env} is set but no model: give --model or OPENAI_MODEL to use the LLM"
    return "mutate", "no model endpoint configured"
