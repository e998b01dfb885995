"""The search tree: nodes by id, their children, the best node and the path to it.

A ``Tree`` is grown by the search loop (and by the journal's replay). ``Tree.snapshot()`` gives a
``TreeSnapshot``: the same tree frozen at that moment, made of ``NodeSnapshot`` s, which nothing
can change; that is what subscribers and the notebook's ``run.tree`` get.
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from typing import Any, Iterator, NoReturn

from .node import Node, NodeSnapshot, Operator, Status, finite, tidy
from .protocol import Protocol


def best_of(nodes: Iterable[Node], protocol: Protocol) -> Node | None:
    """The best kept node (the baseline counts as kept); ties go to the first one in ``nodes``."""
    best: Node | None = None
    for node in nodes:
        if not node.is_kept:
            continue
        assert node.metric is not None
        if best is None or protocol.better(node.metric, best.metric):  # type: ignore[arg-type]
            best = node
    return best


def improvement(protocol: Protocol, baseline: Node | None, node: Node | None) -> tuple[float | None, float | None]:
    """(gain, gain relative to ``|baseline|``) of ``node`` over ``baseline`` in the protocol's
    direction (positive = better), rounded for people; None where either has no usable metric
    (the relative gain also when the baseline's metric is 0)."""
    if baseline is None or node is None or not baseline.is_good or not node.is_good:
        return None, None
    base, value = finite(baseline.metric), finite(node.metric)
    if base is None or value is None:
        return None, None
    gain = value - base if protocol.maximize else base - value
    return tidy(gain), (tidy(gain / abs(base)) if base != 0 else None)


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
        return best_of(self.nodes.values(), protocol)

    def counts(self) -> dict[str, int]:
        out = {s.value: 0 for s in Status}
        for node in self.nodes.values():
            out[node.status.value] += 1
        return out

    def snapshot(self) -> "TreeSnapshot":
        """The tree as it is now, frozen: later changes to this tree or its nodes do not reach it."""
        return TreeSnapshot(node.snapshot() for node in list(self.nodes.values()))


class TreeSnapshot(Tree):
    """A tree that cannot change: ``NodeSnapshot`` s, read-only ``nodes`` and ``children``.

    Build it from snapshots in creation order (parents first); ``add`` raises.
    """

    def __init__(self, nodes: Iterable[NodeSnapshot] = ()) -> None:
        by_id: dict[int, NodeSnapshot] = {}
        children: dict[int, list[int]] = {}
        for node in nodes:
            by_id[node.id] = node
            children.setdefault(node.id, [])
            if node.parent is not None:
                children.setdefault(node.parent, []).append(node.id)
        self.__dict__["nodes"] = types.MappingProxyType(by_id)
        self.__dict__["children"] = types.MappingProxyType({k: tuple(v) for k, v in children.items()})

    def __setattr__(self, name: str, value: Any) -> NoReturn:
        raise AttributeError(f"cannot set {name!r}: a tree snapshot does not change")

    def add(self, node: Node) -> NoReturn:
        raise TypeError("a tree snapshot does not change: add nodes to the search's own tree")

    def snapshot(self) -> "TreeSnapshot":
        return self

    def with_node(self, node: NodeSnapshot) -> "TreeSnapshot":
        """This snapshot with ``node`` added or replaced; this one stays as it is.

        Costs two dictionary copies (no per-node work), so the loop can afford one per event.
        """
        nodes = self.nodes.copy()  # the proxy's copy is the dict's own (C) copy
        children: Mapping[int, tuple[int, ...]] = self.children  # type: ignore[assignment]
        if node.id not in nodes:
            if node.parent is not None and node.parent not in nodes:
                raise ValueError(f"node {node.id} has unknown parent {node.parent}")
            grown = children.copy()  # type: ignore[attr-defined]
            grown[node.id] = ()
            if node.parent is not None:
                grown[node.parent] = (*grown[node.parent], node.id)
            children = types.MappingProxyType(grown)
        nodes[node.id] = node
        snap = TreeSnapshot.__new__(TreeSnapshot)
        snap.__dict__.update(nodes=types.MappingProxyType(nodes), children=children)
        return snap
