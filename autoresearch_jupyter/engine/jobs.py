"""What the executor is handed to run a node: its Job, and the environment every node sees.

A node's script learns everything about the run through environment variables (its seed, time
budget, id, metric, result file and folder, whether this is a smoke run, where the user's source
is) and runs under limits and a sandbox described by its Job. Building these is bookkeeping the
loop need not carry: here it is one function per thing, fed the protocol, the settings and the
run folder, so the contract between the search and a node's script can be read in one place.
Nothing here submits or tracks a job; the loop does that.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..core.node import Node
from ..core.protocol import Protocol
from ..core.settings import RunSettings
from ..executors import Job
from ..store.runs import RunDir
from .judge import log_name, result_name

__all__ = ["build_job", "path_env", "seed_env", "warm_imports"]


def seed_env(protocol: Protocol) -> dict[str, str]:
    """The seed every node (and the executor's warm workers) runs with."""
    seed = str(protocol.seed)
    return {"AUTORESEARCH_SEED": seed, "PYTHONHASHSEED": seed}


def path_env(source_dir: str | None) -> dict[str, str]:
    """The source folder on the node's import path (first), when the run has one."""
    if not source_dir:
        return {}
    paths = [str(Path(source_dir).resolve()), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {"AUTORESEARCH_SOURCE_DIR": paths[0], "PYTHONPATH": os.pathsep.join(paths)}


def warm_imports(code: str) -> list[str]:
    """The modules the baseline imports at its top, for the executor to import ahead of time."""
    from ..executors.local import top_level_imports

    try:
        return top_level_imports(code, submodules=True)
    except SyntaxError:
        return []


def build_job(node: Node, stage: str, *, protocol: Protocol, settings: RunSettings, run_dir: RunDir) -> Job:
    """The Job for one ``stage`` of ``node`` (smoke, full or a replicate run); a stale result
    file of that stage, from an earlier try, is removed first so it cannot be read as this one's."""
    node_dir = run_dir.node_dir(node.id)
    result_path = node_dir / result_name(stage)
    result_path.unlink(missing_ok=True)
    env = {
        **seed_env(protocol),
        "AUTORESEARCH_TIME_BUDGET": f"{protocol.time_budget:g}",
        "AUTORESEARCH_NODE_ID": str(node.id),
        "AUTORESEARCH_RESULT": str(result_path.resolve()),
        "AUTORESEARCH_METRIC": protocol.metric,
        "AUTORESEARCH_NODE_DIR": str(node_dir.resolve()),
        **path_env(settings.source_dir),
    }
    if stage == "smoke":
        env["AUTORESEARCH_SMOKE"] = "1"
    source = settings.source_dir
    return Job(
        mirror=Path(source) if source and not settings.cwd else None,
        readonly=(run_dir.path.resolve(),),  # the sandbox shows the run folder read-only
        node_id=node.id,
        script=run_dir.script_path(node.id).resolve(),
        workdir=node_dir.resolve(),
        timeout=protocol.smoke_budget if stage == "smoke" else protocol.time_budget,
        env=env,
        log_name=log_name(stage),
        cwd=Path(settings.cwd).resolve() if settings.cwd else None,
    )
