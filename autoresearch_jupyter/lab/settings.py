"""``GET /autoresearch/api/settings``: the run options and their defaults, for the lab extension.

The extension's "AutoResearch this cell" and runs sidebar need the defaults the magics use (the
step budget, the runs directory); they come from ``core.settings.RunSettings`` through this
endpoint, so the TypeScript keeps no copy of them. ``runs_dir`` is the magics' default as the
server sees it (``$AUTORESEARCH_RUNS_DIR``, else ``.autoresearch``).
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from tornado import web

from ..core.settings import default_runs_dir, options


def settings_payload() -> dict[str, Any]:
    """What the endpoint answers: every option described, and the defaults by option name."""
    described = [o.describe() for o in options()]
    return {
        "options": described,
        "defaults": {o["name"]: o["default"] for o in described},
        "runs_dir": default_runs_dir(),
        "settings_version": 1,
    }


class SettingsHandler(APIHandler):
    """The run options of RunSettings with their defaults (read-only, no files involved)."""

    auth_resource = "contents"

    @web.authenticated
    @authorized
    async def get(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(settings_payload()))


__all__ = ["SettingsHandler", "settings_payload"]
