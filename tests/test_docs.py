"""Drift tests: every command the faces offer is documented in the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from autoresearch_jupyter.cli import COMMANDS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", [c.replace("_", "-") for c in COMMANDS])
def test_every_cli_command_is_in_the_readme(name):
    assert re.search(rf"autoresearch {re.escape(name)}\b", README), f"`autoresearch {name}` is not in the README"


def test_every_line_magic_command_is_in_the_readme():
    pytest.importorskip("IPython")
    from autoresearch_jupyter.notebook.commands import COMMANDS as MAGIC_COMMANDS

    line = next(line for line in README.splitlines() if line.startswith("%autoresearch list"))
    missing = [name for name in MAGIC_COMMANDS if not re.search(rf"\b{re.escape(name)}\b", line)]
    assert not missing, f"%autoresearch commands missing from the README: {missing}"
