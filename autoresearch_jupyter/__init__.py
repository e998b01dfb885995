"""autoresearch-jupyter: an automated ML experiment loop that lives in a notebook.

``import autoresearch_jupyter`` stays light (node scripts import it for ``report``): the engine
and everything heavier load on first use. In a notebook, ``%load_ext autoresearch_jupyter``
registers the magics; IPython is imported only then.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .core.errors import AutoResearchError
from .core.metrics import report
from .core.protocol import Protocol

if TYPE_CHECKING:
    from .core.node import Node, NodeSnapshot
    from .core.tree import Tree, TreeSnapshot
    from .engine.callbacks import Callback
    from .engine.search import Outcome, Search
    from .notebook.run import NotebookRun

__version__ = "0.1.0"
__all__ = [
    "AutoResearchError", "Callback", "Node", "NodeSnapshot", "NotebookRun", "Outcome", "Protocol", "Search",
    "Tree", "TreeSnapshot", "open_run", "report", "__version__", "load_ipython_extension",
    "unload_ipython_extension",
]

# name -> module it is imported from on first use (PEP 562), so `import autoresearch_jupyter` stays light
_LAZY = {
    "Search": ".engine.search", "Outcome": ".engine.search", "Callback": ".engine.callbacks",
    "Node": ".core.node", "NodeSnapshot": ".core.node", "Tree": ".core.tree", "TreeSnapshot": ".core.tree",
    "NotebookRun": ".notebook.run",
}


def open_run(ref: str = "latest", *, runs_dir: str | os.PathLike[str] | None = None) -> NotebookRun:
    """A run read from its folder: ``ref`` is a run id, name, unique id prefix, ``"latest"`` or a
    path; ``runs_dir`` defaults to ``./.autoresearch``. The run has ``best``, ``nodes``, ``tree``
    (a snapshot), ``report()`` and ``script()``; RunNotFoundError when nothing matches."""
    from .notebook.run import NotebookRun
    from .store.runs import resolve_run

    return NotebookRun.open(resolve_run(runs_dir, ref))


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext autoresearch_jupyter``: register the ``%%autoresearch`` magics."""
    from .notebook.magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext autoresearch_jupyter``: remove the magics again."""
    from .notebook.magics import unload_ipython_extension as unload

    unload(ipython)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
