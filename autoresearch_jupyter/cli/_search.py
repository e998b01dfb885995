"""Running a search from the terminal (run and resume share it)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..report import export
from ..report.bestfile import BestScriptWriter
from ..report.lessons import LessonsWriter, saved_line
from ..engine.learn import offer_line
from ..engine.search import Search
from ._common import print_json
from ..report.progress import ProgressPrinter, next_steps


def execute(search: Search, *, runs_dir: Path, as_json: bool) -> int:
    """Run with live progress, then print the report; Ctrl-C stops cleanly and says how to resume."""
    progress = ProgressPrinter(
        protocol=search.protocol, steps=search.settings.steps, stream=sys.stderr if as_json else sys.stdout,
        name=search.name,
    )
    search.subscribe(progress)
    search.subscribe(BestScriptWriter())
    search.subscribe(LessonsWriter())
    search.prepare()
    offer = offer_line(search)  # said at the end: the first line of a failure stays the error
    outcome = search.run()
    if offer and outcome.state != "failed":
        print(offer, file=sys.stderr)
    report = export.build_report(outcome.tree, outcome.protocol, run_id=outcome.run_id, state=outcome.state)
    if as_json:
        print_json(export.report_envelope(report))
    else:
        print()
        print(export.render_report_text(report))
        print(f"\nbest script: {outcome.run_dir / 'best.py'}")
        _print_saved(outcome.run_dir)
        where = str(runs_dir) if str(runs_dir) != ".autoresearch" else None
        has_best = outcome.tree.best(outcome.protocol) is not None
        print("\n" + next_steps(search.name or outcome.run_id, has_best=has_best, runs_dir=where))
    if outcome.state == "failed":
        print(f"autoresearch: error: {outcome.reason}; continue with: autoresearch resume {outcome.run_id}",
              file=sys.stderr)
        return 1
    if outcome.state == "stopped":
        where = f" --runs-dir {runs_dir}" if str(runs_dir) != ".autoresearch" else ""
        print(f"stopped; continue with: autoresearch resume {outcome.run_id}{where}", file=sys.stderr)
        return 130
    return 0


def _print_saved(run_dir: Path) -> None:
    import json

    try:
        line = saved_line(json.loads((run_dir / "lessons.json").read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return
    if line:
        print(line)
