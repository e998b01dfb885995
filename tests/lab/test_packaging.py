"""The extension as pip installs it: listed and enabled, one version, and in a wheel from a clean checkout."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import autoresearch_jupyter

ROOT = Path(__file__).resolve().parents[2]
NAME = "autoresearch-jupyter"
VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.MULTILINE).group(1)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def jupyter(*args: str) -> str:
    """``jupyter ARGS`` from this environment: its output without colours."""
    done = subprocess.run([sys.executable, "-m", "jupyter", *args], check=False, capture_output=True, text=True, timeout=60)
    return ANSI.sub("", done.stdout + done.stderr)


def test_one_version_for_the_python_and_npm_packages():
    package = json.loads((ROOT / "labextension" / "package.json").read_text())
    assert package["name"] == NAME
    assert package["version"] == VERSION == autoresearch_jupyter.__version__


def test_jupyter_lists_the_extensions_as_enabled_and_ok():
    lab = jupyter("labextension", "list")
    assert f"{NAME} v{VERSION} enabled OK (python, {NAME})" in lab, lab
    server = jupyter("server", "extension", "list")
    assert "autoresearch_jupyter.lab.server enabled" in server, server
    assert "autoresearch_jupyter.lab.server  OK" in server, server


@pytest.mark.skipif(not (ROOT / ".git").exists() or shutil.which("git") is None, reason="not a git checkout")
@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_a_wheel_built_from_a_clean_checkout_holds_the_extension_and_the_widget(tmp_path):
    src, dist = tmp_path / "src", tmp_path / "dist"
    subprocess.run(["git", "clone", "--quiet", "--depth=1", ROOT.as_uri(), str(src)], check=True, timeout=120)
    assert not (src / "autoresearch_jupyter" / "labextension").exists()  # built, never committed
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(src)],
                   check=True, timeout=600)
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    data = f"autoresearch_jupyter-{VERSION}.data/data"
    share = f"{data}/share/jupyter/labextensions/{NAME}"
    for name in ("package.json", "install.json", f"schemas/{NAME}/plugin.json", "static/style.js"):
        assert f"{share}/{name}" in names, name
    assert any(n.startswith(f"{share}/static/remoteEntry.") for n in names)
    assert f"{data}/etc/jupyter/jupyter_server_config.d/autoresearch_jupyter.json" in names
    for name in ("report/static/treeview.js", "report/static/treeview.css", "notebook/static/widget.js"):
        assert f"autoresearch_jupyter/{name}" in names, name
    assert "autoresearch_jupyter/lab/server.py" in names and "autoresearch_jupyter/lab/views.py" in names
    assert not any(n.endswith("journal.js") for n in names)  # the server replays journals, in Python
    assert not any("node_modules" in n or n.startswith("autoresearch_jupyter/labextension/") for n in names)
