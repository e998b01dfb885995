"""The search tree: nodes by id, their children, the best node and the path to it."""

from __future__ import annotations

from typing import Iterator

from .node import Node, Operator, Status
from .protocol import Protocol


class Tree:
    """An in-memory tree of nodes; the journal rebuilds it and the search loop grows it."""

    def __init__(self) -> None:
        self.nodes: dict[int, Node] = {}
        self.children: dict[int, list[int]] = {}

    def add(self, node: Node) -> None:
        if node.id in self.nodes:
            raise ValueError(f"node {node.id} already in the tree")
        if node.parent is not None and node.parent not in self.nodes:
            raise ValueError(f"node {node.id} has unknown parent {node.parent}")
        self.nodes[node.id] = node
        self.children.setdefault(node.id, [])
        if node.parent is not None:
            self.children[node.parent].append(node.id)

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __getitem__(self, node_id: int) -> Node:
        return self.nodes[node_id]

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.nodes

    @property
    def root(self) -> Node | None:
        return self.nodes.get(0)

    def next_id(self) -> int:
        return max(self.nodes, default=-1) + 1

    def kids(self, node_id: int) -> list[Node]:
        return [self.nodes[c] for c in self.children.get(node_id, [])]

    def path(self, node_id: int) -> list[Node]:
        """The nodes from the root to ``node_id``, both included."""
        out: list[Node] = []
        cur: int | None = node_id
        while cur is not None:
            node = self.nodes[cur]
            out.append(node)
            cur = node.parent
        return out[::-1]

    def depth(self, node_id: int) -> int:
        return len(self.path(node_id)) - 1

    def debug_depth(self, node_id: int) -> int:
        """How many debug steps in a row led to this node (AIDE's depth limit for debugging)."""
        depth = 0
        node = self.nodes[node_id]
        while node.operator is Operator.DEBUG and node.parent is not None:
            depth += 1
            node = self.nodes[node.parent]
        return depth

    def best(self, protocol: Protocol) -> Node | None:
        """The best kept node (the baseline counts as kept); ties go to the earlier node."""
        best: Node | None = None
        for node in self.nodes.values():
            if not node.is_good or not (node.kept or node.operator is Operator.BASELINE):
                continue
            assert node.metric is not None
            if best is None or protocol.better(node.metric, best.metric):  # type: ignore[arg-type]
                best = node
        return best

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for node in self.nodes.values():
            out[node.status.value] += 1
        return out
