"""JupyterLab extension fixtures: Debian's chromium through Playwright, and a real Jupyter server.

Run these on their own: ``python -m pytest tests/lab`` (the default run skips this folder). They
test the extension as installed (``pip install -e .`` builds it); chromium comes from the system
(``apt-get install -y --no-install-recommends chromium``); ``playwright install`` is never used.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chromium import ARTIFACTS, CHROMIUM, ROOT, need, screenshot_if_failed, stop_server  # noqa: F401,E402
# Test settings for the extension: a short search for "AutoResearch this cell".
SETTINGS = {"metric": "val_acc", "direction": "maximize", "steps": 2, "extraArgs": "--warm off", "refreshInterval": 1}


@dataclass
class Server:
    """A Jupyter server started for the tests."""

    url: str
    root: Path
    log: Path

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
        except OSError:  # not listening (yet)
            return 0, b""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(app: str, base: Path, user: dict | None = None, extra: dict[str, str] | None = None) -> Iterator[Server]:
    """Start ``python -m APP`` (jupyterlab or notebook) serving ``base/root``, with the extension's
    ``user`` settings (default: SETTINGS) and more environment variables in ``extra``."""
    root, config = base / "root", base / "config"
    root.mkdir()
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    settings = base / "settings" / "autoresearch-jupyter"
    settings.mkdir(parents=True)
    (settings / "plugin.jupyterlab-settings").write_text(json.dumps(SETTINGS if user is None else user))
    env = {**os.environ, **(extra or {}), "JUPYTER_CONFIG_DIR": str(config), "JUPYTER_RUNTIME_DIR": str(base / "rt"),
           "JUPYTERLAB_WORKSPACES_DIR": str(base / "ws"), "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
           "OMP_NUM_THREADS": "1"}
    port = _free_port()
    log = base / f"{app}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", app, "--no-browser", f"--port={port}", "--ip=127.0.0.1",
             f"--ServerApp.root_dir={root}", "--ServerApp.token=", "--ServerApp.password=",
             "--ServerApp.allow_root=True", "--ServerApp.disable_check_xsrf=True",
             "--LabApp.news_url=", "--LabApp.expose_app_in_browser=True", "--JupyterNotebookApp.expose_app_in_browser=True",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    server = Server(f"http://127.0.0.1:{port}", root, log)
    try:
        deadline = time.monotonic() + 60
        while server.get("/api/status")[0] != 200:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{app} did not start:\n" + log.read_text()[-3000:])
            time.sleep(0.3)
        yield server
    finally:
        stop_server(proc)


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Server]:
    """A JupyterLab server on 127.0.0.1 (one per test module), with the test settings."""
    need("jupyterlab")
    yield from _start("jupyterlab", tmp_path_factory.mktemp("lab"))


@pytest.fixture(scope="module")
def lab_defaults(tmp_path_factory) -> Iterator[Server]:
    """A JupyterLab whose user settings leave steps and runsDir unset, with AUTORESEARCH_RUNS_DIR
    set for the server (and so for its kernels): the extension must take both from the server."""
    need("jupyterlab")
    user = {k: v for k, v in SETTINGS.items() if k != "steps"}
    yield from _start("jupyterlab", tmp_path_factory.mktemp("labdefaults"), user=user,
                      extra={"AUTORESEARCH_RUNS_DIR": "exp-runs"})


@pytest.fixture(scope="module")
def notebook7(tmp_path_factory) -> Iterator[Server]:
    """A Jupyter Notebook 7 server."""
    need("notebook", minversion="7")
    yield from _start("notebook", tmp_path_factory.mktemp("nb7"))


@pytest.fixture
def page(browser, request) -> Iterator[object]:
    """A fresh page; errors from the extension fail the test, and a failing test leaves a screenshot."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda err: "autoresearch" in f"{err} {err.stack}" and errors.append(f"{err}\n{err.stack}"))
    pg.on("console", lambda msg: msg.type == "error" and "autoresearch" in msg.text and errors.append(msg.text))
    yield pg
    screenshot_if_failed(pg, request)
    context.close()
    assert not errors, f"errors in the page: {errors}"
