"""The lineage notebook of a run: how the search got from the baseline to the best node.

One notebook a person can read top to bottom and re-run: a summary, the frozen setup once, the
baseline, then for every kept step on the path to the best node a markdown cell (what was tried,
the metric and its change, the diff) and a code cell (the training cell as that node ran it).
The best node is the last code cell. Written with nbformat, so it opens anywhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..report import export
from .code import split_script
from .usevars import USE_FILE, pin_use_file

if TYPE_CHECKING:
    from ..core.node import Node
    from .run import NotebookRun

_DIFF_LINES = 80  # longer diffs are cut in the markdown; the code cell below has everything


def _metric_line(run: NotebookRun, node: Node) -> str:
    metric = run.protocol.metric
    if not node.is_good:
        return f"**{metric}:** - ({node.status.value}{': ' + export.one_line(node.reason, 120) if node.reason else ''})"
    delta = export.delta_to_parent(run.tree, node)
    change = f" ({export.fmt_delta(delta)} vs node {node.parent})" if delta is not None else ""
    return f"**{metric}:** {export.fmt_metric(node.metric)}{change}"


def _diff_block(node: Node) -> str:
    if not node.diff:
        return ""
    lines = node.diff.rstrip("\n").splitlines()
    more = f"\n... {len(lines) - _DIFF_LINES} more lines" if len(lines) > _DIFF_LINES else ""
    body = "\n".join(lines[:_DIFF_LINES]).replace("```", "` ` `")
    return f"\n\n<details><summary>diff from node {node.parent}</summary>\n\n```diff\n{body}{more}\n```\n\n</details>"


def lineage_cells(run: NotebookRun) -> list[tuple[str, str]]:
    """(kind, source) pairs, kind "markdown" or "code": the notebook's content, without nbformat."""
    tree, protocol = run.tree, run.protocol
    report = run.report().data
    best = tree.best(protocol)
    path = tree.path(best.id) if best is not None else ([tree.root] if tree.root is not None else [])
    title = run.name or run.id
    summary = [
        f"# Lineage of autoresearch run {title}",
        "",
        (f"Protocol: {protocol.direction} `{protocol.metric}`, {protocol.time_budget:g} s per node, "
         f"seed {protocol.seed}. Run state: {run.state}; {report.experiments} experiments "
         f"({report.kept} kept, {report.reverted} reverted)."),
        "",
        (f"Baseline {protocol.metric}: {export.fmt_metric(report.baseline_metric)}; best: "
         f"{export.fmt_metric(report.best_metric)}"
         + (f" (node {report.best_id})" if report.best_id is not None else "")
         + (f"; improvement {export.fmt_delta(report.improvement)}" if report.improvement is not None else "")
         + "."),
        "",
        ("Below: the baseline, then each kept change on the path to the best node, one step per "
         "cell pair. The last code cell is the best node."),
    ]
    cells: list[tuple[str, str]] = [("markdown", "\n".join(summary))]
    if not path:
        return cells
    setup, _ = split_script(path[0].code)
    if setup.strip():
        use_file = run.path / USE_FILE
        setup = pin_use_file(setup, use_file) if use_file.exists() else setup
        intro = "## Setup (frozen)\nThe data and evaluation code every node shared; no proposal could change it."
        cells += [("markdown", intro), ("code", setup.rstrip("\n"))]
    for step, node in enumerate(path):
        if step == 0:
            head = f"## Baseline (node {node.id})"
        else:
            plan = export.one_line(node.plan, 300) or "-"
            head = f"## Step {step}: node {node.id} ({node.operator.value})\n**Plan:** {plan}"
        if best is not None and node.id == best.id:
            head += "\n\n**This is the best node.**"
        cells.append(("markdown", f"{head}\n\n{_metric_line(run, node)}{_diff_block(node) if step else ''}"))
        cells.append(("code", split_script(node.code)[1].rstrip("\n")))
    return cells


def lineage_notebook(run: NotebookRun) -> Any:
    """The lineage as an nbformat v4 notebook node."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["autoresearch"] = {"run_id": run.id, "metric": run.protocol.metric,
                                   "direction": run.protocol.direction}
    for kind, source in lineage_cells(run):
        nb.cells.append(nbformat.v4.new_markdown_cell(source) if kind == "markdown"
                        else nbformat.v4.new_code_cell(source))
    return nb


def write_lineage_notebook(run: NotebookRun, path: str | Path) -> Path:
    """Write the lineage notebook to ``path`` (validated); returns the path."""
    import nbformat

    from ..store.runs import atomic_write

    path = Path(path)
    nb = lineage_notebook(run)
    nbformat.validate(nb)
    atomic_write(path, nbformat.writes(nb))
    return path
