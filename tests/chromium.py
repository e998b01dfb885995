"""Debian's chromium through Playwright, shared by the browser suites (tests/browser, tests/lab).

Chromium comes from the system (``apt-get install -y --no-install-recommends chromium``);
``playwright install`` is never used. Each suite's conftest imports what it needs from here.

Without chromium (or Playwright, or JupyterLab) the suites skip, unless
``AUTORESEARCH_REQUIRE_BROWSER=1`` (set by .ci/run): then they fail, so CI never passes without
its real parts.
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
TOUR = ROOT / "docs" / "tour"  # the README's screenshots: the browser tests write them, so they stay true


def tour_shot(locator, name: str) -> None:
    """Save an element's screenshot as docs/tour/<name>.png (linked from the README)."""
    TOUR.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(TOUR / f"{name}.png"))
CHROMIUM = os.environ.get("AUTORESEARCH_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
REQUIRE_ENV = "AUTORESEARCH_REQUIRE_BROWSER"


def browser_required() -> bool:
    return os.environ.get(REQUIRE_ENV, "").strip() not in ("", "0")


def missing(reason: str) -> None:
    """Skip for ``reason``, or fail where the browser suites are required (CI)."""
    if browser_required():
        pytest.fail(f"{reason}, and {REQUIRE_ENV}=1 requires it", pytrace=False)
    pytest.skip(reason)


def need(module: str, minversion: str | None = None):  # noqa: ANN201 - the module
    """``pytest.importorskip``, but a failure where the browser suites are required."""
    try:
        return pytest.importorskip(module, minversion=minversion)
    except pytest.skip.Exception as err:
        missing(str(err))


CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    playwright = need("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        missing(f"chromium is not installed at {CHROMIUM} (apt-get install -y --no-install-recommends chromium)")
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
