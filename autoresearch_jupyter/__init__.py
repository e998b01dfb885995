"""autoresearch-jupyter: an automated ML experiment loop that lives in a notebook.

``import autoresearch_jupyter`` stays light (node scripts import it for ``report``): the engine
and everything heavier load on first use. In a notebook, ``%load_ext autoresearch_jupyter``
registers the magics; IPython is imported only then.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.errors import AutoResearchError
from .core.metrics import report
from .core.protocol import Protocol

if TYPE_CHECKING:
    from .engine.search import Outcome, Search

__version__ = "0.1.0"
__all__ = [
    "AutoResearchError", "Outcome", "Protocol", "Search", "report", "__version__",
    "load_ipython_extension", "unload_ipython_extension",
]


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext autoresearch_jupyter``: register the ``%%autoresearch`` magics."""
    from .notebook.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext autoresearch_jupyter``: remove the magics again."""
    from .notebook.magics import unload_ipython_extension as unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    if name in ("Search", "Outcome"):
        from .engine import search

        return getattr(search, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
