"""Events of a search, for subscribers (CLI progress, the widget, tests).

The engine calls these in a fixed order for each node: ``on_node_created`` (also for rejected
proposals), ``on_node_started``, ``on_node_finished``, then ``on_best_changed`` if it became the
best. The proposer is told about a finished node before callbacks are. Every hook takes
``**info`` so new fields never break old subscribers.

What a hook gets is frozen: ``node`` is a ``NodeSnapshot`` (the node as it was at that event) and
``info["tree"]`` a ``TreeSnapshot`` of the whole tree at that moment. A subscriber may keep them
and read them from any thread; they never change, and assigning to one raises. Only the loop
holds the mutable nodes.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable

from ..core.node import Node, NodeSnapshot

logger = logging.getLogger(__name__)


class Callback:
    """Subclass and override the hooks you need; all are no-ops."""

    def on_run_started(self, *, run_id: str, run_dir: str, resumed: bool, **info: Any) -> None: ...

    def on_node_created(self, *, node: NodeSnapshot, **info: Any) -> None: ...

    def on_node_started(self, *, node: NodeSnapshot, **info: Any) -> None: ...

    def on_node_finished(self, *, node: NodeSnapshot, **info: Any) -> None: ...

    def on_best_changed(self, *, node: NodeSnapshot, previous: NodeSnapshot | None, **info: Any) -> None: ...

    def on_ablation_finished(self, *, best: Node, rows: list[dict[str, Any]], minimal: int | None, **info: Any) -> None:
        """After the ablation of ``best``: one row per change on its path; ``minimal`` is the
        ablate node exported instead of the best (None when every change mattered)."""

    def on_run_finished(self, *, state: str, reason: str | None, **info: Any) -> None: ...


class CallbackList(Callback):
    """Fans each event out to every callback; one failing subscriber does not stop the search."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = list(callbacks)

    def _fan(self, hook: str, **kwargs: Any) -> None:
        for cb in self.callbacks:
            try:
                getattr(cb, hook)(**kwargs)
            except Exception:  # a broken view must not kill a running search
                logger.exception("callback %s.%s failed", type(cb).__name__, hook)

    def on_run_started(self, **kwargs: Any) -> None:
        self._fan("on_run_started", **kwargs)

    def on_node_created(self, **kwargs: Any) -> None:
        self._fan("on_node_created", **kwargs)

    def on_node_started(self, **kwargs: Any) -> None:
        self._fan("on_node_started", **kwargs)

    def on_node_finished(self, **kwargs: Any) -> None:
        self._fan("on_node_finished", **kwargs)

    def on_best_changed(self, **kwargs: Any) -> None:
        self._fan("on_best_changed", **kwargs)

    def on_ablation_finished(self, **kwargs: Any) -> None:
        self._fan("on_ablation_finished", **kwargs)

    def on_run_finished(self, **kwargs: Any) -> None:
        self._fan("on_run_finished", **kwargs)
