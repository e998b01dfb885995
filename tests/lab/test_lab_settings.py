"""The lab extension takes its run defaults from the server (RunSettings), not from a copy.

A JupyterLab whose user settings leave the step budget and the runs directory unset, started with
``AUTORESEARCH_RUNS_DIR``: the endpoint serves RunSettings' defaults, the sidebar follows the
server's runs directory, and "AutoResearch this cell" writes the server's step budget.
"""

from __future__ import annotations

import json

from chromium import need
from lab_helpers import CELL, SIDEBAR_TAB, open_notebook, sources, write_notebook

from autoresearch_jupyter.core.settings import RunSettings, options

expect = need("playwright.sync_api").expect


def test_the_endpoint_serves_the_run_settings_defaults(lab_defaults):
    status, body = lab_defaults.get("/autoresearch/api/settings")
    assert status == 200
    data = json.loads(body)
    assert data["runs_dir"] == "exp-runs"
    expected = json.loads(json.dumps(RunSettings().option_values()))
    assert data["defaults"] == expected and data["defaults"]["steps"] == 20
    assert [o["name"] for o in data["options"]] == [o.name for o in options()]
    steps = next(o for o in data["options"] if o["name"] == "steps")
    assert steps["flags"] == ["--steps"] and steps["minimum"] == 0 and steps["type"] == "int"


def test_the_cell_action_and_the_sidebar_use_the_server_defaults(lab_defaults, page):
    write_notebook(lab_defaults.root / "work" / "train.ipynb", CELL)
    open_notebook(page, lab_defaults, "work/train.ipynb")
    page.click(SIDEBAR_TAB)
    expect(page.locator(".jp-AutoResearch-runsFolder")).to_have_text("work/exp-runs")
    page.wait_for_function(
        "() => [...window.jupyterapp.shell.widgets('main')].some(w => w.context && "
        "w.context.path === 'work/train.ipynb' && w.sessionContext.session?.kernel?.status === 'idle')",
        timeout=60_000,
    )
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
    page.locator('.jp-cell-toolbar [data-command="autoresearch:run-cell"]').click()
    assert sources(page, "work/train.ipynb")[0] == "%%autoresearch --metric val_acc --maximize --steps 20 --warm off\n" + CELL
    # the kernel's magics use the same runs directory: the sidebar finds the run there
    expect(page.locator(".jp-AutoResearch-run")).to_have_count(1, timeout=60_000)
