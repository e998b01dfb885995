"""Proposers suggest one code change per node: ``mutate`` works offline, ``llm`` asks a model.

``auto`` (the default) picks ``llm`` when a model endpoint is configured and ``mutate`` otherwise
(see ``_config.choose_proposer``); the built proposer's ``name`` says which was chosen and why, and
the CLI prints it when a run starts. Nothing here imports ``openai``: the LLM modules load on use.
"""

from __future__ import annotations

from typing import Any

from ..core.errors import UnknownPluginError
from ._base import Context, Proposal, Proposer

__all__ = [
    "Context",
    "HybridProposer",
    "LLMProposer",
    "LLMSettings",
    "MutateProposer",
    "Proposal",
    "Proposer",
    "choose_proposer",
    "get_proposer",
    "print_llm_summary",
    "usage_totals",
    "write_llm_summary",
]

_NAMES = ("mutate", "llm", "auto")
_LAZY = {
    "MutateProposer": ".mutate",
    "LLMProposer": "._llm",
    "usage_totals": "._llm",
    "write_llm_summary": "._llm",
    "print_llm_summary": "._llm",
    "HybridProposer": "._hybrid",
    "LLMSettings": "._config",
    "choose_proposer": "._config",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(name)


def get_proposer(name: str, *, seed: int = 0, **settings: Any) -> Proposer:
    """Build a proposer by name (``settings`` are ``settings["proposer"]`` without the name);
    the error lists the valid names. LLM settings errors raise ProposerError."""
    if name not in _NAMES:
        raise UnknownPluginError(f"Unknown proposer {name!r}. Valid proposers: {', '.join(_NAMES)}.")
    why = ""
    if name == "auto":
        from ._config import choose_proposer

        name, why = choose_proposer(settings)
    from .mutate import MutateProposer

    if name == "mutate":
        mutate = MutateProposer(seed=seed, **{k: settings[k] for k in ("sampler", "defaults") if k in settings})
        if why:
            mutate.name = f"mutate (auto: {why})"  # type: ignore[misc]
        return mutate
    from ._llm import LLMProposer

    llm = LLMProposer(seed=seed, **settings)
    after = settings.get("hybrid_after")
    if after is None:
        return llm
    from ._hybrid import HybridProposer

    return HybridProposer(llm, MutateProposer(seed=seed), after=after)
