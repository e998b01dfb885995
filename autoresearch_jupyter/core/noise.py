"""The noise floor of a run: how much a metric moves when the same script runs again.

The baseline runs more than once (``Protocol.replicates``); its samples, journaled on the baseline
node, give sigma. Everything that judges a gain (keep rule, confirmation, ablation, the report's
"significant") reads it from here, so the engine and the faces agree.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from typing import Any, Sequence

from .node import Node, Operator
from .protocol import AUTO_REPLICATES, Protocol
from .tree import Tree


def mean(values: Sequence[float]) -> float:
    return math.fsum(values) / len(values)


def sd(values: Sequence[float]) -> float:
    """Sample standard deviation; 0 for fewer than two values."""
    return statistics.stdev(values) if len(values) > 1 else 0.0


def same(a: float, b: float) -> bool:
    """Two runs agree (a deterministic script), up to float printing."""
    return a == b or abs(a - b) <= 1e-12 * max(1.0, abs(a), abs(b))


def runs_wanted(protocol: Protocol, samples: Sequence[float]) -> int:
    """How many runs the baseline needs, given the ones it has: ``auto`` asks for a second and
    more only when the first two differ."""
    if protocol.replicates != "auto":
        return int(protocol.replicates)
    if len(samples) < 2:
        return 2
    return 2 if same(samples[0], samples[1]) else AUTO_REPLICATES


def sigma(tree: Tree) -> float:
    """The run's noise: the sd of the baseline's runs (0 for a deterministic or unreplicated one)."""
    root = tree.root
    if root is None or len(root.samples) < 2:
        return 0.0
    return sd(root.samples)


def sigma_bound(tree: Tree) -> float:
    """The noise floor the keep rule uses: a 65% upper confidence bound on sigma.

    Five baseline runs estimate sigma poorly (its own spread is about a third of it), and an
    underestimate lets noise through as gains; ``sigma * sqrt((n - 1) / chi2_0.35(n - 1))`` errs
    the other way, a little (a larger bound also hides real effects of a few sd). The chi-square
    quantile is Wilson-Hilferty's approximation."""
    root = tree.root
    s = sigma(tree)
    if s == 0 or root is None:
        return 0.0
    dof = len(root.samples) - 1
    if dof <= 2:
        q = {1: 0.2059, 2: 0.8616}[dof]
    else:
        z = -0.3853  # the 35% quantile of the standard normal
        q = dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3
    return s * math.sqrt(dof / q)


def noisy(tree: Tree) -> bool:
    return sigma(tree) > 0


def confirm_runs(tree: Tree) -> int:
    """Runs a would-be new best gets on a noisy run: as many as the baseline had."""
    root = tree.root
    return max(1, len(root.samples)) if root is not None else 1


def node_sd(node: Node, tree: Tree) -> float:
    """The sd of a node's metric: its own runs', or the run's sigma for a single run."""
    return sd(node.samples) if len(node.samples) > 1 else sigma(tree)


def significant(node: Node, tree: Tree, protocol: Protocol) -> bool | None:
    """Is ``node``'s gain over the baseline beyond noise? None on a deterministic run (no question)
    or when either has no metric. The test: gain > noise_k * sigma * sqrt(1/n + 1/n_base)."""
    root = tree.root
    s = sigma(tree)
    if s == 0 or root is None or node.metric is None or root.metric is None:
        return None
    n, n_base = max(1, len(node.samples)), max(1, len(root.samples))
    return protocol.gain(node.metric, root.metric) > protocol.noise_k * s * math.sqrt(1 / n + 1 / n_base)


def fmt_noisy(value: float | None, node: Node, tree: Tree) -> str:
    """'0.91 ± 0.012' on a noisy run, '0.91' otherwise."""
    if value is None:
        return "-"
    text = f"{value:.6g}"
    if noisy(tree):
        text += f" ± {node_sd(node, tree):.2g}"
    return text


def minimal_best(tree: Tree, protocol: Protocol) -> Node | None:
    """What to export as the best: the ablation's minimal script of the best node when there is
    one (changes that do not matter left out), else the best node itself."""
    best = tree.best(protocol)
    if best is None:
        return None
    for node in tree:
        info = node.meta.get("ablation") if node.operator is Operator.ABLATE else None
        if isinstance(info, Mapping) and info.get("minimal") and info.get("of") == best.id and node.is_good:
            return node
    return best


def ablation_rows(tree: Tree, protocol: Protocol, best: Node) -> list[dict[str, Any]]:
    """The table "change -> effect" from the journaled ablate nodes of ``best`` (the report's view).

    A path of one change needs no run: its effect is the best's gain over the baseline.
    """
    path = tree.path(best.id)[1:]
    rows: dict[int, dict[str, Any]] = {}
    for node in tree:
        info = node.meta.get("ablation") if node.operator is Operator.ABLATE else None
        if isinstance(info, Mapping) and info.get("of") == best.id and isinstance(info.get("without"), int):
            change = tree.nodes.get(info["without"])
            rows[info["without"]] = {
                "node": info["without"], "plan": change.plan if change else "", "effect": info.get("effect"),
                "effect_sd": info.get("effect_sd"), "verdict": info.get("verdict", ""), "ablation_node": node.id,
            }
    return [rows[n.id] for n in path if n.id in rows]
