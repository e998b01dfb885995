"""How a search ended (``Search.run`` returns it): a frozen record over the final tree snapshot."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..core.node import Node
from ..core.protocol import Protocol
from ..core.tree import TreeSnapshot

__all__ = ["Outcome"]


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How a search ended; ``tree`` is the final tree, a snapshot (it cannot change)."""

    run_id: str
    run_dir: Path
    state: str  # finished | stopped | failed
    reason: str | None
    protocol: Protocol
    tree: TreeSnapshot

    @property
    def best(self) -> Node | None:
        return self.tree.best(self.protocol)

    @property
    def baseline(self) -> Node | None:
        return self.tree.root
