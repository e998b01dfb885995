"""Debian's chromium through Playwright, shared by the browser suites (tests/browser, tests/lab).

Chromium comes from the system (``apt-get install -y --no-install-recommends chromium``);
``playwright install`` is never used. Each suite's conftest imports what it needs from here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("AUTORESEARCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install -y --no-install-recommends chromium)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the item, so a page fixture can tell a test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def screenshot_if_failed(page: object, request: pytest.FixtureRequest) -> None:
    """What the page showed when the test failed, kept under test-artifacts/."""
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"), full_page=True)  # type: ignore[attr-defined]


def stop_server(proc: subprocess.Popen) -> None:
    """Stop a server a suite started: terminate, then kill if it hangs."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
