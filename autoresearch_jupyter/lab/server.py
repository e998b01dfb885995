"""A read-only Jupyter server endpoint for the JupyterLab extension: the runs next to a notebook.

Runs live in ``.autoresearch/``, a hidden folder, and jupyter_server's Contents API refuses
hidden paths unless ``ContentsManager.allow_hidden`` is set. This server extension serves what
the runs sidebar and the run view read, and nothing else. The journals are replayed here, in
Python (``views.py``): the extension gets the same node records and header as the notebook widget.

- ``GET /autoresearch/api/runs?dir=DIR``: the run folders in the runs directory ``DIR`` (an API
  path, as the Contents API takes it), each with the size and modification time of its
  ``run.json`` and ``journal.jsonl``, the notebook it came from as an API path when
  ``run.json``'s ``source`` is a notebook under the server's root, and its ``view``: name, state,
  whether it is live, and the header (``run_meta``), or the ``error`` that keeps it from loading;
- ``GET /autoresearch/api/runs/view?dir=DIR&run=ID[&since=CURSOR]``: that run's ``view`` and its
  node records (``node_record``): all of them, or with the ``cursor`` of an earlier answer only
  those that changed since (``full`` says which), so a live run view stays current cheaply; and
  its source ``notebook`` as in the listing.
- ``GET /autoresearch/api/settings``: the run options and their defaults (lab/settings.py).

Only the runs directory itself may be hidden: a hidden folder above it or a hidden run folder
is refused unless the server allows hidden files, and nothing outside the root is served. The
handlers need the same permission as reading files through the Contents API.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from jupyter_core.paths import is_hidden
from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from .views import RunViews

VIEWS = RunViews()  # one cache per server process, shared by every request

RUN_JSON_CAP = 1_000_000  # bytes of run.json read to find the source notebook


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "autoresearch_jupyter.lab.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from .settings import SettingsHandler

    base = serverapp.web_app.settings["base_url"]
    serverapp.web_app.add_handlers(".*$", [
        (url_path_join(base, "autoresearch/api/runs"), RunsHandler),
        (url_path_join(base, "autoresearch/api/runs/view"), RunViewHandler),
        (url_path_join(base, "autoresearch/api/settings"), SettingsHandler),
    ])


def _stat(path: Path) -> dict[str, float] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return {"mtime": st.st_mtime, "size": st.st_size}


class _RunsBase(APIHandler):
    auth_resource = "contents"

    @property
    def _root(self) -> str:
        root = getattr(self.contents_manager, "root_dir", None)
        if not root:
            raise web.HTTPError(404, "runs are served from a file-system contents manager only")
        return os.path.abspath(root)

    @property
    def _allow_hidden(self) -> bool:
        return bool(getattr(self.contents_manager, "allow_hidden", False))

    def _inside(self, path: str) -> bool:
        root = self._root
        return path == root or path.startswith(root.rstrip(os.sep) + os.sep)

    def _runs_dir(self) -> Path:
        """The runs directory named by ``?dir=``; 404 for anything the server would not show."""
        parts = [p for p in self.get_query_argument("dir", "").split("/") if p]
        if any(p in (".", "..") or "\\" in p for p in parts):
            raise web.HTTPError(400, "dir must be a plain API path")
        path = os.path.abspath(os.path.join(self._root, *parts))
        parent = os.path.dirname(path)
        if not self._inside(path) or (
            not self._allow_hidden and self._inside(parent) and is_hidden(parent, self._root)
        ):
            raise web.HTTPError(404, "no such runs directory")
        return Path(path)

    def _run_dir(self, runs: Path, run: str) -> Path:
        if not run or run in (".", "..") or "/" in run or "\\" in run or (run.startswith(".") and not self._allow_hidden):
            raise web.HTTPError(404, "no such run")
        path = runs / run
        if not (path / "run.json").is_file():
            raise web.HTTPError(404, f"no run {run!r} here")
        return path

    def _source_notebook(self, run_dir: Path) -> str | None:
        """run.json's ``source`` as an API path, when it is a notebook under the root."""
        try:
            with open(run_dir / "run.json", "rb") as f:
                info = json.loads(f.read(RUN_JSON_CAP))
        except (OSError, ValueError):
            return None
        source = info.get("source") if isinstance(info, dict) else None
        if not isinstance(source, str) or not source.endswith(".ipynb"):
            return None
        if not os.path.isabs(source):
            settings = info.get("settings") if isinstance(info.get("settings"), dict) else {}
            base = settings.get("source_dir") if isinstance(settings.get("source_dir"), str) else None
            source = os.path.join(base or str(run_dir.parent.parent), source)
        source = os.path.abspath(source)
        if not self._inside(source) or not os.path.isfile(source):
            return None
        return os.path.relpath(source, self._root).replace(os.sep, "/")


class RunsHandler(_RunsBase):
    """The run folders of one runs directory."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        runs = self._runs_dir()
        out = []
        try:
            entries = sorted(os.scandir(runs), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError):
            entries = None
        for entry in entries or ():
            if not entry.is_dir() or (entry.name.startswith(".") and not self._allow_hidden):
                continue
            path = Path(entry.path)
            run_json = _stat(path / "run.json")
            if run_json is None:
                continue
            view, error = await asyncio.to_thread(VIEWS.summary, path)
            out.append({
                "id": entry.name, "run_json": run_json, "journal": _stat(path / "journal.jsonl"),
                "notebook": self._source_notebook(path), "view": view, "error": error,
            })
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"exists": entries is not None, "runs": out}))


class RunViewHandler(_RunsBase):
    """One run's view and node records, all or those changed since a cursor."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        path = self._run_dir(self._runs_dir(), self.get_query_argument("run", ""))
        since = self.get_query_argument("since", "") or None
        data = await asyncio.to_thread(VIEWS.view, path, since)
        data["notebook"] = self._source_notebook(path)
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(data))
