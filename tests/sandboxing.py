"""Shared by the sandbox and attack tests: run the real CLI, and require bubblewrap where CI says so.

Sandbox tests skip where bubblewrap cannot run, except when ``AUTORESEARCH_REQUIRE_SANDBOX=1``
(CI sets it after installing bubblewrap): then they fail, so a broken install is never a green run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch_jupyter.executors._sandbox import probe


def require_sandbox() -> None:
    problem = probe()
    if problem is None:
        return
    if os.environ.get("AUTORESEARCH_REQUIRE_SANDBOX") == "1":
        pytest.fail(f"AUTORESEARCH_REQUIRE_SANDBOX=1 but {problem}")
    pytest.skip(f"needs bubblewrap: {problem}")


@pytest.fixture
def sandbox() -> None:
    """Use in tests that need the sandbox."""
    require_sandbox()


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "autoresearch_jupyter", *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full,
    )


def run_script(tmp_path: Path, code: str, *args: str, env: dict[str, str] | None = None,
               metric: str = "m", steps: str = "0") -> subprocess.CompletedProcess[str]:
    """``autoresearch run`` on ``code`` saved as project/train.py; runs live in tmp_path/runs."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "train.py").write_text(code)
    return cli("run", "project/train.py", "--metric", metric, "--maximize", "--steps", steps,
               "--runs-dir", str(tmp_path / "runs"), "--timeout", "60", *args, cwd=tmp_path, env=env)


def only_run(tmp_path: Path) -> Path:
    runs = [p for p in (tmp_path / "runs").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(runs) == 1, runs
    return runs[0]


def one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr and "autoresearch_jupyter/" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("autoresearch: error")]
    assert lines, proc.stderr
    for word in words:
        assert word in lines[0], proc.stderr
    return lines[0]
