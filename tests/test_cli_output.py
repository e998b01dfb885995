"""What the terminal shows: rows that fit COLUMNS, aligned columns, short plans, markers, the
"next:" block, default run names and ``ls --all`` (a real CLI process on a real search)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch_jupyter.report.progress import fit, short_plan

SCRIPT = """x = 1.0  # search: float(0, 10)
print(f"score: {-(x - 3) ** 2:.4f}")
"""


def cli(*args: str, cwd: Path, columns: int = 100) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "autoresearch_jupyter", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300, env=env)


def test_fit_cuts_with_an_ellipsis_and_short_plan_drops_details() -> None:
    assert fit("abcdef", 4) == "abc…" and fit("abc", 4) == "abc"
    assert fit("a\n  b", 10) == "a b"
    assert short_plan("C: 0.1 -> 1 (x10, large move early, declared log(1e-05, 100))\nmore") == "C: 0.1 -> 1"


@pytest.mark.slow
@pytest.mark.parametrize("columns", [80, 200])
def test_rows_fit_the_terminal_and_align(tmp_path: Path, columns: int) -> None:
    (tmp_path / "score.py").write_text(SCRIPT)
    proc = cli("run", "score.py", "--metric", "score", "--maximize", "--steps", "4", cwd=tmp_path, columns=columns)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("node "))
    rows = lines[start:start + 6]
    assert all(len(line) <= columns for line in lines[:start + 6]), rows
    # the metric column ends at the same place on every row
    header = rows[0]
    end = header.index("score") + len("score")
    for row in rows[1:]:
        assert row[end - 1] != " ", (header, row)
    assert rows[1].lstrip().startswith("base") and "baseline" in rows[1]
    assert "★" in proc.stdout  # x moves towards 3: a new best
    assert "declared" not in "\n".join(rows)  # plans are short; details are in show
    assert proc.stdout.splitlines()[0].startswith("run score-1 (")
    assert "next:" in proc.stdout and "autoresearch export score-1 -o best.py" in proc.stdout


@pytest.mark.slow
def test_ls_all_finds_runs_below_and_names_are_readable(tmp_path: Path) -> None:
    (tmp_path / "score.py").write_text(SCRIPT)
    sub = tmp_path / "nb"
    sub.mkdir()
    for cwd in (tmp_path, tmp_path, sub):
        proc = cli("run", str(tmp_path / "score.py"), "--metric", "score", "--maximize", "--steps", "0", cwd=cwd)
        assert proc.returncode == 0, proc.stderr
    plain = cli("ls", cwd=tmp_path).stdout
    assert "score-1" in plain and "score-2" in plain and "nb" not in plain.split("\n", 1)[1]
    every = cli("ls", "--all", cwd=tmp_path).stdout
    assert every.count("score-1") == 2 and "FOLDER" in every and every.rstrip().endswith("nb")


def test_progress_survives_a_closed_pipe() -> None:
    from autoresearch_jupyter.core.protocol import Protocol
    from autoresearch_jupyter.report.progress import ProgressPrinter

    class Closed:
        def isatty(self) -> bool:
            return False

        def write(self, text: str) -> None:
            raise BrokenPipeError

        def flush(self) -> None:  # pragma: no cover - write raises first
            pass

    printer = ProgressPrinter(protocol=Protocol.for_script("print('m: 1')", metric="m", maximize=True),
                              steps=1, stream=Closed())  # type: ignore[arg-type]
    printer.on_run_started(run_id="r", run_dir="d", resumed=False)
    printer.on_run_finished(state="finished", reason=None)  # no exception: the run goes on
    assert printer._closed


@pytest.mark.slow
def test_tree_svg_without_dot_falls_back_without_failing(tmp_path: Path) -> None:
    (tmp_path / "score.py").write_text(SCRIPT)
    assert cli("run", "score.py", "--metric", "score", "--maximize", "--steps", "1", cwd=tmp_path).returncode == 0
    bare = tmp_path / "bin"
    bare.mkdir()  # a PATH with python but without Graphviz's dot
    (bare / "python").symlink_to(sys.executable)
    env = {**os.environ, "PATH": str(bare), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "autoresearch_jupyter", "tree", "latest", "--svg", "t.svg"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "dot" in proc.stderr and "warning" in proc.stderr and "baseline" in proc.stdout
    assert (tmp_path / "t.dot").read_text().startswith("digraph")
