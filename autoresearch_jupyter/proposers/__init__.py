"""Proposers suggest one code change per node: ``mutate`` works offline."""

from __future__ import annotations

from typing import Any

from ..errors import UnknownPluginError
from ._base import Context, Proposal, Proposer

__all__ = ["Context", "Proposal", "Proposer", "MutateProposer", "get_proposer"]

_NAMES = ("mutate",)


def __getattr__(name: str) -> Any:
    if name == "MutateProposer":
        from ._mutate import MutateProposer

        return MutateProposer
    raise AttributeError(name)


def get_proposer(name: str, **settings: Any) -> Proposer:
    """Build a proposer by name; the error lists the valid names."""
    if name in ("mutate", "auto"):
        from ._mutate import MutateProposer

        return MutateProposer(**settings)
    raise UnknownPluginError(f"Unknown proposer {name!r}. Valid proposers: {', '.join(_NAMES)}.")
