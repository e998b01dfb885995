"""Unified diffs between scripts: every node records its diff from its parent, in one format."""

from __future__ import annotations

import difflib

NO_NEWLINE = "\\ No newline at end of file\n"


def unified_diff(old_code: str, new_code: str, old_name: str = "parent", new_name: str = "node", *, context: int = 3) -> str:
    """The change from ``old_code`` to ``new_code`` as a unified diff ('' when they are equal).

    A last line without a newline gets git's ``\\ No newline at end of file`` marker, so the
    diff stays one hunk line per line and can be applied with ``patch``.
    """
    if old_code == new_code:
        return ""
    lines = difflib.unified_diff(
        old_code.splitlines(keepends=True),
        new_code.splitlines(keepends=True),
        fromfile=old_name,
        tofile=new_name,
        n=context,
    )
    out: list[str] = []
    for line in lines:
        out.append(line if line.endswith("\n") else line + "\n" + NO_NEWLINE)
    return "".join(out)


def diff_stats(diff: str) -> tuple[int, int]:
    """Lines added and removed by a unified diff (file headers not counted), for compact labels."""
    added = removed = 0
    in_hunk = False  # "---"/"+++" are file headers only before the first hunk
    for line in diff.splitlines():
        if line.startswith("@@"):
            in_hunk = True
        elif in_hunk and line.startswith("+"):
            added += 1
        elif in_hunk and line.startswith("-"):
            removed += 1
    return added, removed
