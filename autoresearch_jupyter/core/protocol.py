"""The evaluation protocol: fixed before the first node runs, stored in run.json, never changed.

Everything that decides whether one node is better than another lives here, so that no other
part (and no proposer) can move the goalposts: the metric and its direction, the time budget,
the seed, the smallest improvement that counts, and the frozen code with its hash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from typing import Any

from .constraints import MEASURED_NAMES, Constraint, parse_constraints
from .errors import ProtocolError

FREEZE_MARK = re.compile(r"^\s*#\s*autoresearch:\s*freeze\b", re.IGNORECASE)
END_MARK = re.compile(r"^\s*#\s*autoresearch:\s*end\b", re.IGNORECASE)
METRIC_NAME = re.compile(r"^[A-Za-z_][\w.\-/]*$")

PROTOCOL_VERSION = 1
MAX_REPLICATES = 10
AUTO_REPLICATES = 5  # runs of a noisy baseline under replicates="auto"


def frozen_spans(code: str) -> list[tuple[int, int]]:
    """Line spans (0-based, inclusive, markers included) of the frozen regions of ``code``.

    A ``# autoresearch: freeze`` line opens a region and ``# autoresearch: end`` closes it; a
    region left open runs to the end of the file, so forgetting ``end`` freezes more, not less.
    """
    spans: list[tuple[int, int]] = []
    start: int | None = None
    lines = code.splitlines()
    for i, line in enumerate(lines):
        if start is None and FREEZE_MARK.match(line):
            start = i
        elif start is not None and END_MARK.match(line):
            spans.append((start, i))
            start = None
    if start is not None:
        spans.append((start, len(lines) - 1))
    return spans


def frozen_blocks(code: str) -> tuple[str, ...]:
    """The text of each frozen region, in order; two scripts agree on frozen code iff these match."""
    lines = code.splitlines()
    return tuple("\n".join(lines[a : b + 1]) for a, b in frozen_spans(code))


def _hash_blocks(blocks: tuple[str, ...]) -> str:
    return hashlib.sha256("\0".join(blocks).encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class Protocol:
    """Metric, direction, budget, seed and frozen code of a run; immutable once a run starts."""

    metric: str
    maximize: bool
    time_budget: float = 60.0
    seed: int = 0
    min_delta: float = 0.0
    frozen: tuple[str, ...] = ()
    frozen_hash: str = ""
    smoke_budget: float = 10.0
    constraints: tuple[str, ...] = ()
    """Bounds every counted node meets (``peak_memory<2G``); see constraints.py."""
    replicates: int | str = "auto"
    """Baseline runs that measure the noise floor: ``auto`` (two, up to MAX_REPLICATES when they
    differ) or a fixed count; a would-be new best on a noisy run is re-run as often."""
    noise_k: float = 2.0
    """On a noisy run a change must beat its parent by more than ``noise_k`` standard deviations."""
    version: int = PROTOCOL_VERSION

    def __post_init__(self) -> None:
        if not self.metric or not METRIC_NAME.match(self.metric):
            raise ProtocolError(
                f"invalid metric name {self.metric!r}: use the name the script prints, e.g. val_acc"
            )
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ProtocolError(f"the seed must be an integer from 0 to 4294967295, got {self.seed!r}")
        if not (self.time_budget > 0 and math.isfinite(self.time_budget)):
            raise ProtocolError(f"the time budget must be a positive number of seconds, got {self.time_budget}")
        if not (self.smoke_budget > 0 and math.isfinite(self.smoke_budget)):
            raise ProtocolError(f"the smoke budget must be a positive number of seconds, got {self.smoke_budget}")
        if not (self.min_delta >= 0 and math.isfinite(self.min_delta)):
            raise ProtocolError(f"--min-delta must be a non-negative number, got {self.min_delta}")
        if self.metric in MEASURED_NAMES and self.maximize:
            raise ProtocolError(
                f"--metric {self.metric} is measured by the runner and lower is better: use --minimize"
            )
        parsed = parse_constraints(tuple(self.constraints))
        object.__setattr__(self, "constraints", tuple(c.text for c in parsed))
        object.__setattr__(self, "_parsed", parsed)
        if isinstance(self.replicates, bool) or not (
            self.replicates == "auto" or (isinstance(self.replicates, int) and 1 <= self.replicates <= MAX_REPLICATES)
        ):
            raise ProtocolError(
                f"--replicates must be 'auto' or a whole number from 1 to {MAX_REPLICATES}, got {self.replicates!r}"
            )
        if isinstance(self.noise_k, bool) or not (
            isinstance(self.noise_k, (int, float)) and math.isfinite(self.noise_k) and 0 <= self.noise_k <= 10
        ):
            raise ProtocolError(f"--noise-k must be a number from 0 to 10 (standard deviations), got {self.noise_k!r}")
        if not self.frozen_hash:
            object.__setattr__(self, "frozen_hash", _hash_blocks(self.frozen))

    @classmethod
    def for_script(cls, code: str, *, metric: str, maximize: bool, **settings: Any) -> "Protocol":
        """Fix the protocol for a baseline script: its frozen regions become part of it.

        Constraints are checked against the script here, so a misspelt measured metric fails now.
        """
        constraints = tuple(c.text for c in parse_constraints(settings.pop("constraints", None) or (), code=code))
        return cls(metric=metric, maximize=maximize, frozen=frozen_blocks(code), constraints=constraints, **settings)

    @property
    def parsed_constraints(self) -> tuple[Constraint, ...]:
        parsed: tuple[Constraint, ...] = self.__dict__["_parsed"]
        return parsed

    @property
    def measured_metric(self) -> bool:
        """True when the objective is measured by the runner (time, peak_memory, gpu_memory)."""
        return self.metric in MEASURED_NAMES

    @property
    def direction(self) -> str:
        return "maximize" if self.maximize else "minimize"

    def better(self, a: float, b: float) -> bool:
        """True if metric ``a`` is strictly better than ``b`` in the protocol's direction."""
        return a > b if self.maximize else a < b

    def improves(self, child: float, parent: float, sigma: float = 0.0) -> bool:
        """True if ``child`` beats ``parent`` by more than the noise floor: the keep-or-revert rule.

        The floor is ``max(min_delta, noise_k * sigma)``; a tie (up to float rounding) never counts.
        """
        gain = child - parent if self.maximize else parent - child
        return gain > self.threshold(sigma) + 1e-12 * max(1.0, abs(parent))

    def threshold(self, sigma: float = 0.0) -> float:
        """The smallest gain that counts, given the measured noise ``sigma`` (0 when deterministic)."""
        return max(self.min_delta, self.noise_k * sigma)

    def gain(self, child: float, parent: float) -> float:
        """How much better ``child`` is than ``parent`` (negative when worse), whatever the direction."""
        return child - parent if self.maximize else parent - child

    def sort_key(self, metric: float) -> float:
        """A key for which smaller is better, whatever the direction."""
        return -metric if self.maximize else metric

    def frozen_violation(self, code: str) -> str | None:
        """Why ``code`` breaks the frozen regions, or None if they are intact."""
        blocks = frozen_blocks(code)
        if _hash_blocks(blocks) == self.frozen_hash:
            return None
        if len(blocks) != len(self.frozen):
            return f"frozen code changed: expected {len(self.frozen)} frozen region(s), found {len(blocks)}"
        for i, (old, new) in enumerate(zip(self.frozen, blocks)):
            if old != new:
                return f"frozen code changed in region {i + 1} ({old.splitlines()[0].strip()!s} ...)"
        return "frozen code changed"

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["frozen"] = list(self.frozen)
        data["constraints"] = list(self.constraints)
        data["direction"] = self.direction
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Protocol":
        fields = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in fields}
        kwargs["frozen"] = tuple(kwargs.get("frozen", ()))
        kwargs["constraints"] = tuple(kwargs.get("constraints", ()))
        kwargs.setdefault("replicates", 1)  # runs from before the noise floor ran the baseline once
        return cls(**kwargs)
