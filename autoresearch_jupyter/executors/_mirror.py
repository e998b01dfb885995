"""The node folder mirrors the source folder, so scripts run as they are.

Scripts find their data next to themselves (``os.path.dirname(__file__)``) or in the working
directory. A node runs ``nodes/<id>/train.py`` in ``nodes/<id>/``, so each entry of the source
folder gets a symbolic link there: reads resolve into the source folder (read-only under the
sandbox), and files the script writes land in its own node folder. Links cost one ``symlink``
call per entry, and they are chosen over a second copy of the data (size) and over running in
the source folder itself (the node's outputs would go there).
"""

from __future__ import annotations

import os
from pathlib import Path

MAX_ENTRIES = 2000  # a source folder with more top-level entries is not mirrored (it says so in the log)
_OWN = frozenset({"train.py", "output.log", "smoke.log", "result.json", "smoke-result.json"})


def mirror_folder(source: Path, workdir: Path) -> str | None:
    """Link every entry of ``source`` into ``workdir`` (except the node's own files and the folder
    that holds the run); returns a note when it could not, else None."""
    try:
        entries = list(os.scandir(source))
    except OSError as err:
        return f"cannot list {source} to mirror it: {err.strerror}"
    if len(entries) > MAX_ENTRIES:
        return f"{source} has {len(entries)} entries: not mirrored into the node folder (limit {MAX_ENTRIES})"
    work = os.path.realpath(workdir)
    for entry in entries:
        if entry.name in _OWN or entry.name == ".autoresearch":
            continue
        target = os.path.realpath(entry.path)
        if work == target or work.startswith(target.rstrip("/") + "/"):
            continue  # the runs folder itself: a node must not reach the record through it
        link = os.path.join(workdir, entry.name)
        if os.path.lexists(link):
            continue
        try:
            os.symlink(entry.path, link)
        except OSError:
            continue
    return None
