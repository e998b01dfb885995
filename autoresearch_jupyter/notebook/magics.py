"""The notebook face: ``%%autoresearch_setup``, ``%%autoresearch`` and ``%autoresearch ...``.

``%load_ext autoresearch_jupyter`` registers one ``AutoResearch`` magics object. It is a traitlets
Configurable, so defaults come from ``%config AutoResearch.workers = 2`` or ``ipython_config.py``
(``c.AutoResearch.steps = 30``); an option on the cell wins over the config.

Loading must stay fast (it runs in the first cell of a notebook): this module imports only
IPython's magic machinery and the light parts of the package. The engine, the executors and the
widget load when a search starts.

Errors the user can fix come out as one-line ``UsageError`` s (IPython prints them without a
traceback); a broken baseline is one of them, with the tail of its output.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from traitlets import Enum, Unicode, default

from ..core.argtypes import option_values
from ..core.errors import AutoResearchError
from . import eval_magic
from .code import SetupRegistry, build_script, check_plain_python, check_setup
from ..core.settings import default_runs_dir
from .config import SettingsTraits, print_llm_summary, run_options
from .shell import show_view, split_options, user_error

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from ..core.settings import RunSettings
    from .run import NotebookRun
    from ..engine.search import Search

logger = logging.getLogger(__name__)

NAMESPACE_NAME = "autoresearch_run"  # same as notebook_run.NAMESPACE_NAME, without importing it


@magics_class
class AutoResearch(Magics, SettingsTraits):
    """Tree search over a notebook training cell: ``%%autoresearch --metric val_acc --maximize``.

    Each run option is also a trait (generated from RunSettings, see ``config.SettingsTraits``):
    a default for the option of the same name; set it with ``%config AutoResearch.<name> =
    value`` or in ``ipython_config.py``. ``runs_dir`` and ``view`` belong to the notebook face.
    """

    shell: InteractiveShell  # registered magics always have one (IPython types it as optional)
    runs_dir = Unicode(help="Where runs live (--runs-dir); default ./.autoresearch or $AUTORESEARCH_RUNS_DIR.").tag(
        config=True
    )
    view = Enum(
        ("auto", "widget", "text", "none"), "auto",
        help="How a run shows progress: the tree widget (in a kernel with ipywidgets), text lines, or nothing.",
    ).tag(config=True)

    @default("runs_dir")
    def _default_runs_dir(self) -> str:
        return default_runs_dir()

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.setup = SetupRegistry()
        self.runs: dict[str, NotebookRun] = {}  # started or resumed in this kernel, oldest first
        self._cell_id: str | None = None
        if shell is not None:
            shell.events.register("pre_run_cell", self._pre_run_cell)

    def _pre_run_cell(self, info: Any = None) -> None:
        """Remember the Jupyter cell id (ipykernel passes it), so a re-run setup cell replaces itself."""
        self._cell_id = getattr(info, "cell_id", None)

    def close(self) -> None:
        """Unhook from the shell (``%unload_ext``); runs still going keep going."""
        if self.shell is not None:
            try:
                self.shell.events.unregister("pre_run_cell", self._pre_run_cell)
            except ValueError:
                pass

    # ---- %%autoresearch_setup ----------------------------------------------------------

    @cell_magic("autoresearch_setup")  # type: ignore[arg-type]  # IPython 9 types its marker as returning Never
    def autoresearch_setup(self, line: str, cell: str) -> None:
        """Run this cell as usual and register it as frozen setup code for ``%%autoresearch``.

        Every node script starts with the registered setup (data loading, evaluation helpers)
        inside a frozen region: proposals that edit it are rejected. Several setup cells are
        joined in the order they first ran; running the same cell again replaces its earlier
        version. A run copies the setup when it starts, so later edits change only later runs.
        ``%autoresearch setup`` shows what is registered, ``--clear`` forgets it.
        """
        if line.strip():
            raise UsageError(f"%%autoresearch_setup takes no options, got {line.strip()!r}")
        cell_id = self._cell_id
        try:
            check_setup(cell)  # before it runs: a cell that cannot be frozen is not run either
        except AutoResearchError as err:
            raise user_error(err) from None
        result = self.shell.run_cell(cell, store_history=False)
        if not result.success:
            raise UsageError("the setup cell failed (see above), so it was not registered as setup")
        self.setup.register(cell, cell_id=cell_id)

    # ---- %%autoresearch ----------------------------------------------------------------

    @magic_arguments("%%autoresearch")
    @argument("--name", help="a unique name for the run")
    @argument("--runs-dir", help="where runs live (config: runs_dir, ./.autoresearch)")
    @argument("--use", help="notebook variables handed to every node, e.g. --use X,y (pickled once per run)")
    @argument("--background", action="store_true", help="return at once and keep searching in a thread")
    @argument("-h", "--help", action="store_true", help="show this help")
    @run_options
    @cell_magic("autoresearch")  # type: ignore[arg-type]  # IPython 9 types its marker as returning Never
    def autoresearch_cell(self, line: str, cell: str) -> NotebookRun | None:
        """Search over this training cell: each node is one change, run in its own process,
        kept if the metric improves and reverted if not.

        The cell, after the registered ``%%autoresearch_setup`` code, is the baseline script;
        it must print its metric (``print(f"val_acc: {acc}")``). By default the cell blocks
        until the search ends (interrupt the kernel to stop it cleanly); ``--background``
        returns at once. The value is the run (``run.best.code``, ``run.report()``), also kept
        in the notebook as ``autoresearch_run``. ``%autoresearch --help`` lists the commands that
        inspect, resume and export runs.
        """
        args = self._parse(self.autoresearch_cell, line, "%%autoresearch")
        if args.help:
            print(self.autoresearch_cell.parser.format_help())
            return None
        if not cell.strip():
            raise UsageError("%%autoresearch: the cell is empty; put the training code below the magic line")
        try:
            return self._start(args, cell)
        except AutoResearchError as err:
            raise user_error(err) from None
        except OSError as err:  # the runs folder cannot be made or written
            raise UsageError(f"%%autoresearch: {err}") from None

    def _pick(self, value: Any, trait: str) -> Any:
        return getattr(self, trait) if value is None else value

    def _start(self, args: argparse.Namespace, cell: str) -> NotebookRun:
        from .usevars import parse_names, serialise

        settings = self.configured().with_options(option_values(args)).for_new_run(source_dir=os.getcwd())
        settings.protocol.require()
        check_plain_python(cell, "training cell")
        names = parse_names(args.use) if args.use else []
        code = build_script(cell=cell, setup=self.setup.code, use=names)
        check_plain_python(code, "script made of the setup and this cell")
        protocol = settings.protocol_for(code)
        blobs = serialise(self.shell.user_ns, names)  # before any folder exists: fail fast
        pending = eval_magic.pending_for(self.shell, names)  # a %%autoresearch_eval cell grades the nodes
        settings = eval_magic.with_pending(settings, pending)
        eval_blobs = eval_magic.blobs_for(self.shell, pending)
        search = self._new_search(code, protocol, settings, args.name, self._pick(args.runs_dir, "runs_dir"), blobs)
        eval_magic.write_blobs(search.run_dir.path, eval_blobs)  # type: ignore[union-attr]
        run = self.launch(search, background=args.background)
        if settings.proposer.llm_report and not args.background and run.state != "failed":
            print_llm_summary(search)
        return run

    def _new_search(self, code: str, protocol: Any, settings: RunSettings, name: str | None,
                    runs_dir: str, blobs: dict[str, bytes]) -> Search:
        """The Search with its parts built now (bad options fail before a run folder exists),
        and its run folder made here, so ``use.pkl`` is in place before the baseline runs."""
        from ..engine.search import Search
        from .usevars import write_use_file

        from ..store.runs import default_run_name

        source = self.shell.user_ns.get("__session__") or "notebook"
        if name is None:
            name = default_run_name(runs_dir, str(source))
        search = Search(code=code, protocol=protocol, runs_dir=runs_dir, name=name, settings=settings,
                        source=str(source))
        run_dir = search.prepare()
        from ..engine.learn import offer_line

        if offer := offer_line(search, flag="%%autoresearch --learn-from auto (or %config AutoResearch.learn_from = 'auto')"):
            print(offer, file=sys.stderr)
        if blobs:
            write_use_file(run_dir.path, blobs)
        return search

    # ---- running -----------------------------------------------------------------------

    def launch(self, search: Search, *, background: bool, loaded: Any = None) -> NotebookRun:
        """Show the run, start its thread, and (unless ``background``) wait for its end."""
        from ..report.bestfile import BestScriptWriter
        from ..report.lessons import LessonsWriter
        from .run import NotebookRun

        search.subscribe(BestScriptWriter())
        search.subscribe(LessonsWriter())
        run = NotebookRun.live(search)
        self._show_live(run, search, loaded=loaded)
        self.runs[run.id] = run
        self.shell.user_ns[NAMESPACE_NAME] = run
        run.start()
        if background:
            print(f"autoresearch: run {run.id} is searching in the background; "
                  f"%autoresearch wait, %autoresearch stop, or {NAMESPACE_NAME}.best")
            return run
        return self.wait_for(run)

    def wait_for(self, run: NotebookRun, timeout: float | None = None, *, stop: bool = True) -> NotebookRun:
        """Wait in the main thread; an interrupt stops the run cleanly (only the waiting, with
        ``stop=False``) and the cell ends normally, so Run All goes on with what was found."""
        try:
            run.wait(timeout, stop_on_interrupt=stop)
        except KeyboardInterrupt:
            if not stop:
                print(f"autoresearch: stopped waiting; run {run.id} goes on in the background "
                      "(%autoresearch stop ends it)", file=sys.stderr)
                return run
            print(f"autoresearch: interrupted; run {run.id} is {run.state}, its nodes and journal kept; "
                  f"continue it with: %autoresearch resume {run.id}", file=sys.stderr)
        except AutoResearchError as err:
            raise user_error(err) from None
        return run

    def _show_live(self, run: NotebookRun, search: Search, *, loaded: Any = None) -> None:
        """Subscribe a view to the search: the tree widget in a kernel, else text lines."""
        mode = self.view
        widget = self.widget_module()
        if widget is not None:
            run.view = self.make_view(widget, run, search, loaded=loaded)
            run.live_cell = self.shell.execution_count
            show_view(run.view)
        elif mode in ("auto", "text"):
            from ..report.progress import ProgressPrinter

            search.subscribe(
                ProgressPrinter(protocol=search.protocol, steps=search.settings.steps, stream=sys.stdout,
                                name=search.name)
            )

    def display_view(self, view: Any) -> None:
        """Display a tree view (the commands show theirs through here)."""
        show_view(view)

    def make_view(self, widget: Any, run: NotebookRun, search: Search | None, *, loaded: Any = None) -> Any:
        """A TreeView for ``run``: live if ``search`` is given, showing ``loaded`` (a tree) first."""
        steps = search.settings.steps if search is not None else run.run_dir.settings.get("steps", 0)
        view = widget.TreeView(protocol=run.protocol, steps=steps, run_id=run.id)
        if loaded is not None:
            view.load(tree=loaded, protocol=run.protocol, state=run.state, run_id=run.id, steps=steps)
        if search is not None:
            search.subscribe(view.callback)
            view.on_stop(search.stop)
        view.on_export(lambda node_id: str(self.export_file(run, node_id)))
        return view

    @staticmethod
    def export_file(run: NotebookRun, node_id: int | None) -> Any:
        """The Export button: the node's script next to the notebook, named after run and node."""
        from pathlib import Path

        node = node_id if node_id is not None else getattr(run.best, "id", None)
        return run.export(Path.cwd() / f"{run.name or run.id}-node{node}.py", node)

    # ---- %autoresearch -----------------------------------------------------------------

    @line_magic("autoresearch")  # type: ignore[arg-type]  # IPython 9 types its marker as returning Never
    def autoresearch_line(self, line: str) -> Any:
        """Inspect, control and export runs: ``%autoresearch COMMAND [options]``.

        Commands (RUN is a run id, name, id prefix or 'latest'; it defaults to the latest run):

          list                                  the runs, with state and best metric
          show [RUN] [--node ID]                the tree view of a run, or one node in full
          tree [RUN] [--text]                   the tree as SVG (text without Graphviz's dot)
          wait [RUN] [--timeout S]              wait for a background run of this kernel
          stop [RUN]                            stop a run of this kernel (it can be resumed)
          resume [RUN] [--steps N] [--background]   continue a run, same protocol
          export [RUN] [--node ID] [--to FILE] [--cell]   the best (or a node) as a script/cell
          report [RUN] [--notebook FILE]        the summary, or a lineage notebook
          setup [--clear]                       the registered %%autoresearch_setup code

        ``%autoresearch COMMAND --help`` explains one command. A search itself is a cell magic:
        ``%%autoresearch --metric val_acc --maximize`` on the first line of a training cell.
        (A line ending in ``?`` is IPython's help request, so ``%autoresearch show?`` shows this.)
        """
        from . import commands as magic_commands

        return magic_commands.dispatch(self, line)

    # ---- helpers -----------------------------------------------------------------------

    def widget_module(self) -> Any:
        """The tree widget module when runs should show it: in a kernel (view "auto") or always
        (view "widget"); None for text or no progress, or when the widget cannot load."""
        mode = self.view
        if mode not in ("auto", "widget") or (mode == "auto" and getattr(self.shell, "kernel", None) is None):
            return None
        widget = _widget_module()
        if widget is None and mode == "widget":
            raise UsageError("AutoResearch.view = 'widget' needs ipywidgets and anywidget: "
                             "pip install 'autoresearch-jupyter[notebook]'")
        return widget

    @staticmethod
    def _parse(func: Any, line: str, prog: str) -> argparse.Namespace:
        try:
            return func.parser.parse_args(split_options(line))
        except UsageError as err:
            raise UsageError(f"{prog}: {err} (see {prog} --help)") from None
        except ValueError as err:  # shlex: an unclosed quote
            raise UsageError(f"{prog}: cannot read the options: {err}") from None

    def live_run(self, ref: str | None) -> NotebookRun | None:
        """The run of this kernel that ``ref`` names (None: the latest started here)."""
        from ..store.runs import match_runs

        matches = match_runs(ref or "latest", list(self.runs.values()), id_of=lambda r: r.id, name_of=lambda r: r.name)
        return matches[0] if len(matches) == 1 else None


def _widget_module() -> Any:
    """The tree widget module, or None when it (or ipywidgets/anywidget) cannot be imported."""
    try:
        from . import widget
    except Exception:  # ImportError, or a widget build without its JavaScript: fall back to text
        logger.debug("the tree widget cannot be loaded", exc_info=True)
        return None
    return widget if hasattr(widget, "TreeView") else None


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext autoresearch_jupyter``: register the magics (and make them configurable)."""
    ipython.register_magics(AutoResearch)
    ipython.register_magics(eval_magic.EvalMagics)  # %%autoresearch_eval


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext autoresearch_jupyter``: remove the magics; running searches keep running."""
    manager = ipython.magics_manager
    instance = manager.registry.pop(AutoResearch.__name__, None)
    manager.registry.pop(eval_magic.EvalMagics.__name__, None)
    for kind, names in (("line", ("autoresearch",)), ("cell", ("autoresearch", "autoresearch_setup", "autoresearch_eval"))):
        for name in names:
            manager.magics[kind].pop(name, None)
    if instance is not None:
        instance.close()
        if instance in getattr(ipython, "configurables", []):
            ipython.configurables.remove(instance)
