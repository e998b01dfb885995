"""A node is one experiment: one code change from its parent, run once under the protocol."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any


class Status(str, enum.Enum):
    """Where a node is in its life; only the search loop moves a node between states."""

    PENDING = "pending"  # created, not yet started
    RUNNING = "running"
    OK = "ok"  # ran and reported a finite metric
    BUGGY = "buggy"  # crashed, non-zero exit, no metric or a non-finite metric
    TIMEOUT = "timeout"  # killed by the runner at the protocol's time budget
    REJECTED = "rejected"  # refused by the guard before any compute was spent
    CANCELLED = "cancelled"  # stopped by the user before it finished

    def is_finished(self) -> bool:
        return self not in (Status.PENDING, Status.RUNNING)

    def is_failure(self) -> bool:
        return self in (Status.BUGGY, Status.TIMEOUT)


class Operator(str, enum.Enum):
    """What kind of change a node is (AIDE's operators, plus the baseline)."""

    BASELINE = "baseline"
    DRAFT = "draft"  # a fundamentally different approach, from the baseline
    IMPROVE = "improve"  # one atomic change to a working node
    DEBUG = "debug"  # a fix for a failed node


@dataclasses.dataclass
class Usage:
    """Tokens spent proposing a node (LLM proposers only)."""

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
    where: dict[str, Any] | None = None
    """Where the node's last run ran, from executors that run elsewhere (Ray: executor, host, ip,
    ray_node_id, gpus, worker_pid); None: on this machine."""
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    """Proposer- and policy-specific facts (the mutate move, a backtrack note); JSON-safe values."""

    @property
    def is_good(self) -> bool:
        """Ran to the end with a usable metric (kept or not)."""
        return self.status is Status.OK and self.metric is not None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["operator"] = self.operator.value
        data["status"] = self.status.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Node":
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in fields}
        kwargs["operator"] = Operator(kwargs["operator"])
        kwargs["status"] = Status(kwargs.get("status", "pending"))
        if kwargs.get("usage") is not None:
            kwargs["usage"] = Usage(**kwargs["usage"])
        return cls(**kwargs)
