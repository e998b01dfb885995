"""The build function that hatch-jupyter-builder calls: builds the JupyterLab extension when needed.

pyproject.toml names it (``[tool.hatch.build.hooks.jupyter-builder]``); it runs for wheels,
editable installs and sdists. The TypeScript in labextension/ is built into
autoresearch_jupyter/labextension/, which the wheel installs as
share/jupyter/labextensions/autoresearch-jupyter/ (its shared-data).

- Built assets made from the current sources (a hash of the sources is kept in
  labextension/.build-stamp) are used as they are: no Node.js needed.
- Otherwise, with Node.js and npm: ``npm ci`` when node_modules is missing or older than
  package-lock.json, then ``tsc`` and ``jupyter-builder build`` (``npm run build`` does the same).
- When it cannot build (no Node.js, or the build fails), earlier assets are used with a warning;
  with no assets at all it warns and installs without the extension (the magics, widget and CLI
  do not need it), unless ``AUTORESEARCH_REQUIRE_LABEXTENSION=1`` makes that an error.
- ``AUTORESEARCH_SKIP_LABEXTENSION=1`` skips all of it; with no assets the package then installs
  without the JupyterLab extension (a Python-only setup).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

SKIP_ENV = "AUTORESEARCH_SKIP_LABEXTENSION"
REQUIRE_ENV = "AUTORESEARCH_REQUIRE_LABEXTENSION"  # CI: a missing extension is an error there
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "autoresearch_jupyter" / "labextension"
STAMP = HERE / ".build-stamp"
SHARED = ROOT / "autoresearch_jupyter" / "report" / "static"
SOURCES = ["package.json", "package-lock.json", "tsconfig.json", "webpack.config.js", "install.json", "src", "style", "schema"]
SHARED_SOURCES = ["treeview.js", "treeview.css"]
MIN_NODE = (20, 19)
NODE_NEEDED = "20.19+ or 22.12+"  # what the bundler (rspack) needs

log = logging.getLogger("autoresearch.labextension")


class LabExtensionBuildError(RuntimeError):
    """The JupyterLab extension cannot be built and no built copy exists."""


def build_labextension(target_name: str, version: str, **kwargs: object) -> None:
    """hatch-jupyter-builder's entry point: make sure OUT holds a build of the current sources."""
    logging.basicConfig(level=logging.INFO)
    if os.environ.get(SKIP_ENV, "").strip() not in ("", "0"):
        log.info("%s is set: not building the JupyterLab extension", SKIP_ENV)
        if not _built():
            warnings.warn(f"{SKIP_ENV} is set and no built extension exists: installing without the "
                          "JupyterLab extension", stacklevel=2)
            OUT.mkdir(parents=True, exist_ok=True)  # shared-data needs the folder, even empty
        return
    if not (HERE / "package.json").exists():
        _require_built("its sources (labextension/) are missing")
        return
    digest = sources_hash()
    if _built() and _stamp() == digest:
        log.info("the JupyterLab extension is up to date")
        _ensure_install_json()
        return
    problem = _node_problem()
    if problem:
        _require_built(problem, stale=_built())
        return
    try:
        _build()
    except (OSError, subprocess.CalledProcessError, RuntimeError, ValueError) as err:
        _require_built(f"its build failed ({err})", stale=_built())
        return
    _ensure_install_json()
    STAMP.write_text(digest + "\n")


def sources_hash() -> str:
    """A hash of everything the build reads, our sources and the shared static modules."""
    h = hashlib.sha256()
    paths = [HERE / name for name in SOURCES] + [SHARED / name for name in SHARED_SOURCES]
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.is_file():
                h.update(str(file.relative_to(ROOT)).encode() + b"\0" + file.read_bytes() + b"\0")
    return h.hexdigest()


def _built() -> bool:
    """Whether OUT holds a complete build: its package.json and the entry point it names."""
    try:
        data = json.loads((OUT / "package.json").read_text())
        return (OUT / data["jupyterlab"]["_build"]["load"]).is_file()
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _stamp() -> str:
    try:
        return STAMP.read_text().strip()
    except OSError:
        return ""


def _node_problem() -> str | None:
    """Why Node.js cannot build here, or None when it can."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        return "Node.js and npm are not installed"
    try:
        raw = subprocess.run([node, "--version"], capture_output=True, text=True, check=True).stdout.strip()
        version = tuple(int(part) for part in raw.lstrip("v").split(".")[:2])
    except (OSError, ValueError, subprocess.CalledProcessError):
        return "`node --version` does not work"
    if version < MIN_NODE or (version[0] == 21) or ((22,) <= version < (22, 12)):
        return f"Node.js {raw} cannot build it (the bundler needs {NODE_NEEDED})"
    return None


def _build() -> None:
    npm = shutil.which("npm") or "npm"
    modules = HERE / "node_modules" / ".package-lock.json"
    lock = HERE / "package-lock.json"
    if not modules.exists() or modules.stat().st_mtime < lock.stat().st_mtime:
        _run([npm, "ci", "--no-audit", "--no-fund"])
    _run([npm, "run", "build:lib"])
    try:
        from jupyter_builder.federated_extensions import build_labextension as jupyter_build
    except ImportError:  # not in the build environment: the npm script finds jupyter-builder on PATH
        _run([npm, "run", "build"])
        return
    log.info("> jupyter-builder build %s", HERE)
    jupyter_build(str(HERE), logger=log)


def _run(cmd: list[str]) -> None:
    log.info("> %s", " ".join(cmd))
    env = dict(os.environ)
    scripts = os.path.dirname(sys.executable)  # the build environment's jupyter-builder
    env["PATH"] = scripts + os.pathsep + env.get("PATH", "")
    subprocess.run(cmd, cwd=HERE, env=env, check=True)


def _ensure_install_json() -> None:
    """install.json tells `jupyter labextension list` which Python package installed it."""
    shutil.copyfile(HERE / "install.json", OUT / "install.json")


def _require_built(problem: str, *, stale: bool = False) -> None:
    if _built():
        _ensure_install_json()
        what = "an older build" if stale else "the built copy"
        warnings.warn(f"cannot build the JupyterLab extension: {problem}; using {what} in {OUT}", stacklevel=2)
        return
    message = (
        f"cannot build the JupyterLab extension: {problem}, and no built copy exists in {OUT}. "
        f"Install Node.js {NODE_NEEDED} with npm (then `npm ci` in labextension/ is done for you) and "
        "reinstall to get it"
    )
    if os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0"):
        raise LabExtensionBuildError(message + f" ({REQUIRE_ENV} is set).")
    # The magics, the widget and the CLI work without it: a Python-only install, loudly.
    warnings.warn(message + "; installing without it.", stacklevel=2)
    log.warning("%s; installing without it", message)
    OUT.mkdir(parents=True, exist_ok=True)  # shared-data needs the folder, even empty
