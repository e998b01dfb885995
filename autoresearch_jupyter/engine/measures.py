"""What the loop records of a finished job beyond its objective: measurements, metrics, feasibility.

- ``measured``: the runner's own numbers (time, peak_memory, gpu_memory), from the executor's
  JobResult, for every node whatever the objective; the node's output cannot change them.
- ``metrics``: every ``name: value`` the node printed and every key it passed to ``report()``.
- feasibility: a node with a metric that breaks a constraint of the protocol is ``infeasible``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..core.constraints import MEASURED_NAMES, uses, violations
from ..core.errors import BaselineError
from ..core.metrics import collect_metrics, read_result
from ..core.node import Node, Status
from ..core.protocol import Protocol
from ..executors import JobResult


def measured(result: JobResult) -> dict[str, float]:
    """The runner's measurements of one job (only those it could take)."""
    out: dict[str, float] = {}
    if result.run_time is not None and math.isfinite(result.run_time):
        out["time"] = round(result.run_time, 6)
    if result.peak_memory:
        out["peak_memory"] = int(result.peak_memory)
    if result.gpu_memory is not None:
        out["gpu_memory"] = int(result.gpu_memory)
    return out


def recorded(protocol: Protocol, result: JobResult, output: str, result_path: Path) -> dict[str, Any]:
    """Node fields for every job that ran: ``measured`` and ``metrics``."""
    first = [protocol.metric, *sorted(uses(protocol.parsed_constraints))]
    metrics = collect_metrics(output, read_result(result_path), first=first, exclude=MEASURED_NAMES)
    return {"measured": measured(result), "metrics": metrics}


def measured_objective(protocol: Protocol, fields: dict[str, Any]) -> tuple[float | None, str | None]:
    """The objective when the runner measures it (``--metric time``); printed values never count."""
    value = fields["measured"].get(protocol.metric)
    if value is None:
        hint = " (a GPU must be assigned, with nvidia-ml-py installed)" if protocol.metric == "gpu_memory" else ""
        return None, f"no metric: the runner could not measure {protocol.metric} for this node{hint}"
    return float(value), None


def infeasible(protocol: Protocol, fields: dict[str, Any]) -> str | None:
    """Why a node with a metric breaks the constraints, in one line; None when it meets them all."""
    broken = violations(protocol.parsed_constraints, {**fields["metrics"], **fields["measured"]})
    return "infeasible: " + "; ".join(broken) if broken else None


def check_baseline_metrics(protocol: Protocol, root: Node) -> str | None:
    """Raise when a constraint tests a metric the baseline does not produce; else a warning or None.

    The warning is for a baseline that runs but breaks a constraint: the search goes on from it
    to look for a feasible node.
    """
    values = root.values()
    for c in protocol.parsed_constraints:
        if c.metric in values:
            continue
        if c.metric == "gpu_memory":
            how = "gpu_memory is measured only on an assigned GPU (--gpus) with NVML (pip install nvidia-ml-py)"
        elif c.metric in MEASURED_NAMES:
            how = f"the runner could not measure {c.metric} on this machine"
        else:
            how = f"print '{c.metric}: <number>' or call report({c.metric}=...) in the script"
        raise BaselineError(f"the baseline does not produce {c.metric}, which the constraint {c.text} tests: {how}")
    if root.status is Status.INFEASIBLE:
        return f"the baseline is {root.reason}; the search looks for a node that meets the constraints"
    return None
