"""Scoring a run after it ended (``autoresearch evaluate``): the same grader, outside a search.

The nodes' outputs are still in their folders, so the evaluator runs on them as it would have
during the search. Scores are appended to the run's journal (``node_updated`` with
``meta["holdout"]``, or ``meta["regraded"]`` for the validation split), so every face shows them.
"""

from __future__ import annotations

import shutil
from typing import Any, Sequence

from ..core.node import Node
from ..core.tree import Tree
from ..store.journal import Journal
from ..store.runs import RunDir
from ._files import EvalFiles
from ._grader import HOLDOUT, Grader, GradingExecutor
from ._session import holdout_nodes, score_holdout
from ._spec import EvalSpec


def evaluate_run(
    run_dir: RunDir,
    spec: EvalSpec,
    tree: Tree,
    *,
    split: str = HOLDOUT,
    node_ids: Sequence[int] | None = None,
    top: int = 3,
    replace_holdout: bool = False,
) -> list[dict[str, Any]]:
    """Score the chosen nodes; returns one row per node, and records each in the journal."""
    from ..executors import get_executor

    protocol = run_dir.protocol
    files = EvalFiles(run_dir.path)
    if replace_holdout and files.holdout_dir.exists():
        shutil.rmtree(files.holdout_dir)  # new holdout data: a fresh snapshot of it
    files.install(spec)
    settings = run_dir.settings
    options = dict(settings.get("executor") or {"name": "local"})
    executor = get_executor(options.pop("name", "local"), **options)
    grader = Grader(spec, files, metric=protocol.metric, seed=protocol.seed, source_dir=settings.get("source_dir"))
    grading = GradingExecutor(executor, grader)
    if node_ids:
        chosen = [(tree[i], f"node {i}") for i in node_ids]
    else:
        chosen = holdout_nodes(tree, protocol, top)
    key = "holdout" if split == HOLDOUT else "regraded"
    rows: list[dict[str, Any]] = []
    journal = Journal(run_dir.journal_path)

    def record(node: Node, meta: dict[str, Any]) -> None:
        data = dict(meta["holdout"])
        data["evaluator_sha256"] = spec.sha256
        node.meta = {**node.meta, key: data}
        journal.node_updated(node.id, meta={key: data})
        rows.append({"node": node.id, "role": data.get("role"), "metric": data.get("metric"),
                     "state": data.get("state"), "reason": data.get("reason")})

    try:
        grading.start(warm_imports=(), env={"AUTORESEARCH_SEED": str(protocol.seed),
                                            "PYTHONHASHSEED": str(protocol.seed)})
        if split == HOLDOUT:
            score_holdout(grading, tree, protocol, top, record, nodes=chosen)
        else:
            _score(grading, chosen, record, split)
    finally:
        grading.close()
        journal.close()
    return sorted(rows, key=lambda r: r["node"])


def _score(grading: GradingExecutor, chosen: list[tuple[Node, str]], record: Any, split: str) -> None:
    import concurrent.futures

    futures = {grading.evaluate(node.id, split): (node, role) for node, role in chosen}
    for future in concurrent.futures.as_completed(futures):
        node, role = futures[future]
        ev = future.result()
        record(node, {"holdout": {**ev.to_meta(), "metric": ev.metric if ev.ok else None, "role": role}})
