"""How far a run's result can be trusted, as data: noise floor, significance, new bests, ablation.

Kept apart from export.py so the report's trust section has one source: the text report, the
JSON envelope, the progress line and the widget read these facts rather than recomputing them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..core import noise
from ..core.node import Node, Operator
from ..core.protocol import Protocol
from ..core.tree import Tree


@dataclasses.dataclass(frozen=True)
class AblationRow:
    """One change on the path to the best: what leaving it out cost (positive = it helped)."""

    node_id: int
    plan: str
    effect: float | None
    effect_sd: float | None
    verdict: str  # kept | dropped: within the noise floor | not separable ... | without it the script fails


@dataclasses.dataclass(frozen=True)
class Trust:
    """``noisy``: the baseline's runs differed; ``sigma`` their sd over ``baseline_runs`` runs.
    ``significant`` (noisy runs only) says whether the best's gain over the baseline is beyond
    noise_k standard errors. ``exported_id`` is the node in best.py (the ablation's minimal script
    when changes were dropped)."""

    noisy: bool
    sigma: float
    baseline_runs: int
    noise_k: float
    threshold: float
    baseline_sd: float | None
    best_sd: float | None
    best_runs: int
    significant: bool | None
    improved_on_parent: int
    new_bests: int | None  # None for runs recorded before the label existed (or imported)
    ablation_runs: int
    ablation: tuple[AblationRow, ...]
    exported_id: int | None
    dropped: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def trust_facts(tree: Tree, protocol: Protocol) -> Trust:
    best = tree.best(protocol)
    root = tree.root
    sigma = noise.sigma(tree)
    searched = [n for n in tree if n.operator not in (Operator.BASELINE, Operator.ABLATE)]
    exported = noise.minimal_best(tree, protocol)
    rows = noise.ablation_rows(tree, protocol, best) if best is not None and best.parent is not None else []
    if best is not None and best.parent is not None and not rows and len(tree.path(best.id)) == 2 and root:
        # one change: leaving it out is the baseline, already measured
        effect = protocol.gain(best.metric, root.metric) if best.metric is not None and root.metric is not None else None
        rows = [{"node": best.id, "plan": best.plan, "effect": effect, "effect_sd": None, "verdict": "kept"}]
    info = exported.meta.get("ablation", {}) if exported is not None and exported.operator is Operator.ABLATE else {}
    return Trust(
        noisy=sigma > 0,
        sigma=sigma,
        baseline_runs=max(1, len(root.samples)) if root is not None else 0,
        noise_k=protocol.noise_k,
        threshold=protocol.threshold(noise.sigma_bound(tree)),  # what the keep rule used
        baseline_sd=noise.node_sd(root, tree) if root is not None and sigma else None,
        best_sd=noise.node_sd(best, tree) if best is not None and sigma else None,
        best_runs=max(1, len(best.samples)) if best is not None else 0,
        significant=noise.significant(best, tree, protocol) if best is not None and best.parent is not None else None,
        improved_on_parent=sum(1 for n in searched if n.is_good and n.kept),
        new_bests=sum(1 for n in searched if n.new_best) if any(n.new_best is not None for n in searched) else None,
        ablation_runs=sum(1 for n in tree if n.operator is Operator.ABLATE),
        ablation=tuple(
            AblationRow(r["node"], r["plan"], r["effect"], r["effect_sd"], r["verdict"]) for r in rows
        ),
        exported_id=exported.id if exported is not None else None,
        dropped=tuple(info.get("dropped", ())),
    )


def _pm(value: float | None, sd: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:+.4g}" + (f" ± {sd:.2g}" if sd else "")


def render_trust_lines(t: Trust, metric: str) -> list[str]:
    """The report's lines on noise, labels and ablation."""
    lines = [f"improved on parent: {t.improved_on_parent}"
             + (f"; new best: {t.new_bests} times" if t.new_bests is not None else "")]
    if t.noisy:
        lines.append(
            f"noise floor: the baseline differs between runs (sd {t.sigma:.3g} over {t.baseline_runs} runs); "
            f"a change counts only beyond {t.threshold:.3g} ({t.noise_k:g} x an upper bound on the sd), a new best is confirmed by "
            f"{t.baseline_runs} runs"
        )
        if t.significant is not None:
            verdict = "significant" if t.significant else "NOT significant (within noise)"
            lines.append(f"gain of the best over the baseline: {verdict}")
    elif t.baseline_runs > 1:
        lines.append(f"noise floor: none (the baseline gave the same {metric} in {t.baseline_runs} runs)")
    if t.ablation:
        lines += ["", f"## Which changes mattered (ablation, {t.ablation_runs} runs)",
                  f"change -> effect on {metric} when left out (± sd)"]
        for row in t.ablation:
            lines.append(f"- node {row.node_id}: {row.plan or '-'} -> {_pm(row.effect, row.effect_sd)} ({row.verdict})")
        if t.dropped:
            lines.append(
                f"best.py is node {t.exported_id}: the best without the changes of node(s) "
                f"{', '.join(map(str, t.dropped))}, which did not matter"
            )
    return lines


def label(node: Node, *, short: bool = False) -> str:
    """'new best', 'improved on parent' or 'reverted' for a finished good node (faces share it)."""
    if node.operator is Operator.ABLATE:
        return "ablation"
    if node.new_best:
        return "new best"
    if node.kept:
        return "improved" if short else "improved on parent"
    return "reverted"
