"""The journal's on-disk format: its event types, their constructors and the JSON codec.

Version 1 (``JOURNAL_VERSION``):

- every line is a JSON object with ``"event"`` (its kind), ``"v": 1`` and ``"t"`` (``time.time()``);
- strict JSON: a non-finite float (a NaN metric) is written as ``{"$float": "nan"}`` (or ``"inf"``,
  ``"-inf"``) and loads back as the same float, so jq and JavaScript read every line;
- ``node_created`` carries the whole node; ``node_finished`` and ``node_updated`` carry ``fields``
  applied to the node: ``meta`` is merged into the node's meta, any other field replaces its value;
- ``node_started`` resets a node to running (metric, kept and reason cleared), as the loop does.

Writing and replaying live in ``journal.py``, which re-exports everything here.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import os
import socket
import time
from typing import Any, Literal, Mapping, TypedDict, Union

from ..core.node import Node, Operator, Status, Usage

JOURNAL_VERSION = 1
RUN_END_STATES = ("finished", "stopped", "failed")
STATES = ("running", "interrupted", *RUN_END_STATES)

_FLOAT_TAG = "$float"
_FLOAT_TAG_BYTES = b'"$float"'
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_NODE_FIELDS = tuple(f.name for f in dataclasses.fields(Node))
NODE_FIELDS = frozenset(_NODE_FIELDS)
_USAGE_FIELDS = frozenset(f.name for f in dataclasses.fields(Usage))
FINISH_FIELDS = NODE_FIELDS - {"id", "parent"}
"""What node_finished may set."""
UPDATE_FIELDS = FINISH_FIELDS - {"status"}
"""What node_updated may set: status moves only through node_started / node_finished."""


# ---- events ---------------------------------------------------------------------------------


class RunStartedEvent(TypedDict):
    """A search began writing this run."""

    event: Literal["run_started"]
    v: int
    t: float
    pid: int
    host: str


class RunResumedEvent(TypedDict):
    """A search continued this run (maybe in another process)."""

    event: Literal["run_resumed"]
    v: int
    t: float
    pid: int
    host: str


class RunFinishedEvent(TypedDict):
    """The search ended; ``summary`` (nodes, best, baseline) lets ``list_runs`` skip a replay."""

    event: Literal["run_finished"]
    v: int
    t: float
    state: str  # one of RUN_END_STATES
    reason: str | None
    summary: dict[str, Any] | None


class NodeCreatedEvent(TypedDict):
    """A node joined the tree; ``node`` is the whole node, as ``Node.to_dict`` gives it."""

    event: Literal["node_created"]
    v: int
    t: float
    node: dict[str, Any]


class NodeStartedEvent(TypedDict):
    """A node's job was submitted."""

    event: Literal["node_started"]
    v: int
    t: float
    id: int


class NodeFinishedEvent(TypedDict):
    """A node reached a finished status; ``fields`` (status, metric, kept, ...) apply to it."""

    event: Literal["node_finished"]
    v: int
    t: float
    id: int
    fields: dict[str, Any]


class NodeUpdatedEvent(TypedDict):
    """Any other change to a node (``meta`` notes, a late reason); never its status."""

    event: Literal["node_updated"]
    v: int
    t: float
    id: int
    fields: dict[str, Any]


Event = Union[
    RunStartedEvent, RunResumedEvent, RunFinishedEvent,
    NodeCreatedEvent, NodeStartedEvent, NodeFinishedEvent, NodeUpdatedEvent,
]


def _now(t: float | None) -> float:
    return time.time() if t is None else t


def run_started_event(*, t: float | None = None) -> RunStartedEvent:
    return {"event": "run_started", "v": JOURNAL_VERSION, "t": _now(t), "pid": os.getpid(), "host": socket.gethostname()}


def run_resumed_event(*, t: float | None = None) -> RunResumedEvent:
    return {"event": "run_resumed", "v": JOURNAL_VERSION, "t": _now(t), "pid": os.getpid(), "host": socket.gethostname()}


def run_finished_event(
    state: str, reason: str | None = None, *, summary: Mapping[str, Any] | None = None, t: float | None = None
) -> RunFinishedEvent:
    if state not in RUN_END_STATES:
        raise ValueError(f"run state must be one of {', '.join(RUN_END_STATES)}, got {state!r}")
    return {
        "event": "run_finished", "v": JOURNAL_VERSION, "t": _now(t), "state": state, "reason": reason,
        "summary": dict(summary) if summary is not None else None,
    }


def node_created_event(node: Node, *, t: float | None = None) -> NodeCreatedEvent:
    return {"event": "node_created", "v": JOURNAL_VERSION, "t": _now(t), "node": node_dict(node)}


def node_started_event(node_id: int, *, t: float | None = None) -> NodeStartedEvent:
    return {"event": "node_started", "v": JOURNAL_VERSION, "t": _now(t), "id": node_id}


def node_finished_event(node_id: int, *, t: float | None = None, **fields: Any) -> NodeFinishedEvent:
    """Raises ValueError for a missing or unfinished status or a field that is not a node field."""
    _check_fields(fields, FINISH_FIELDS, "node_finished")
    if "status" not in fields or not Status(fields["status"]).is_finished():
        raise ValueError(f"node_finished needs a finished status, got {fields.get('status')!r}")
    return {"event": "node_finished", "v": JOURNAL_VERSION, "t": _now(t), "id": node_id, "fields": _plain(fields)}


def node_updated_event(node_id: int, *, t: float | None = None, **fields: Any) -> NodeUpdatedEvent:
    """Raises ValueError for id, parent, status or a field that is not a node field."""
    _check_fields(fields, UPDATE_FIELDS, "node_updated")
    return {"event": "node_updated", "v": JOURNAL_VERSION, "t": _now(t), "id": node_id, "fields": _plain(fields)}


def _check_fields(fields: Mapping[str, Any], allowed: frozenset[str], what: str) -> None:
    bad = sorted(set(fields) - allowed)
    if bad:
        raise ValueError(f"{what} cannot set {', '.join(bad)} (allowed: {', '.join(sorted(allowed))})")


def _plain(fields: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(fields)
    for key, value in out.items():
        if isinstance(value, enum.Enum):
            out[key] = value.value
        elif isinstance(value, Usage):
            out[key] = value.to_dict()
    return out


def node_dict(node: Node) -> dict[str, Any]:
    """``Node.to_dict`` without the deep copy of ``dataclasses.asdict`` (the hot path of a search)."""
    data = {name: getattr(node, name) for name in _NODE_FIELDS}
    data["operator"] = node.operator.value
    data["status"] = node.status.value
    data["usage"] = node.usage.to_dict() if node.usage is not None else None
    data["meta"] = dict(node.meta)
    data["where"] = dict(node.where) if node.where is not None else None
    return data


def node_from_dict(data: Mapping[str, Any]) -> Node:
    """A node from its journal form; raises ValueError, KeyError or TypeError on a malformed one."""
    kwargs = {k: v for k, v in data.items() if k in NODE_FIELDS}
    node_id, parent = kwargs.get("id"), kwargs.get("parent")
    if type(node_id) is not int or node_id < 0:
        raise ValueError(f"bad node id {node_id!r}")
    if parent is not None and type(parent) is not int:
        raise ValueError(f"bad parent {parent!r}")
    kwargs["operator"] = Operator(kwargs["operator"])
    kwargs["status"] = Status(kwargs.get("status", "pending"))
    if kwargs.get("usage") is not None:
        kwargs["usage"] = usage_from_dict(kwargs["usage"])
    if kwargs.get("meta") is None:
        kwargs.pop("meta", None)
    elif not isinstance(kwargs["meta"], dict):
        raise ValueError("meta must be an object")
    return Node(**kwargs)


def usage_from_dict(value: Any) -> Usage:
    if not isinstance(value, dict):
        raise ValueError("usage must be an object")
    return Usage(**{k: v for k, v in value.items() if k in _USAGE_FIELDS})


# ---- JSON -------------------------------------------------------------------------------------


def dumps(obj: Any) -> str:
    """One compact, strict-JSON line; non-finite floats become ``{"$float": "nan"}`` and the like."""
    try:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=_default)
    except ValueError:  # a NaN or infinity somewhere: tag it (the rare path)
        return json.dumps(
            _tag_nonfinite(obj), ensure_ascii=False, separators=(",", ":"), allow_nan=False,
            default=lambda o: _tag_nonfinite(_default(o)),
        )


def loads(line: str | bytes) -> Any:
    """Parse one journal line; tagged non-finite floats come back as floats."""
    tagged = (_FLOAT_TAG_BYTES in line) if isinstance(line, bytes) else (_FLOAT_TAG in line)
    return json.loads(line, object_hook=_untag) if tagged else json.loads(line)


def _default(obj: Any) -> Any:
    """A journal must not crash a search over one odd value: known types convert, others repr."""
    if isinstance(obj, enum.Enum):
        return obj.value
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if hasattr(obj, "item"):  # numpy scalars
        try:
            return obj.item()
        except Exception:
            pass
    return repr(obj)


def _tag_nonfinite(obj: Any) -> Any:
    if isinstance(obj, float):
        if math.isfinite(obj):
            return obj
        return {_FLOAT_TAG: "nan" if obj != obj else ("inf" if obj > 0 else "-inf")}
    if isinstance(obj, dict):
        return {k: _tag_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_tag_nonfinite(v) for v in obj]
    return obj


def _untag(obj: dict[str, Any]) -> Any:
    if len(obj) == 1 and _FLOAT_TAG in obj:
        value = obj[_FLOAT_TAG]
        if isinstance(value, str) and value in _NONFINITE:
            return _NONFINITE[value]
    return obj
