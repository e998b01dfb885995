"""The run object the notebook gets back from ``%%autoresearch`` and ``%autoresearch resume``.

A search always runs in its own thread, and the notebook's main thread only waits for it. That
one shape serves both modes: blocking is "start, then wait" (Run All and nbclient see the end),
``--background`` is "start" alone. Waiting in the main thread also makes a kernel interrupt
safe: the KeyboardInterrupt lands in the wait, which asks the search to stop and waits for it to
cancel its nodes and close its journal, so the engine's clean-up never runs half way.

The same class wraps a run read from disk (``NotebookRun.open``), so ``run.best``, ``run.nodes``
and ``run.report()`` work alike for live and finished runs.
"""

from __future__ import annotations

import html
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..report import export
from ..core.errors import AutoResearchError
from ..core.node import Node
from .code import split_script
from ..core.protocol import Protocol
from ..store.runs import RunDir, atomic_write
from ..core.tree import Tree, TreeSnapshot
from .usevars import USE_FILE, pin_use_file

if TYPE_CHECKING:
    from ..engine.search import Outcome, Search

logger = logging.getLogger(__name__)

NAMESPACE_NAME = "autoresearch_run"
"""The name of the latest run started or resumed in this kernel, in the user's namespace."""


class RunReport:
    """A run's end-of-run report: ``data`` is the report as data, ``str()`` its text."""

    def __init__(self, data: export.Report) -> None:
        self.data = data
        self.text = export.render_report_text(data)

    def to_dict(self) -> dict[str, Any]:
        return self.data.to_dict()

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__  # the notebook shows the text as it is, without quotes


class NotebookRun:
    """A search run seen from the notebook: live (a thread runs it) or read from its folder.

    ``id``, ``state``, ``best`` (a Node: ``.code``, ``.metric``), ``nodes``, ``tree``,
    ``report()``, ``script()``/``export()``, ``wait()`` and ``stop()``.
    """

    def __init__(self, run_dir: RunDir, *, search: Search | None = None, tree: Tree | None = None,
                 state: str = "running", reason: str | None = None) -> None:
        """Use ``NotebookRun.live`` or ``NotebookRun.open``."""
        self.run_dir = run_dir
        self._search = search
        self._tree = tree.snapshot() if tree is not None else TreeSnapshot()
        self._state = state
        self._reason = reason
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._outcome: Outcome | None = None
        self._error: BaseException | None = None
        self.view: Any = None  # the live TreeView, if one is shown
        self.live_cell: int | None = None  # execution count of the cell that shows the live view

    # ---- construction ------------------------------------------------------------------

    @classmethod
    def live(cls, search: Search) -> NotebookRun:
        """Wrap a search whose ``run_dir`` is already set; ``start()`` runs it."""
        assert search.run_dir is not None, "create the run folder before wrapping the search"
        return cls(search.run_dir, search=search, tree=search.tree)

    @classmethod
    def open(cls, run_dir: RunDir) -> NotebookRun:
        """A run read from its folder (finished, stopped, or running in another process)."""
        replay = run_dir.load()
        run = cls(run_dir, tree=replay.tree, state=replay.state, reason=replay.reason)
        run._done.set()
        return run

    def start(self) -> NotebookRun:
        """Run the search in a daemon thread (a dead kernel must not wait for it)."""
        if self._search is None or self._thread is not None:
            raise RuntimeError("this run cannot be started (already started, or read from disk)")
        self._thread = threading.Thread(target=self._main, name=f"autoresearch-{self.id}", daemon=True)
        self._thread.start()
        return self

    def _main(self) -> None:
        assert self._search is not None
        try:
            self._outcome = self._search.run()
        except BaseException as err:  # kept for wait(); the journal already says "failed"
            self._error = err
            if not isinstance(err, AutoResearchError):
                logger.exception("run %s failed", self.id)
        finally:
            self._done.set()

    # ---- facts -------------------------------------------------------------------------

    @property
    def id(self) -> str:
        return self.run_dir.id

    @property
    def name(self) -> str | None:
        return self.run_dir.name

    @property
    def path(self) -> Path:
        return self.run_dir.path

    @property
    def protocol(self) -> Protocol:
        return self.run_dir.protocol

    @property
    def search(self) -> Search | None:
        """The Search behind a live run (None for a run read from disk)."""
        return self._search

    @property
    def running(self) -> bool:
        return self._thread is not None and not self._done.is_set()

    @property
    def state(self) -> str:
        """running | finished | stopped | failed (| interrupted for a run read from disk)."""
        if self.running:
            return "running"
        if self._outcome is not None:
            return self._outcome.state
        if self._error is not None:
            return "failed"
        return self._state

    @property
    def reason(self) -> str | None:
        """Why the run ended, in one line (None while it runs)."""
        if self._outcome is not None:
            return self._outcome.reason
        if self._error is not None:
            return str(self._error).splitlines()[0] if str(self._error) else type(self._error).__name__
        return self._reason

    @property
    def error(self) -> BaseException | None:
        """What ended the run with an error (a BaselineError for a broken baseline), if anything."""
        return self._error

    @property
    def tree(self) -> TreeSnapshot:
        """The search tree as a snapshot: a held one never changes (its nodes are read-only);
        while the run is live, each call gives the tree as of the search's latest event."""
        if self._search is not None:
            return self._search.tree
        return self._tree

    @property
    def nodes(self) -> list[Node]:
        """Every node so far, by id (node 0 is the baseline)."""
        return list(self.tree)

    @property
    def best(self) -> Node | None:
        """The best kept node so far (``.code``, ``.metric``, ``.plan``; ``.apply()`` puts its
        variables into the kernel), or None."""
        from .apply import ApplicableNode

        best = self.tree.best(self.protocol)
        return None if best is None else ApplicableNode.wrap(best, self)

    @property
    def baseline(self) -> Node | None:
        return self.tree.root

    def report(self) -> RunReport:
        """The end-of-run summary: counts, best and improvement, the path, what did not work."""
        data = export.build_report(self.tree, self.protocol, run_id=self.id, run_name=self.name or "",
                                   state=self.state)
        return RunReport(data)

    # ---- control -----------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the search to stop (thread-safe, returns at once); ``wait()`` to see it stopped."""
        if self._search is not None:
            self._search.stop()

    def wait(self, timeout: float | None = None, *, stop_on_interrupt: bool = True) -> NotebookRun:
        """Block until the run ends (or ``timeout`` seconds pass); returns the run.

        Interrupting the wait (the kernel's interrupt) stops the search, waits until its nodes
        are cancelled and its journal is closed, then re-raises KeyboardInterrupt; with
        ``stop_on_interrupt=False`` it only stops waiting. An error that ended the run (a broken
        baseline) is raised here.
        """
        if self._thread is None:
            return self
        try:
            finished = self._done.wait(timeout) if timeout is not None else self._join()
        except KeyboardInterrupt:
            if not stop_on_interrupt:
                raise
            self.stop()
            self._join()  # a second interrupt here leaves the search stopping on its own
            self.flush_view()
            raise
        if finished:
            self.flush_view()
            if self._error is not None:
                raise self._error
        return self

    def _join(self) -> bool:
        while not self._done.wait(0.1):  # short waits keep the main thread interruptible
            pass
        return True

    def flush_view(self) -> None:
        """Resend the live view's state from the main thread, so a headless run saves the end."""
        flush = getattr(self.view, "flush", None)
        if flush is None:
            return
        try:
            flush()
        except Exception:  # a broken view must not hide the run's result
            logger.exception("flushing the tree view failed")

    # ---- code out ----------------------------------------------------------------------

    def script(self, node: int | None = None) -> str:
        """A node's script (default: the best) with a provenance header, runnable on its own."""
        tree = self.tree
        script = export.export_script(tree, self.protocol, node, run_id=self.id)
        use_file = self.path / USE_FILE
        return pin_use_file(script, use_file) if use_file.exists() else script

    def cell(self, node: int | None = None) -> str:
        """A node's training cell (its script without the notebook's setup), for a new cell.

        The setup is left out because the notebook already runs it; scripts not made from a
        notebook come back whole.
        """
        tree = self.tree
        picked = node if node is not None else getattr(tree.best(self.protocol), "id", None)
        source = split_script(tree[picked].code)[1] if picked is not None and picked in tree else None
        return export.export_cell(tree, self.protocol, node, run_id=self.id, source=source)

    def export(self, path: str | Path, node: int | None = None) -> Path:
        """Write ``script(node)`` to ``path``; returns the path."""
        path = Path(path)
        atomic_write(path, self.script(node))
        return path

    # ---- display -----------------------------------------------------------------------

    def __repr__(self) -> str:
        best = self.best
        ablation = sum(1 for n in self.tree if n.operator.value == "ablate")
        parts = [self.state, f"{len(self.tree) - ablation} nodes" + (f" + {ablation} ablation runs" if ablation else "")]
        if best is not None:
            parts.append(f"best {self.protocol.metric} {export.fmt_metric(best.metric)} (node {best.id})")
        if self.reason and self.state != "running":
            parts.append(export.one_line(self.reason, 120))
        return f"<autoresearch run {self.id}: {', '.join(parts)}>"

    def _repr_html_(self) -> str | None:
        if self.live_cell is not None and self.live_cell == _execution_count():
            return None  # the live view above already shows this run: no second tree in Out[]
        try:
            from ..report.views import static_html
        except Exception:  # noqa: BLE001 - no ipywidgets, or a widget build without its JavaScript
            return f"<pre>{html.escape(self.report().text)}</pre>"
        return static_html(self.tree, self.protocol, state=self.state, run_id=self.id)


def _execution_count() -> int | None:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - the notebook face needs IPython anyway
        return None
    shell = get_ipython()
    return getattr(shell, "execution_count", None)
