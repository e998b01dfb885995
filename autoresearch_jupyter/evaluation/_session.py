"""The search's side of the separate evaluation: what the engine calls, at three marked hooks.

1. ``wrap`` (when the run folder exists): install the evaluator and its data in ``<run>/eval/``
   and wrap the executor in a ``GradingExecutor``;
2. ``fields`` (when a node's graded job returns): the node's status, metric and reason come from
   the evaluator; its own number is kept in ``meta["self_reported"]``;
3. ``holdout`` (when the search finished): the evaluator scores the baseline, the best and the
   next best few on the holdout split; each score goes to the journal as ``meta["holdout"]``.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
from pathlib import Path
from typing import Any, Callable

from ..core.errors import EvaluatorError
from ..core.node import Node, Status
from ..core.settings import EvalSettings, RunSettings
from ..core.protocol import Protocol
from ..core.tree import Tree
from ..executors import Executor, JobResult
from ._files import EvalFiles
from ._grader import HOLDOUT, Evaluation, GradedResult, Grader, GradingExecutor
from ._spec import EvalSpec, build_spec, contract_text, load_spec, unpickling_calls

logger = logging.getLogger(__name__)

NOT_PROTECTED = (
    "autoresearch: warning: nodes run without a sandbox, so nothing hides the evaluator, --eval-data "
    "and --holdout from them (the metric still comes from the evaluator, never from the node)"
)


def holdout_nodes(tree: Tree, protocol: Protocol, top: int) -> list[tuple[Node, str]]:
    """(node, role) for the baseline, the best and the ``top`` next best good nodes."""
    chosen: list[tuple[Node, str]] = []
    root = tree.root
    if root is not None and root.is_good:
        chosen.append((root, "baseline"))
    best = tree.best(protocol)
    if best is not None and best is not root:
        chosen.append((best, "best"))
    taken = {n.id for n, _ in chosen}
    others = sorted((n for n in tree if n.is_good and n.id not in taken),
                    key=lambda n: (protocol.sort_key(n.metric), n.id))  # type: ignore[arg-type]
    chosen += [(n, f"next best {i + 1}") for i, n in enumerate(others[:top])]
    return chosen


def resolve(settings: EvalSettings) -> EvalSpec | None:
    """The evaluator a run's settings ask for, read and checked (EvaluatorError: one line).

    A run resumed from run.json has its code and hash already: nothing is read again, the data
    is the run's snapshot. A new run reads ``--eval`` (or takes a notebook cell's code) and checks
    that every data path exists, before any folder is made.
    """
    if not settings.wanted:
        if settings.eval_data or settings.holdout:
            flag = "--eval-data" if settings.eval_data else "--holdout"
            raise EvaluatorError(f"{flag} needs --eval EVALUATE.py (the evaluator that reads it)")
        return None
    timeout, top = settings.eval_timeout, settings.holdout_top
    if settings.eval_code is not None and settings.eval_sha256:
        return EvalSpec(code=settings.eval_code, source=settings.eval or "", sha256=settings.eval_sha256,
                        data=settings.eval_data, holdout=settings.holdout, use=settings.eval_use, timeout=timeout,
                        holdout_top=top)
    if settings.eval_code is not None:
        return build_spec(code=settings.eval_code, source=settings.eval or "notebook cell", data=settings.eval_data,
                          holdout=settings.holdout, use=settings.eval_use, timeout=timeout, holdout_top=top)
    assert settings.eval is not None
    return load_spec(settings.eval, data=settings.eval_data, holdout=settings.holdout, timeout=timeout,
                     holdout_top=top)


def resolved_settings(spec: EvalSpec) -> EvalSettings:
    """What run.json keeps of the evaluator: its code and hash, its data paths made absolute."""
    return EvalSettings(eval=spec.source, eval_code=spec.code, eval_sha256=spec.sha256, eval_timeout=spec.timeout,
                        eval_data=spec.data, holdout=spec.holdout, eval_use=spec.use, holdout_top=spec.holdout_top)


class Grading:
    """Built from the run's settings; None of it exists for a run without ``--eval``."""

    def __init__(self, spec: EvalSpec, protocol: Protocol, source_dir: str | None) -> None:
        self.spec = spec
        self.protocol = protocol
        self.source_dir = source_dir
        self.executor: GradingExecutor | None = None
        self.contract = contract_text(spec)

    @classmethod
    def from_settings(cls, settings: RunSettings, protocol: Protocol) -> "tuple[Grading | None, RunSettings]":
        """(the grading, the settings with the evaluator resolved); (None, settings) without one."""
        spec = resolve(settings.evaluation)
        if spec is None:
            return None, settings
        if settings.cwd:
            raise EvaluatorError("--eval grades each node's own folder, so nodes cannot share --cwd: drop --cwd "
                                 "(nodes find the baseline's files through $AUTORESEARCH_SOURCE_DIR)")
        settings = dataclasses.replace(settings, evaluation=resolved_settings(spec))
        return cls(spec, protocol, settings.source_dir), settings

    # ---- hook 1 ------------------------------------------------------------------------

    def wrap(self, executor: Executor, run_path: Path) -> GradingExecutor:
        if isinstance(executor, GradingExecutor):
            return executor
        files = EvalFiles(run_path)
        files.install(self.spec)
        grader = Grader(self.spec, files, metric=self.protocol.metric, seed=self.protocol.seed,
                        source_dir=self.source_dir)
        self.executor = GradingExecutor(executor, grader)
        if not self.executor.hides_paths:
            logger.warning(NOT_PROTECTED)
        calls = unpickling_calls(self.spec.code)
        if calls:
            logger.warning("autoresearch: warning: the evaluator unpickles node outputs (%s): a node can run "
                           "its own code inside the evaluator that way; read arrays or CSV instead "
                           "(np.load(..., allow_pickle=False))", ", ".join(calls))
        return self.executor

    # ---- hook 2 ------------------------------------------------------------------------

    def fields(self, node: Node, result: JobResult) -> dict[str, Any]:
        """Node fields for a run that ended well: the evaluator's verdict decides."""
        if not isinstance(result, GradedResult) or result.evaluation is None:
            return {"status": Status.EVAL_FAILED, "reason": "the node was not evaluated", "metric": None}
        ev = result.evaluation
        meta = {**node.meta, "graded": True, "self_reported": result.self_reported, "eval": ev.to_meta()}
        if ev.state == "cancelled":
            return {"status": Status.CANCELLED, "reason": "cancelled during its evaluation", "kept": None, "meta": meta}
        if not ev.ok:
            return {"status": Status.EVAL_FAILED, "reason": ev.problem, "metric": ev.metric, "meta": meta}
        return {"status": Status.OK, "metric": ev.metric, "reason": None, "meta": meta}

    @staticmethod
    def baseline_problem(root: Node) -> str:
        tail = str((root.meta.get("eval") or {}).get("tail") or "")
        last = "\n".join(tail.rstrip().splitlines()[-15:])
        return f"on the baseline, {root.reason}" + (f"\n--- evaluator output tail ---\n{last}" if last else "")

    # ---- hook 3 ------------------------------------------------------------------------

    def holdout(self, tree: Tree, record: Callable[[Node, dict[str, Any]], None]) -> int:
        """Score the chosen nodes on the holdout; ``record(node, meta)`` journals each. Returns
        how many were scored."""
        if not self.spec.holdout or self.executor is None:
            return 0
        return score_holdout(self.executor, tree, self.protocol, self.spec.holdout_top, record)


def score_holdout(executor: GradingExecutor, tree: Tree, protocol: Protocol, top: int,
                  record: Callable[[Node, dict[str, Any]], None], nodes: list[tuple[Node, str]] | None = None) -> int:
    """The evaluator on each chosen node with ``AUTORESEARCH_EVAL_SPLIT=holdout``, as many at once
    as the executor runs; results are recorded as they come."""
    chosen = nodes if nodes is not None else holdout_nodes(tree, protocol, top)
    futures = {executor.evaluate(node.id, HOLDOUT): (node, role) for node, role in chosen}
    for future in concurrent.futures.as_completed(futures):
        node, role = futures[future]
        ev: Evaluation = future.result()
        meta = {"holdout": {**ev.to_meta(), "metric": ev.metric if ev.ok else None, "role": role}}
        record(node, meta)
    return len(futures)
