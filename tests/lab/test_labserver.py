"""The server endpoint the extension reads runs through (autoresearch_jupyter/labserver.py).

It serves the hidden runs folder that the Contents API refuses, and nothing else: no file other
than run.json and journal.jsonl, nothing outside the root, no hidden folder above a runs folder.
"""

from __future__ import annotations

import json
import urllib.parse

from autoresearch_jupyter.store.journal import Journal
from autoresearch_jupyter.core.node import Node, Operator
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


def test_serves_whole_journal_lines_from_an_offset(lab):
    run = RunDir.create(lab.root / "lines" / ".autoresearch", protocol=Protocol(metric="m", maximize=True), settings={})
    with Journal(run.journal_path, durable=False) as journal:
        journal.node_created(Node(0, None, Operator.BASELINE, "baseline", "print(1)\n"))
        journal.node_started(0)
    whole = run.journal_path.read_bytes()
    with open(run.journal_path, "ab") as f:
        f.write(b'{"event": "node_fin')  # a line being written
    base = "/autoresearch/api/runs/file?" + query(dir="lines/.autoresearch", run=run.id, name="journal.jsonl")
    status, body = lab.get(base)
    assert status == 200 and body == whole
    first = whole.index(b"\n") + 1
    assert lab.get(base + f"&offset={first}")[1] == whole[first:]
    assert lab.get(base + f"&offset={len(whole) + 1000}") == (200, b"")
    status, body = lab.get("/autoresearch/api/runs/file?" + query(dir="lines/.autoresearch", run=run.id, name="run.json"))
    assert status == 200 and json.loads(body)["id"] == run.id


def test_refuses_other_files_other_folders_and_hidden_parents(lab):
    run = RunDir.create(lab.root / ".secret" / ".autoresearch", protocol=Protocol(metric="m", maximize=True), settings={})
    (run.path / "best.py").write_text("secret = 1\n")
    ok = RunDir.create(lab.root / "open" / ".autoresearch", protocol=Protocol(metric="m", maximize=True), settings={})
    (ok.path / "best.py").write_text("x = 1\n")
    file = "/autoresearch/api/runs/file?"
    assert lab.get("/autoresearch/api/runs?" + query(dir=".secret/.autoresearch"))[0] == 404
    assert lab.get(file + query(dir=".secret/.autoresearch", run=run.id, name="run.json"))[0] == 404
    assert lab.get("/autoresearch/api/runs?" + query(dir="../"))[0] == 400
    assert lab.get("/autoresearch/api/runs?" + query(dir="open/../../etc"))[0] == 400
    assert lab.get(file + query(dir="open/.autoresearch", run=ok.id, name="best.py"))[0] == 404
    assert lab.get(file + query(dir="open/.autoresearch", run="..", name="run.json"))[0] == 404
    assert lab.get(file + query(dir="open", run=".autoresearch", name="run.json"))[0] == 404
    assert lab.get(file + query(dir="open/.autoresearch", run=ok.id, name="run.json"))[0] == 200
