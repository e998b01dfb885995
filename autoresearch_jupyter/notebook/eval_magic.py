"""``%%autoresearch_eval``: a notebook cell as the separate evaluator of the next search.

The cell is not run: it is the evaluator that runs after each node, in the node's folder, and
prints (or ``report()`` s) the metric. ``--use y_val`` hands kernel variables to the evaluator
only: they are pickled into ``<run>/eval/use.pkl`` when the search starts, a folder no node
sees, and never into the nodes' own ``use.pkl``. The next ``%%autoresearch`` picks the cell up,
so the order in a notebook is: data, ``%%autoresearch_eval``, ``%%autoresearch``.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ..core.argtypes import non_negative_int, positive_float
from ..core.errors import AutoResearchError


@dataclasses.dataclass(frozen=True)
class PendingEval:
    """A registered evaluator cell, waiting for the next search."""

    settings: dict[str, Any]  # settings["eval"] of the run (EvalSpec.to_settings)
    use: tuple[str, ...]


@magics_class
class EvalMagics(Magics):
    """Holds the registered evaluator; ``AutoResearch`` asks it when a search starts."""

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.pending: PendingEval | None = None

    @magic_arguments("%%autoresearch_eval")
    @argument("--use", help="notebook variables for the evaluator only, e.g. --use y_val (nodes never see them)")
    @argument("--data", action="append", default=[], metavar="PATH",
              help="files or folders for the evaluator only, in $AUTORESEARCH_EVAL_DATA (repeatable)")
    @argument("--holdout", action="append", default=[], metavar="PATH",
              help="data the search never uses, scored at the end with AUTORESEARCH_EVAL_SPLIT=holdout")
    @argument("--timeout", type=positive_float, help="seconds per evaluation, enforced (60)")
    @argument("--holdout-top", type=non_negative_int, default=3,
              help="next best nodes scored on the holdout besides the baseline and the best (3)")
    @argument("--clear", action="store_true", help="forget the registered evaluator")
    @argument("-h", "--help", action="store_true", help="show this help")
    @cell_magic("autoresearch_eval")  # type: ignore[arg-type]  # IPython 9 types its marker as returning Never
    def autoresearch_eval(self, line: str, cell: str) -> None:
        """Register this cell as the fixed evaluator of the next ``%%autoresearch`` search.

        The evaluator runs after each node in the node's folder (read what the node wrote there,
        e.g. ``np.load("preds.npy")``) and prints ``metric: value``; that number is the node's
        metric, and the node's own printed number is kept only as "self-reported".
        ``AUTORESEARCH_EVAL_SPLIT`` is "validation" during the search and "holdout" when the
        best nodes are scored on ``--holdout`` data at the end.
        """
        from .shell import split_options

        try:
            args = self.autoresearch_eval.parser.parse_args(split_options(line))
        except UsageError as err:
            raise UsageError(f"%%autoresearch_eval: {err} (see %%autoresearch_eval --help)") from None
        except ValueError as err:
            raise UsageError(f"%%autoresearch_eval: cannot read the options: {err}") from None
        if args.help:
            print(self.autoresearch_eval.parser.format_help())
            return
        if args.clear:
            self.pending = None
            print("autoresearch: the evaluator is cleared; searches read the metric from the node's output")
            return
        assert self.shell is not None
        self.pending = register(self.shell.user_ns, cell, args)
        names = ", ".join(self.pending.use)
        print("autoresearch: evaluator registered: the next %%autoresearch is graded by it"
              + (f" ({names} for the evaluator only)" if names else ""))


def register(namespace: dict[str, Any], cell: str, args: Any) -> PendingEval:
    """Check the cell and its options now (one UsageError line), as a search would."""
    from ..evaluation import build_spec
    from .usevars import parse_names

    try:
        names = tuple(parse_names(args.use)) if args.use else ()
        missing = [n for n in names if n not in namespace]
        if missing:
            raise UsageError(f"%%autoresearch_eval --use: no variable named {', '.join(map(repr, missing))}")
        spec = build_spec(code=cell, source="notebook cell (%%autoresearch_eval)", timeout=args.timeout,
                          data=args.data, holdout=args.holdout, use=names, holdout_top=args.holdout_top)
    except AutoResearchError as err:
        raise UsageError(f"%%autoresearch_eval: {err}") from None
    return PendingEval(spec.to_settings(), names)


def pending_for(shell: Any, node_use: list[str]) -> PendingEval | None:
    """The evaluator registered in this kernel, if any; its variables must not go to nodes too."""
    magics = shell.magics_manager.registry.get(EvalMagics.__name__) if shell is not None else None
    pending = getattr(magics, "pending", None)
    if pending is None:
        return None
    both = sorted(set(pending.use) & set(node_use))
    if both:
        raise UsageError(f"%%autoresearch: {', '.join(both)} is for the evaluator only (%%autoresearch_eval --use); "
                         "do not hand it to the nodes with --use")
    return pending


def with_pending(settings: Any, pending: PendingEval | None) -> Any:
    """The run's settings with the registered cell as its evaluator (checked again when the search
    is built: the data paths must still exist)."""
    if pending is None:
        return settings
    from ..core.settings import EvalSettings

    given = settings.evaluation
    if given.eval is not None:
        raise UsageError("%%autoresearch: --eval and a registered %%autoresearch_eval cell: use one "
                         "(%%autoresearch_eval --clear forgets the cell)")
    cell = pending.settings
    evaluation = EvalSettings(
        eval=cell["source"], eval_code=cell["code"], eval_use=tuple(cell["use"]),
        eval_data=tuple(cell["data"]) + given.eval_data, holdout=tuple(cell["holdout"]) + given.holdout,
        eval_timeout=cell["timeout"], holdout_top=cell["holdout_top"],
    )
    return dataclasses.replace(settings, evaluation=evaluation)


def blobs_for(shell: Any, pending: PendingEval | None) -> dict[str, bytes]:
    """The evaluator's variables pickled now (a failure names the variable, before any folder)."""
    from .usevars import serialise

    return serialise(shell.user_ns, list(pending.use)) if pending is not None and pending.use else {}


def write_blobs(run_path: os.PathLike[str], blobs: dict[str, bytes]) -> None:
    """``<run>/eval/use.pkl``, written before the baseline runs; a folder no node sees."""
    from ..evaluation import EvalFiles

    if blobs:
        EvalFiles(Path(run_path)).write_use(blobs)
