"""Settings of the LLM proposer, one plain dataclass for every face.

The fields are ``core.settings.LLMOptions``: each is a key of ``settings["proposer"]`` in
run.json, an option of ``autoresearch run`` and ``%%autoresearch`` (``max_prompt_tokens`` is
``--max-prompt-tokens``) and an ``AutoResearch`` trait. Values left as None fall back to the
environment (``OPENAI_MODEL``, ``OPENAI_BASE_URL``) or to a default.

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
import os
from collections.abc import Mapping
from typing import Any

from ..core.errors import ProposerError
from ..core.settings import LLMOptions, display_url
from ..core.credentials import is_secret

__all__ = ["DEFAULT_BASE_URL", "LLMSettings", "choose_proposer", "display_url"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"


@dataclasses.dataclass(frozen=True)
class LLMSettings(LLMOptions):
    """The LLM proposer's settings: the fields, defaults and checks of ``core.settings.LLMOptions``
    (the same options the faces offer), plus the proposer's own behaviour."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.api_key_env or not is_secret(self.api_key_env):
            raise ProposerError(
                f"--api-key-env {self.api_key_env!r}: use a variable whose name marks it as a secret "
                "(containing KEY, TOKEN or SECRET, or starting with OPENAI_), so that node scripts never get it"
            )

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
