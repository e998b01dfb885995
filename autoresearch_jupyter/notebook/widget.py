"""The live tree view of a search: an anywidget that subscribes to a ``Search`` as a callback.

Update protocol (all state goes through synced traits, never through messages):

- ``_meta``: the header (counts, best, improvement, times, tokens, state); small, sent with
  every update.
- ``_updates``: ``{"seq", "from", "nodes"}``: the records of the nodes that changed in update
  batches ``from`` to ``seq``: the latest batch plus a short window of earlier ones, so a
  browser that attached a moment late still gets them. Throttled to one send per ``throttle``
  seconds, so its size does not grow with the tree.
- ``_live``: ``{node id: {"tail", "bytes"}}``: the end of each running node's ``output.log``, read
  on a timer (at most once per ``LIVE_EVERY`` seconds, ``LIVE_CAP`` bytes per node, sent only
  when it changed), so a running node's inspector streams its output at <= 4 KB/s per node.
- ``_nodes``: ``{"seq", "nodes"}``: a full snapshot, written when the run starts with existing
  nodes (resume), when it ends, on ``load`` and on a resync request; it is what a saved
  notebook keeps. Every record has a version ``v``; the browser keeps the highest per id.

Custom messages are only requests and replies, each with an ``id``: ``export`` (node id or
best), ``stop``, and ``resync`` (the browser saw a gap in ``seq``; the reply comes after a fresh
snapshot). Replies are ``{type, id, ...}`` or ``{error, id}``.

The JavaScript is one renderer (``static/treeview.js``) shared with the JupyterLab run view,
and the anywidget adapter (``static/widget.js``) that imports it. anywidget loads ``_esm`` from
a blob URL, where relative imports cannot resolve, so ``bundle_esm`` joins the two files.
"""

from __future__ import annotations

from pathlib import Path

import collections
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import anywidget
import traitlets

from ..engine.callbacks import Callback
from ..core.node import Node
from ..core.protocol import Protocol
from ..core.tree import Tree, best_of
from ..report.views import STATIC, node_record, node_records, read_live, run_meta, run_times, static_html

__all__ = ["TreeView", "bundle_esm", "static_html"]

logger = logging.getLogger(__name__)

THROTTLE = 0.25  # seconds between update sends: at most 4 a second
LIVE_EVERY = 1.0  # seconds between reads of the running nodes' output.log
WINDOW = 4  # update batches repeated in each `_updates`, for a browser that attached late
_IMPORT = re.compile(r"^import\s*\{[^}]*\}\s*from\s*[\"']\./treeview\.js[\"'];?[ \t]*\n", re.MULTILINE)


def bundle_esm() -> str:
    """``treeview.js`` followed by ``widget.js`` without its import of it: one ES module."""
    adapter = (Path(__file__).parent / "static" / "widget.js").read_text()
    body, n = _IMPORT.subn("", adapter, count=1)
    if n != 1:
        raise RuntimeError("static/widget.js must import from './treeview.js' on one line")
    return f"{(STATIC / 'treeview.js').read_text()}\n// ---- widget.js ----\n{body}"


class _ViewCallback(Callback):
    """The search's events, forwarded to the view; safe to call from any thread."""

    def __init__(self, view: TreeView) -> None:
        self._view = view

    def on_run_started(self, *, run_id: str, tree: Tree | None = None, **info: Any) -> None:
        self._view._run_started(run_id, tree, info.get("protocol"), info.get("run_dir"))
        self._view._executor = info.get("executor") or None

    def on_node_created(self, *, node: Node, **info: Any) -> None:
        self._view._touch(node)

    def on_node_started(self, *, node: Node, **info: Any) -> None:
        self._view._touch(node)

    def on_node_finished(self, *, node: Node, **info: Any) -> None:
        self._view._touch(node)

    def on_best_changed(self, *, node: Node, **info: Any) -> None:
        self._view._touch(None)

    def on_run_finished(self, *, state: str, reason: str | None, **info: Any) -> None:
        self._view._run_finished(state, reason)


class TreeView(anywidget.AnyWidget):
    """The search tree, live: header, a collapsible tree coloured by status, a node inspector.

    Subscribe it to a search with ``search.subscribe(view.callback)`` before
    ``run()``, or show a finished run with :meth:`load`. Clicks and inspection happen in the
    browser and need no kernel, so they work while a blocking search keeps the kernel busy.
    """

    _esm = bundle_esm()
    _css = STATIC / "treeview.css"

    _uid = traitlets.Unicode().tag(sync=True)
    _meta = traitlets.Dict().tag(sync=True)
    _updates = traitlets.Dict().tag(sync=True)
    _nodes = traitlets.Dict().tag(sync=True)
    _live = traitlets.Dict().tag(sync=True)

    def __init__(
        self,
        *,
        protocol: Protocol,
        steps: int,
        run_id: str = "",
        max_time: float | None = None,
        throttle: float = THROTTLE,
        **kwargs: Any,
    ) -> None:
        for key in kwargs:  # DOMWidget only warns about unknown keywords
            if key.startswith("_") or key not in self.class_trait_names():
                raise TypeError(f"TreeView() got an unexpected keyword argument {key!r}")
        self._lock = threading.RLock()
        self._protocol = protocol
        self._executor: dict[str, Any] | None = None  # what the search's executor says of itself
        self._steps: int | None = steps
        self._run_id = run_id
        self._max_time = max_time
        self._throttle = throttle
        self._state = "starting"
        self._reason: str | None = None
        self._started: float | None = None
        self._finished: float | None = None
        self._index: dict[int, Node] = {}  # a snapshot of every node seen, in creation order
        self._records: dict[int, dict[str, Any]] = {}  # the last record sent for each node
        self._dirty: set[int] = set()
        self._meta_dirty = False
        self._seq = 0
        self._snapshot_seq = -1
        self._recent: collections.deque[tuple[int, tuple[int, ...]]] = collections.deque(maxlen=WINDOW)
        self._last_send = 0.0
        self._timer: threading.Timer | None = None
        self._run_dir: Path | None = None
        self._live_timer: threading.Timer | None = None
        self._stop_handler: Callable[[], None] | None = None
        self._export_handler: Callable[[int], str] | None = None
        self._display: Any = None
        self._callback = _ViewCallback(self)
        super().__init__(_uid=uuid.uuid4().hex, **kwargs)
        with self._lock:
            self._nodes = {"seq": 0, "nodes": []}
            self._updates = {"seq": 0, "from": 1, "nodes": []}
            self._meta = self._build_meta()
        self.on_msg(self._on_custom_msg)

    # ---- public API ------------------------------------------------------------------------

    @property
    def callback(self) -> Callback:
        """The subscriber to pass to ``search.subscribe``; thread-safe."""
        return self._callback

    @property
    def state(self) -> str:
        return self._state

    def load(self, *, tree: Tree, protocol: Protocol, state: str, run_id: str, steps: int | None = None) -> None:
        """Show an existing run (finished, or to be resumed): replaces whatever the view showed."""
        with self._lock:
            self._cancel_timer()
            self._protocol, self._run_id, self._state, self._reason = protocol, run_id, state, None
            if steps is not None:
                self._steps = steps
            elif self._steps is None or self._steps < len(tree) - 1:
                self._steps = max(len(tree) - 1, 0)
            self._index = dict(tree.snapshot().nodes)
            self._records.clear()
            self._dirty.clear()
            self._recent.clear()
            self._started, end = run_times(tree)
            self._finished = None if state == "running" else end
            self._write_snapshot()

    def on_stop(self, handler: Callable[[], None]) -> None:
        """Show the Stop button; ``handler`` is called (in the kernel) when it is pressed."""
        self._stop_handler = handler
        with self._lock:
            self._meta_dirty = True
            self._send_locked()

    def on_export(self, handler: Callable[[int], str]) -> None:
        """Enable Export: ``handler(node_id)`` writes a file and returns its path, shown in the view."""
        self._export_handler = handler
        with self._lock:
            self._meta_dirty = True
            self._send_locked()

    def flush(self) -> None:
        """Send pending updates now; when the run is over, also the full snapshot (once).

        Call it when a blocking run ends, while the cell still executes, so that nbclient and
        saved widget state hold the final tree. ``on_run_finished`` already does this.
        """
        with self._lock:
            self._cancel_timer()
            self._send_locked()
            if self._state not in ("running", "starting") and self._snapshot_seq != self._seq:
                self._write_snapshot()

    def node_ids(self) -> list[int]:
        """The ids of the nodes the view holds, in creation order."""
        with self._lock:
            return list(self._index)

    def show(self) -> Any:
        """Display the view with a display id; at the end of the run its static fallback
        (``text/html``) is refreshed in place, so exports without widget state show the final tree."""
        from IPython.display import display

        self._display = display(self, display_id=True)
        return self._display

    # ---- static fallback -------------------------------------------------------------------

    def _tree(self) -> Tree:
        tree = Tree()
        with self._lock:
            nodes = list(self._index.values())
        for node in nodes:  # creation order: parents first
            if node.parent is None or node.parent in tree:
                tree.add(node)
        return tree

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:
            return None
        data, metadata = bundle
        data = dict(data)
        data["text/html"] = static_html(self._tree(), self._protocol, state=self._state, run_id=self._run_id)
        meta = self._meta
        best = "" if meta.get("best_id") is None else f", best {meta.get('metric')} {meta.get('best_metric')}"
        data["text/plain"] = f"<TreeView run {self._run_id or '-'}: {self._state}, {len(self._index)} nodes{best}>"
        return data, metadata

    # ---- events (from the search's thread) -------------------------------------------------

    def _run_started(self, run_id: str, tree: Tree | None, protocol: Protocol | None,
                     run_dir: str | None = None) -> None:
        with self._lock:
            self._run_id = run_id or self._run_id
            self._run_dir = Path(run_dir) if run_dir else None
            self._start_live()
            if protocol is not None:
                self._protocol = protocol
            self._state, self._reason = "running", None
            self._started, self._finished = time.time(), None
            if tree is not None and len(tree):  # a resumed run: show what is there at once
                for node in tree.snapshot():
                    self._index[node.id] = node
                self._dirty.clear()
                self._write_snapshot()
            else:
                self._meta_dirty = True
                self._send_locked()

    def _touch(self, node: Node | None) -> None:
        """A node changed (or, with None, only the header did): send it soon, throttled.

        The view keeps the event's snapshot of the node (the search sends read-only ones), so the
        throttle timer builds records from frozen nodes, never from the search's live ones.
        """
        with self._lock:
            if node is None:
                self._meta_dirty = True
            else:
                self._index[node.id] = node.snapshot()
                self._dirty.add(node.id)
            self._schedule_locked()

    def _run_finished(self, state: str, reason: str | None) -> None:
        with self._lock:
            self._state, self._reason, self._finished = state, reason, time.time()
            self._meta_dirty = True
            if self._live_timer is not None:
                self._live_timer.cancel()
                self._live_timer = None
            self._live = {}
        self.flush()
        if self._display is not None:
            try:
                self._display.update(self)
            except Exception:
                logger.exception("could not refresh the tree view's static fallback")

    # ---- live output of running nodes -------------------------------------------------------

    def _start_live(self) -> None:
        if self._run_dir is None or self._live_timer is not None:
            return
        self._live_timer = threading.Timer(LIVE_EVERY, self._on_live)
        self._live_timer.daemon = True
        self._live_timer.start()

    def _on_live(self) -> None:
        """Read the end of each running node's output.log; send it when it changed."""
        with self._lock:
            self._live_timer = None
            if self._state not in ("running", "starting") or self._run_dir is None:
                return
            running = [i for i, n in self._index.items() if n.status.value == "running"]
            run_dir = self._run_dir
        live = {str(i): rec for i in running if (rec := read_live(run_dir / "nodes" / str(i) / "output.log"))}
        with self._lock:
            if live != self._live:
                self._live = live
            self._start_live()

    # ---- sending ---------------------------------------------------------------------------

    def _schedule_locked(self) -> None:
        wait = self._last_send + self._throttle - time.monotonic()
        if wait <= 0:
            self._cancel_timer()
            self._send_locked()
        elif self._timer is None:
            self._timer = threading.Timer(wait, self._on_timer)
            self._timer.daemon = True
            self._timer.start()

    def _on_timer(self) -> None:
        with self._lock:
            self._timer = None
            self._send_locked()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _build_meta(self) -> dict[str, Any]:
        meta = run_meta(
            list(self._index.values()), self._protocol, run_id=self._run_id, state=self._state,
            reason=self._reason, steps=self._steps, max_time=self._max_time,
            started=self._started, finished=self._finished, executor=self._executor,
        )
        meta["can_stop"] = self._stop_handler is not None and self._state in ("running", "starting")
        meta["can_export"] = self._export_handler is not None
        meta["seq"] = self._seq
        return meta

    def _send_locked(self) -> None:
        """One update: the records of dirty nodes (plus the recent window) and the header."""
        if not self._dirty and not self._meta_dirty:
            return
        self._last_send = time.monotonic()
        self._meta_dirty = False
        if self._dirty:
            self._seq += 1
            ids = tuple(sorted(self._dirty))
            self._dirty.clear()
            for node_id in ids:
                self._records[node_id] = node_record(self._index[node_id], self._index, v=self._seq)
            self._recent.append((self._seq, ids))
            window = dict.fromkeys(i for _, batch in self._recent for i in batch)
            updates = {"seq": self._seq, "from": self._recent[0][0], "nodes": [self._records[i] for i in window]}
            with self.hold_sync():
                self._updates = updates
                self._meta = self._build_meta()
        else:
            self._meta = self._build_meta()

    def _write_snapshot(self) -> None:
        """Every node's record in ``_nodes`` (and an empty ``_updates``): the state a notebook saves."""
        self._seq += 1
        self._dirty.clear()
        self._recent.clear()
        records = node_records(self._index, v=self._seq)  # all fresh: ~50 ms for 1,000 nodes
        self._records = {r["id"]: r for r in records}
        self._snapshot_seq = self._seq
        self._meta_dirty = False
        self._last_send = time.monotonic()
        with self.hold_sync():
            self._nodes = {"seq": self._seq, "nodes": records}
            self._updates = {"seq": self._seq, "from": self._seq + 1, "nodes": []}
            self._meta = self._build_meta()

    # ---- requests from the browser ---------------------------------------------------------

    def _on_custom_msg(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict) or "id" not in content:
            return
        kind, msg_id = content.get("type"), content["id"]
        try:
            reply = self._answer(kind, content)
        except Exception as err:
            logger.exception("tree view request %r failed", kind)
            self.send({"error": str(err) or type(err).__name__, "id": msg_id})
            return
        self.send({"type": kind, "id": msg_id, **reply})

    def _answer(self, kind: Any, content: dict[str, Any]) -> dict[str, Any]:
        if kind == "export":
            if self._export_handler is None:
                raise RuntimeError("export is not available for this view")
            node_id = content.get("node")
            if node_id is None:
                with self._lock:
                    best = best_of(list(self._index.values()), self._protocol)
                if best is None:
                    raise RuntimeError("no node has a usable metric yet, so there is no best node")
                node_id = best.id
            if not isinstance(node_id, int) or node_id not in self._index:
                raise RuntimeError(f"no node {node_id!r} in this run")
            return {"node": node_id, "path": str(self._export_handler(node_id))}
        if kind == "stop":
            if self._stop_handler is None:
                raise RuntimeError("this run cannot be stopped from the view")
            if self._state not in ("running", "starting"):
                raise RuntimeError(f"the run has already ended ({self._state})")
            self._stop_handler()
            return {}
        if kind == "resync":
            with self._lock:
                self._cancel_timer()
                if self._dirty or self._snapshot_seq != self._seq:
                    self._write_snapshot()
                return {"seq": self._seq}
        raise RuntimeError(f"unknown request type {kind!r}")
