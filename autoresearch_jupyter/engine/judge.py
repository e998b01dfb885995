"""Judging a node's job: its status, metric, reason and keep-or-revert verdict, and its runs.

A finished job says little by itself (an exit code, a log, perhaps a result file); this module
turns it into the fields a node records, decides whether the node beats its nearest working
ancestor (beyond the noise floor), how many runs it needs (the baseline measures the noise
floor, a would-be new best is confirmed) and how those runs combine into one verdict. It is
kept apart from the loop so the rules of judging can be read in one place; it changes no node
and holds no state of the search but what the loop hands it for one judgement (the tree and the
noise floor as they are now, and the ambiguity of the baseline's metric, read back after).
"""

from __future__ import annotations

import math

import dataclasses
import time
from pathlib import Path
from typing import Any

from . import measures
from ..core import noise
from ..core.metrics import ambiguity, failure_reason, read_metric
from ..core.node import Node, Operator, Status
from ..core.protocol import Protocol
from ..core.tree import Tree
from ..evaluation import Grading
from ..executors import JobResult
from .results import read_text

__all__ = ["Judge", "log_name", "result_name"]


def result_name(stage: str) -> str:
    """The result file a node's ``stage`` writes (``result.json`` for the full run)."""
    return {"smoke": "smoke-result.json", "full": "result.json"}.get(stage, f"result-{stage}.json")


def log_name(stage: str) -> str:
    """The log a node's ``stage`` writes (``output.log`` for the full run)."""
    return {"smoke": "smoke.log", "full": "output.log"}.get(stage, f"output-{stage}.log")


@dataclasses.dataclass
class Judge:
    """The rules of judging, over the live ``tree`` and noise floor ``sigma`` of a search.

    ``ambiguous`` is the baseline's metric ambiguity: passed in as the search knows it, and
    updated by :meth:`judge` when the baseline prints no readable metric.
    """

    protocol: Protocol
    tree: Tree
    sigma: float
    grading: Grading | None = None
    ambiguous: str | None = None

    def runs_wanted(self, node: Node, runs: list[dict[str, Any]]) -> int:
        """How many runs ``node`` gets: the baseline measures the noise floor; on a noisy run a
        would-be new best and every ablation candidate get as many runs as the baseline had."""
        samples = [r["metric"] for r in runs if r["status"] is Status.OK]
        if node.id == 0:
            return noise.runs_wanted(self.protocol, samples)
        if self.sigma == 0:
            return 1
        if node.operator is Operator.ABLATE or len(runs) > 1:
            return noise.confirm_runs(self.tree)
        best = self.tree.best(self.protocol)
        would_lead = best is None or self.protocol.better(samples[0], best.metric)  # type: ignore[arg-type]
        # promising (one sd better than its parent) is enough to earn the confirmation runs: the
        # verdict is then taken on their mean, with its own smaller spread (see keeps)
        return noise.confirm_runs(self.tree) if would_lead and self._promising(node, samples[0]) else 1

    def _promising(self, node: Node, metric: float) -> bool:
        ancestor = self._ancestor(node)
        if ancestor is None or ancestor.metric is None:
            return True
        return self.protocol.gain(metric, ancestor.metric) > self.sigma

    def combine(self, node: Node, runs: list[dict[str, Any]]) -> dict[str, Any]:
        """One node's fields from its runs: the first run's, with the mean metric of those that
        worked; keep-or-revert is decided on the mean."""
        if runs[-1]["status"] is Status.CANCELLED:
            return runs[-1]  # stopped while confirming: run again on resume, never half-judged
        fields = dict(runs[0])
        if fields["status"] is not Status.OK:
            return fields
        samples = [r["metric"] for r in runs if r["status"] is Status.OK]
        if len(runs) > 1:
            fields.update(metric=noise.mean(samples), samples=samples,
                          exec_time=round(noise.mean([r["exec_time"] for r in runs]), 4))
            failed = [r for r in runs if r["status"] is not Status.OK]
            if failed:
                fields["meta"] = {**node.meta, "replicate_failed": f"{len(failed)} run(s): {failed[0]['reason']}"}
        if node.id == 0:
            fields["meta"] = {**fields.get("meta", node.meta),
                              "noise": {"runs": len(samples), "sigma": noise.sd(samples)}}
            fields["kept"] = True
        else:
            # the verdict leaves out the first run: it was chosen for being lucky (selection bias)
            confirm = samples[1:] if len(samples) > 2 else samples
            fields["kept"] = node.operator is not Operator.ABLATE and self.keeps(node, noise.mean(confirm), len(confirm))
        return fields

    def judge(self, node: Node, stage: str, result: JobResult, node_dir: Path) -> dict[str, Any]:
        """The node's status, metric, reason and keep-or-revert verdict from its job result
        (``node_dir`` is the node's folder, where the job wrote its result file)."""
        smoke = "smoke run: " if stage == "smoke" else ""
        fields: dict[str, Any] = {
            "exit_code": result.exit_code, "exec_time": round(result.exec_time, 4),
            "output_tail": result.output_tail, "finished_at": time.time(),
            "metric": None, "kept": False, "reason": None,
        }
        result_path = node_dir / result_name(stage)
        output = ""
        if not result.cancelled:  # measured and collected for every node that ran, however it ended
            output = read_text(result.log_path)
            fields.update(measures.recorded(self.protocol, result, output, result_path))
        if result.where is not None:
            fields["where"] = dict(result.where)
        if result.cancelled:  # an infrastructure failure says so in error; resume runs it again
            fields.update(status=Status.CANCELLED, reason=result.error or "cancelled", kept=None)
        elif result.timed_out:
            budget = self.protocol.smoke_budget if stage == "smoke" else self.protocol.time_budget
            fields.update(status=Status.TIMEOUT, reason=f"{smoke}timed out after {budget:g} s")
        elif result.error or result.exit_code:
            reason = result.error or failure_reason(result.output_tail, result.exit_code)
            fields.update(status=Status.BUGGY, reason=smoke + reason)
        elif self.grading is not None and stage != "smoke":  # ---- evaluation hook 2: the evaluator decides ----
            fields.update(self.grading.fields(node, result))
            broken = measures.infeasible(self.protocol, fields) if fields["status"] is Status.OK else None
            if broken:
                fields.update(status=Status.INFEASIBLE, reason=broken, kept=False)
            elif fields["status"] is Status.OK:
                fields["kept"] = self.keeps(node, fields["metric"])
        else:
            if self.protocol.measured_metric:  # the runner's number; nothing printed counts
                metric, why = measures.measured_objective(self.protocol, fields)
            else:
                metric, why = read_metric(name=self.protocol.metric, output=output, result_path=result_path)
            fields["metric"] = metric
            if node.id == 0 and metric is None and not self.protocol.measured_metric:
                self.ambiguous = ambiguity(output, self.protocol.metric)
                why = self.ambiguous or why
            broken = None if why else measures.infeasible(self.protocol, fields)
            if why:
                fields.update(status=Status.BUGGY, reason=why)
            elif broken:
                fields.update(status=Status.INFEASIBLE, reason=broken, kept=False)
            else:
                fields.update(status=Status.OK, kept=self.keeps(node, metric))
        return fields

    def keeps(self, node: Node, metric: float | None, runs: int = 1) -> bool:
        """Keep or revert: a node is kept only if it beats its nearest working ancestor. On a noisy
        run the noise floor is that of the difference of two means: ``sigma * sqrt(1/n + 1/n_a)``
        for ``runs`` runs of the node against the ancestor's."""
        if node.parent is None:
            return True
        if node.operator is Operator.ABLATE:
            return False
        ancestor = self._ancestor(node)
        if ancestor is None or ancestor.metric is None or metric is None:
            return metric is not None
        spread = self.sigma * math.sqrt(1 / max(1, runs) + 1 / max(1, len(ancestor.samples)))
        return self.protocol.improves(metric, ancestor.metric, spread)

    def _ancestor(self, node: Node) -> Node | None:
        """The nearest working ancestor: what a node is judged against."""
        ancestor: Node | None = self.tree[node.parent] if node.parent is not None else None
        while ancestor is not None and not ancestor.is_good:
            ancestor = self.tree[ancestor.parent] if ancestor.parent is not None else None
        return ancestor
