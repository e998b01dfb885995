"""autoresearch-jupyter: an automated ML experiment loop that lives in a notebook.

``import autoresearch_jupyter`` stays light (node scripts import it for ``report``): the engine
and everything heavier load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import AutoResearchError
from .metrics import report
from .protocol import Protocol

if TYPE_CHECKING:
    from .search import Outcome, Search

__version__ = "0.1.0"
__all__ = ["AutoResearchError", "Outcome", "Protocol", "Search", "report", "__version__"]


def __getattr__(name: str) -> Any:
    if name in ("Search", "Outcome"):
        from . import search

        return getattr(search, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
