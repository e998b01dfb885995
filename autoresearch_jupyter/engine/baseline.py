"""Checks on the baseline script before the search builds on it.

The search only makes sense from a baseline that runs and prints its metric: when it does not,
the run stops with one error that says what went wrong and which setting fixes it (a longer
time budget, the working directory, the evaluator, an unambiguous metric line) instead of
proposing changes to a script that never worked. A baseline that works but reports suspicious
numbers gets a warning; a ``--smoke`` run on a script that never reads ``AUTORESEARCH_SMOKE`` is
said once and skipped. These are pure checks: they read the baseline node and settings and
raise or warn, and never change the search.
"""

from __future__ import annotations

import logging

from . import measures
from ..core.errors import AmbiguousMetricError, BaselineError
from ..core.node import Node, Status
from ..core.protocol import Protocol
from ..core.settings import RunSettings
from ..evaluation import Grading
from .infra import cwd_hint

__all__ = ["check_baseline", "smoke_usable"]

logger = logging.getLogger("autoresearch_jupyter.engine.search")  # the search's voice, as before the split


def check_baseline(
    root: Node | None, *, protocol: Protocol, settings: RunSettings, ambiguous: str | None, grading: Grading | None,
) -> None:
    """Raise BaselineError (or AmbiguousMetricError) unless the finished baseline ``root`` has a
    result; warn when its metrics look wrong. ``ambiguous`` says why its metric could not be read."""
    if root is not None and root.status.has_result():
        warning = measures.check_baseline_metrics(protocol, root)
        if warning:
            logger.warning("autoresearch: warning: %s", warning)
        return
    if root is None:
        return
    if ambiguous:
        raise AmbiguousMetricError(ambiguous, settings=("metric",))
    what = {
        Status.TIMEOUT: f"the baseline timed out after {protocol.time_budget:g} s "
        "(raise the time budget or make the script faster)",
        Status.BUGGY: f"the baseline failed: {root.reason}",
    }.get(root.status, f"the baseline did not finish ({root.status.value})")
    if root.status is Status.EVAL_FAILED and grading is not None:  # ---- evaluation hook 2b ----
        raise BaselineError(grading.baseline_problem(root), settings=("eval",))
    fixes: tuple[str, ...] = ("time_budget",) if root.status is Status.TIMEOUT else ()
    hint = cwd_hint(root.reason or "", cwd=settings.cwd, source_dir=settings.source_dir)
    if hint:
        what += hint
        fixes = ("cwd",)
    tail = "\n".join(root.output_tail.rstrip().splitlines()[-15:])
    raise BaselineError(
        f"{what}. The search needs a working baseline that prints "
        f"'{protocol.metric}: <number>'.\n--- output tail ---\n{tail}",
        settings=fixes,
    )


def smoke_usable(code: str, protocol: Protocol, smoke: bool) -> bool:
    """Whether smoke runs stay on: --smoke on a script that never reads AUTORESEARCH_SMOKE would
    rerun it whole under the short limit, so say so once and skip smoke runs."""
    if smoke and "AUTORESEARCH_SMOKE" not in code:
        logger.warning(
            "autoresearch: --smoke: the script never reads AUTORESEARCH_SMOKE, so a smoke run would be "
            "the whole script under the %g s smoke limit; smoke runs are skipped", protocol.smoke_budget,
        )
        return False
    return smoke
