"""A node is one experiment: one code change from its parent, run once under the protocol.

The search loop owns the only mutable ``Node`` objects; everyone else (callbacks, the widget,
``NotebookRun.tree``) gets ``NodeSnapshot`` s: the node as it was at one moment, read-only, so a
held snapshot never changes while the search goes on.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import types
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn


class Status(str, enum.Enum):
    """Where a node is in its life; only the search loop moves a node between states."""

    PENDING = "pending"  # created, not yet started
    RUNNING = "running"
    OK = "ok"  # ran and reported a finite metric
    BUGGY = "buggy"  # crashed, non-zero exit, no metric or a non-finite metric
    TIMEOUT = "timeout"  # killed by the runner at the protocol's time budget
    REJECTED = "rejected"  # refused by the guard before any compute was spent
    CANCELLED = "cancelled"  # stopped by the user before it finished
    INFEASIBLE = "infeasible"  # ran and has a metric, but violates a constraint: never kept or best

    def is_finished(self) -> bool:
        return self not in (Status.PENDING, Status.RUNNING)

    def is_failure(self) -> bool:
        return self in (Status.BUGGY, Status.TIMEOUT)

    def has_result(self) -> bool:
        """Ran to the end and was measured (feasible or not): its metrics mean something."""
        return self in (Status.OK, Status.INFEASIBLE)


class Operator(str, enum.Enum):
    """What kind of change a node is (AIDE's operators, plus the baseline)."""

    BASELINE = "baseline"
    DRAFT = "draft"  # a fundamentally different approach, from the baseline
    IMPROVE = "improve"  # one atomic change to a working node
    DEBUG = "debug"  # a fix for a failed node
    ABLATE = "ablate"  # the best with changes left out, to find which ones matter (never kept)


@dataclasses.dataclass(frozen=True)
class Usage:
    """Tokens spent proposing a node (LLM proposers only); a value, shared by snapshots."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Node:
    """Everything recorded about one experiment; the journal's events rebuild it field by field."""

    id: int
    parent: int | None
    operator: Operator
    plan: str
    code: str
    code_hash: str = ""
    diff: str = ""
    status: Status = Status.PENDING
    metric: float | None = None
    kept: bool | None = None
    reason: str | None = None
    exit_code: int | None = None
    exec_time: float | None = None
    output_tail: str = ""
    created_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    usage: Usage | None = None
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    """Every ``name: value`` the script printed or passed to report() (at most 32 names)."""
    measured: dict[str, float] = dataclasses.field(default_factory=dict)
    """What the runner measured, whatever the script says: time (s), peak_memory, gpu_memory (bytes)."""
    samples: list[float] = dataclasses.field(default_factory=list)
    """The metric of each run of this node when it ran more than once (noise floor, confirmation);
    ``metric`` is then their mean."""
    new_best: bool | None = None
    """True when this node became the run's best as it finished (``kept`` only means it beat its
    parent); None while unfinished and for nodes from before the field existed."""
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Proposer- and policy-specific facts (the mutate move, a backtrack note); JSON-safe values."""

    @property
    def is_good(self) -> bool:
        """Ran to the end with a usable metric (kept or not)."""
        return self.status is Status.OK and self.metric is not None

    @property
    def is_infeasible(self) -> bool:
        """Ran with a usable metric but broke a constraint of the protocol."""
        return self.status is Status.INFEASIBLE

    def values(self) -> dict[str, float]:
        """The names a constraint can test: the script's metrics, then the runner's (which win)."""
        return {**self.metrics, **self.measured}

    @property
    def is_kept(self) -> bool:
        """Kept in the keep-or-revert sense: a good node that improved, or the baseline that ran.

        The one definition of "kept" that the best node, the policy, the views and the report use.
        """
        return self.is_good and (bool(self.kept) or self.operator is Operator.BASELINE)

    @property
    def kind(self) -> str:
        """How the views colour a node: "kept" / "reverted" for nodes that ran fine, else its status."""
        if self.status is Status.OK:
            return "kept" if self.is_kept else "reverted"
        return str(self.status.value)

    def to_dict(self) -> dict[str, Any]:
        """The node as JSON-safe data (the journal's ``node`` form)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["operator"] = self.operator.value
        data["status"] = self.status.value
        data["usage"] = self.usage.to_dict() if self.usage is not None else None
        for name in ("meta", "metrics", "measured"):
            data[name] = _thaw(getattr(self, name))
        return data

    def snapshot(self) -> "NodeSnapshot":
        """This node as it is now, read-only; later changes to this node do not reach it."""
        snap = NodeSnapshot.__new__(NodeSnapshot)
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        for name in ("meta", "metrics", "measured"):
            fields[name] = _freeze(getattr(self, name))
        snap.__dict__.update(fields)  # bypasses NodeSnapshot.__setattr__, which refuses every change
        return snap


class NodeSnapshot(Node):
    """A node as it was when the snapshot was taken: every field is read-only.

    It is a ``Node`` for reading (``is_good``, ``is_kept``, ``to_dict``, every report and view
    function take it), but assigning a field raises ``dataclasses.FrozenInstanceError`` and its
    ``meta`` is a read-only mapping. ``dataclasses.replace`` gives a changed copy (another
    snapshot). Snapshots are values: copying one returns it, and one equals a ``Node`` with the
    same fields.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__.update(Node(*args, **kwargs).snapshot().__dict__)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Node):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # equal to mutable nodes, so not hashable either

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise dataclasses.FrozenInstanceError(
            f"cannot assign to field {name!r}: node {self.id} is a snapshot (only the search loop changes nodes)"
        )

    def __delattr__(self, name: str) -> NoReturn:
        raise dataclasses.FrozenInstanceError(f"cannot delete field {name!r}: node {self.id} is a snapshot")

    def __copy__(self) -> "NodeSnapshot":
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> "NodeSnapshot":
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        return (_unpickle_snapshot, (self.to_dict(),))

    def snapshot(self) -> "NodeSnapshot":
        return self


def _unpickle_snapshot(data: dict[str, Any]) -> NodeSnapshot:
    fields = dict(data)
    fields["operator"] = Operator(fields["operator"])
    fields["status"] = Status(fields["status"])
    if fields.get("usage") is not None:
        fields["usage"] = Usage(**fields["usage"])
    return Node(**fields).snapshot()


def _freeze(value: Any) -> Any:
    """A read-only deep copy of JSON-like data: mappings become read-only, lists tuples."""
    if isinstance(value, Mapping):
        return types.MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    """Plain JSON data again from ``_freeze`` d (or plain) data."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    return value


# ---- rules over nodes: each written once, used by the engine, the report and the views ----------


def finite(value: float | None) -> float | None:
    """``value`` if it is a finite float, else None (NaN and infinities are no result)."""
    return value if value is not None and math.isfinite(value) else None


def tidy(value: float | None) -> float | None:
    """Round away float noise (0.85 - 0.8 = 0.04999999999999993) for numbers people read."""
    return None if value is None else float(f"{value:.12g}")


@dataclasses.dataclass(frozen=True)
class UsageTotals:
    """Tokens (and cost, when the endpoint reports it) over every node that has usage."""

    nodes: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float | None


def usage_totals(nodes: Iterable[Node]) -> UsageTotals | None:
    """What proposing ``nodes`` cost; None when no node has usage (no LLM was asked)."""
    used = [n.usage for n in nodes if n.usage is not None]
    if not used:
        return None
    prompt = sum(u.prompt_tokens for u in used)
    completion = sum(u.completion_tokens for u in used)
    costs = [u.cost for u in used if u.cost is not None]
    return UsageTotals(len(used), prompt, completion, prompt + completion, tidy(sum(costs)) if costs else None)
