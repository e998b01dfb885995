"""What a search hands back: how it ended, with the final tree as a snapshot."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..core.node import Node
from ..core.protocol import Protocol
from ..core.tree import TreeSnapshot


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


def read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
