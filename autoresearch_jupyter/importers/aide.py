"""Import an AIDE ``journal.json`` as a normal run, so ``ls``, ``show``, ``tree`` and ``export`` work on it.

AIDE (0.2.x) stores ``{"nodes": [...], "node2parent": {child: parent}, "__version": "2"}``; its
tree lives only in ``node2parent`` and has one root per draft. How it maps onto our tree:

- ids: nodes sorted by ``step``; our id is the rank, which is AIDE's step in a normal journal,
  so AIDE's logs and ours name the same node.
- one root: our tree needs exactly one root, id 0. AIDE's first node is always a draft (there is
  nothing else to start from); it becomes the root with operator ``baseline``, and every later
  parentless draft becomes its child with operator ``draft``, which is the shape our own search
  makes (drafts branch from the baseline). No synthetic node: every node ran real code.
- operator: no parent -> draft; a failed parent -> debug; otherwise improve.
- status: an ``exc_type`` naming a timeout -> timeout; ``is_buggy`` -> buggy; no finite metric ->
  buggy (our "ok" promises a finite metric); otherwise ok.
- direction: from the first node whose metric says ``maximize`` (or the ``maximize`` argument).
  AIDE's model decides the direction per node; a node that disagrees keeps its value and gets
  ``meta["aide_maximize"]``.
- kept: decided as our search decides it: ok and better than the nearest working ancestor.
- reason: ``exc_type`` and AIDE's ``analysis``; ``output_tail``: the last 4 KB of ``_term_out``
  (the whole output goes to ``nodes/<id>/output.log``); ``diff``: from the parent's code.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

from ..core.diffs import unified_diff
from ..core.errors import JournalError
from ..store.journal import node_created_event, node_finished_event, node_started_event, run_finished_event, run_started_event
from ..core.node import Node, Operator, Status
from ..core.protocol import Protocol
from ..store.runs import RunDir, atomic_write, summarize
from ..core.tree import Tree

OUTPUT_TAIL = 4096
AIDE_TIME_BUDGET = 3600.0  # AIDE's default execution timeout; the journal does not record it
_RESULT_FIELDS = ("status", "metric", "kept", "reason", "exit_code", "exec_time", "output_tail", "finished_at")


@dataclasses.dataclass(frozen=True)
class AideRun:
    """An AIDE journal read into our terms, before anything is written."""

    protocol: Protocol
    nodes: list[Node]  # in id order, parents first, final state
    outputs: dict[int, str]  # the whole terminal output of each node
    version: str | None  # AIDE's "__version"


def import_aide(
    journal_json: str | os.PathLike[str],
    runs_dir: str | os.PathLike[str] | None = None,
    *,
    name: str | None = None,
    metric: str = "metric",
    maximize: bool | None = None,
) -> RunDir:
    """Create a finished run (run.json, journal.jsonl, nodes/<id>/) from AIDE's journal.json.

    Raises JournalError (one line) when the file is not JSON or not AIDE's shape.
    """
    path = Path(journal_json)
    aide = read_aide(path, metric=metric, maximize=maximize)
    settings = {"imported_from": "aide", "aide_version": aide.version, "steps": len(aide.nodes)}
    run_dir = RunDir.create(runs_dir, name=name, protocol=aide.protocol, settings=settings, source=str(path))
    tree = Tree()
    for node in aide.nodes:
        tree.add(node)
    times = [n.created_at for n in aide.nodes if n.created_at is not None]
    ends = [n.finished_at for n in aide.nodes if n.finished_at is not None]
    with run_dir.journal() as journal:
        journal.append(run_started_event(t=min(times) if times else None))
        for node in aide.nodes:
            run_dir.write_node_script(node.id, node.code)
            if aide.outputs.get(node.id):
                atomic_write(run_dir.output_path(node.id), aide.outputs[node.id])
            fields = {key: getattr(node, key) for key in _RESULT_FIELDS}
            pending = dataclasses.replace(
                node, status=Status.PENDING, metric=None, kept=None, reason=None, exit_code=None,
                exec_time=None, output_tail="", started_at=None, finished_at=None,
            )
            journal.append(node_created_event(pending, t=node.created_at))
            journal.append(node_started_event(node.id, t=node.started_at))
            journal.append(node_finished_event(node.id, t=node.finished_at, **fields))
        journal.append(run_finished_event(
            "finished", f"imported from AIDE ({len(aide.nodes)} nodes)",
            summary=summarize(tree, aide.protocol), t=max(ends) if ends else None,
        ))
    return run_dir


def read_aide(path: str | os.PathLike[str], *, metric: str = "metric", maximize: bool | None = None) -> AideRun:
    """Read and convert an AIDE journal.json; JournalError (one line) on bad input."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise JournalError(f"{path}: no such file") from None
    except OSError as err:
        raise JournalError(f"{path}: cannot read it ({err.strerror})") from None
    except ValueError as err:
        raise JournalError(f"{path}: not JSON ({str(err).splitlines()[0][:80]}); expected AIDE's journal.json") from None
    return parse_aide(data, metric=metric, maximize=maximize, source=str(path))


def parse_aide(data: Any, *, metric: str = "metric", maximize: bool | None = None, source: str = "journal.json") -> AideRun:
    """Convert AIDE's journal (already parsed JSON) into nodes; see the module docstring."""
    raws = _checked_nodes(data, source)
    node2parent = data.get("node2parent")
    node2parent = {} if node2parent is None else node2parent
    if not isinstance(node2parent, dict):
        raise JournalError(f"{source}: not AIDE's journal.json ('node2parent' is not an object)")
    ids = {raw["id"]: i for i, raw in enumerate(raws)}
    parents: list[int | None] = []
    for i, raw in enumerate(raws):
        inline = raw.get("parent") if isinstance(raw.get("parent"), str) else None
        parent_aid = node2parent.get(raw["id"], inline)
        if parent_aid is None:
            parents.append(None)
        elif not isinstance(parent_aid, str):
            raise JournalError(f"{source}: node {raw['id']}'s parent {parent_aid!r} is not a node id")
        elif parent_aid not in ids:
            raise JournalError(f"{source}: node {raw['id']}'s parent {parent_aid} is not in the journal")
        elif ids[parent_aid] >= i:
            raise JournalError(f"{source}: node {raw['id']} comes before its parent {parent_aid} (steps out of order)")
        else:
            parents.append(ids[parent_aid])

    metrics = [_metric(raw.get("metric")) for raw in raws]
    if maximize is None:
        maximize = next((m for value, m in metrics if value is not None and m is not None), True)
    protocol = Protocol(metric=metric, maximize=maximize, time_budget=AIDE_TIME_BUDGET)

    nodes: list[Node] = []
    outputs: dict[int, str] = {}
    for i, raw in enumerate(raws):
        value, node_max = metrics[i]
        # parentless drafts after the first hang under node 0 (the first draft)
        aide_parent = parents[i]
        parent = None if i == 0 else (aide_parent if aide_parent is not None else 0)
        parent_node = nodes[parent] if parent is not None else None
        status, reason = _status(raw, value)
        if i == 0:
            operator = Operator.BASELINE
        elif aide_parent is None:
            operator = Operator.DRAFT
        else:
            operator = Operator.DEBUG if nodes[aide_parent].status.is_failure() else Operator.IMPROVE
        output = _output(raw.get("_term_out"))
        outputs[i] = output
        created = _number(raw.get("ctime"))
        exec_time = _number(raw.get("exec_time"))
        meta: dict[str, Any] = {"aide_id": raw["id"], "aide_step": raw.get("step", i)}
        if i == 0:
            meta["aide_operator"] = "draft"
        if value is not None and node_max is not None and node_max != maximize:
            meta["aide_maximize"] = node_max
        code = raw["code"]
        node = Node(
            id=i, parent=parent, operator=operator, plan=str(raw.get("plan") or ""), code=code,
            diff=unified_diff(parent_node.code, code, f"node {parent_node.id}", f"node {i}") if parent_node else "",
            status=status, metric=value, reason=reason, exec_time=exec_time,
            output_tail=output[-OUTPUT_TAIL:], created_at=created, started_at=created,
            finished_at=created + exec_time if created is not None and exec_time is not None else created,
            meta=meta,
        )
        node.kept = _keeps(node, nodes, protocol)
        nodes.append(node)
    version = data.get("__version")
    return AideRun(protocol=protocol, nodes=nodes, outputs=outputs, version=str(version) if version is not None else None)


def _checked_nodes(data: Any, source: str) -> list[dict[str, Any]]:
    """AIDE's nodes in step order, after checking the shape we rely on."""
    if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
        raise JournalError(f"{source}: not AIDE's journal.json (expected an object with 'nodes' and 'node2parent')")
    raws = data["nodes"]
    if not raws:
        raise JournalError(f"{source}: the AIDE journal has no nodes")
    seen: set[str] = set()
    for k, raw in enumerate(raws):
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not isinstance(raw.get("code"), str):
            raise JournalError(f"{source}: node #{k} is not an AIDE node (it needs a string 'id' and 'code')")
        if raw["id"] in seen:
            raise JournalError(f"{source}: node id {raw['id']} appears twice")
        seen.add(raw["id"])
    if all(type(raw.get("step")) is int for raw in raws):
        return sorted(raws, key=lambda raw: raw["step"])
    return list(raws)


def _metric(raw: Any) -> tuple[float | None, bool | None]:
    """(value, maximize) from AIDE's ``{"value", "maximize"}`` (or a bare number)."""
    if isinstance(raw, dict):
        value, maximize = raw.get("value"), raw.get("maximize")
    else:
        value, maximize = raw, None
    number = _number(value)
    return number, maximize if isinstance(maximize, bool) else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _status(raw: dict[str, Any], value: float | None) -> tuple[Status, str | None]:
    exc_type = raw.get("exc_type") if isinstance(raw.get("exc_type"), str) else None
    analysis = raw.get("analysis") if isinstance(raw.get("analysis"), str) else None
    reason = ": ".join(p.strip() for p in (exc_type, analysis) if p and p.strip()) or None
    if exc_type and "timeout" in exc_type.lower():
        return Status.TIMEOUT, reason
    if raw.get("is_buggy"):
        return Status.BUGGY, reason or "AIDE marked it buggy"
    if value is None or not math.isfinite(value):
        why = "no metric" if value is None else f"non-finite metric {value}"
        return Status.BUGGY, f"{why}: {reason}" if reason else why
    return Status.OK, reason


def _output(term_out: Any) -> str:
    if isinstance(term_out, list):
        return "".join(str(part) for part in term_out)
    return term_out if isinstance(term_out, str) else ""


def _keeps(node: Node, earlier: list[Node], protocol: Protocol) -> bool:
    """Keep or revert, as the search decides: ok and better than the nearest working ancestor."""
    if node.status is not Status.OK or node.metric is None:
        return False
    ancestor = earlier[node.parent] if node.parent is not None else None
    while ancestor is not None and not ancestor.is_good:
        ancestor = earlier[ancestor.parent] if ancestor.parent is not None else None
    if ancestor is None or ancestor.metric is None:
        return True
    return protocol.improves(node.metric, ancestor.metric)

