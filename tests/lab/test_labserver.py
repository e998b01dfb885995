"""The server endpoint the extension reads runs through (autoresearch_jupyter/lab/server.py).

It serves what the hidden runs folder holds, which the Contents API refuses, and nothing else: the
runs' headers and node records (never a file), nothing outside the root, no hidden folder above a
runs folder.
"""

from __future__ import annotations

import json
import urllib.parse

from autoresearch_jupyter.store.journal import Journal
from autoresearch_jupyter.core.node import Node, Operator, Status
from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.store.runs import RunDir


def query(**params: str) -> str:
    return urllib.parse.urlencode(params)


def test_lists_runs_with_their_files_and_source_notebook(lab):
    folder = lab.root / "served"
    (folder / "nb.ipynb").parent.mkdir()
    (folder / "nb.ipynb").write_text("{}")
    run = RunDir.create(folder / ".autoresearch", protocol=Protocol(metric="m", maximize=True), settings={},
                        source=str(folder / "nb.ipynb"))
    (folder / ".autoresearch" / "not-a-run").mkdir()
    status, body = lab.get("/autoresearch/api/runs?" + query(dir="served/.autoresearch"))
    assert status == 200
    data = json.loads(body)
    assert data["exists"] is True
    assert [r["id"] for r in data["runs"]] == [run.id]
    assert data["runs"][0]["notebook"] == "served/nb.ipynb"
    assert data["runs"][0]["journal"]["size"] == 0
    # the Contents API refuses the same folder: the reason for this endpoint
    assert lab.get("/api/contents/served/.autoresearch")[0] == 404
    assert json.loads(lab.get("/autoresearch/api/runs?" + query(dir="served/missing"))[1]) == {"exists": False, "runs": []}


def test_serves_a_runs_records_and_then_only_what_changed(lab):
    run = RunDir.create(lab.root / "lines" / ".autoresearch", protocol=Protocol(metric="m", maximize=True),
                        settings={"steps": 3})
    view = "/autoresearch/api/runs/view?" + query(dir="lines/.autoresearch", run=run.id)
    with Journal(run.journal_path, durable=False) as journal:
        journal.node_created(Node(0, None, Operator.BASELINE, "baseline", "print(1)\n"))
        journal.node_started(0)
        status, body = lab.get(view)
        first = json.loads(body)
        assert status == 200 and first["full"] is True and first["error"] is None
        assert [(r["id"], r["status"], r["code"]) for r in first["records"]] == [(0, "running", "print(1)\n")]
        assert first["view"]["meta"]["steps"] == 3 and first["view"]["id"] == run.id
        assert first["notebook"] is None  # run.json names no notebook
        journal.node_finished(0, status=Status.OK, metric=1.0, kept=True)
        journal.node_created(Node(1, 0, Operator.IMPROVE, "two", "print(2)\n"))
    with open(run.journal_path, "ab") as f:
        f.write(b'{"event": "node_fin')  # a line being written
    second = json.loads(lab.get(view + "&" + query(since=first["cursor"]))[1])
    assert second["full"] is False and [(r["id"], r["status"]) for r in second["records"]] == [(0, "ok"), (1, "pending")]
    assert second["view"]["meta"]["best_id"] == 0
    assert json.loads(lab.get(view + "&" + query(since=second["cursor"]))[1])["records"] == []
    listed = json.loads(lab.get("/autoresearch/api/runs?" + query(dir="lines/.autoresearch"))[1])["runs"]
    assert listed[0]["view"]["meta"]["nodes"] == 2 and listed[0]["error"] is None


def test_refuses_other_files_other_folders_and_hidden_parents(lab):
    run = RunDir.create(lab.root / ".secret" / ".autoresearch", protocol=Protocol(metric="m", maximize=True), settings={})
    (run.path / "best.py").write_text("secret = 1\n")
    ok = RunDir.create(lab.root / "open" / ".autoresearch", protocol=Protocol(metric="m", maximize=True), settings={})
    (ok.path / "best.py").write_text("x = 1\n")
    view = "/autoresearch/api/runs/view?"
    assert lab.get("/autoresearch/api/runs?" + query(dir=".secret/.autoresearch"))[0] == 404
    assert lab.get(view + query(dir=".secret/.autoresearch", run=run.id))[0] == 404
    assert lab.get("/autoresearch/api/runs?" + query(dir="../"))[0] == 400
    assert lab.get("/autoresearch/api/runs?" + query(dir="open/../../etc"))[0] == 400
    assert lab.get(view + query(dir="open/.autoresearch", run=".."))[0] == 404
    assert lab.get(view + query(dir="open", run=".autoresearch"))[0] == 404
    # no file is served: the raw-file endpoint is gone, best.py is not reachable
    assert lab.get("/autoresearch/api/runs/file?" + query(dir="open/.autoresearch", run=ok.id, name="best.py"))[0] == 404
    status, body = lab.get(view + query(dir="open/.autoresearch", run=ok.id))
    assert status == 200 and json.loads(body)["view"]["id"] == ok.id and b"x = 1" not in body
