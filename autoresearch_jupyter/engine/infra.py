"""Failures of this machine rather than of a node, and hints about where a node runs.

A node that dies of a full disk did nothing wrong: the search stops with one line and the node
runs again on resume, instead of being recorded as a buggy change and never retried.
"""

from __future__ import annotations

import errno
import logging
import os
import re
from pathlib import Path
from typing import Callable

from ..core.errors import StorageError
from ..executors import JobResult

logger = logging.getLogger("autoresearch_jupyter.engine.search")

_DISK_FULL = re.compile(r"No space left on device|Disk quota exceeded|\[Errno (28|122)\]")
_MISSING = re.compile(r"No such file or directory: '([^']+)'")


def disk_full(result: JobResult, reason: str, node_dir: Path) -> str | None:
    """Why ``result`` is this machine's failure (the disk filled up), or None."""
    if not result.exit_code or result.timed_out or result.cancelled:
        return None
    if _DISK_FULL.search(reason):
        where = StorageError.from_os_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), node_dir)
        return f"{where}: the disk filled up while it ran ({reason[:120]}); it runs again on resume"
    return None


def cwd_hint(reason: str, *, cwd: str | None, source_dir: str | None) -> str:
    """The ``--cwd`` hint, only when it would help: the missing relative path exists from the
    folder the run was started in, and not in the source folder (which every node sees)."""
    match = _MISSING.search(reason)
    if not match or cwd or os.path.isabs(match.group(1)):
        return ""
    missing = match.group(1)
    source = source_dir
    if source and os.path.exists(os.path.join(source, missing)):
        return ""
    if os.path.exists(missing):
        return f" ({missing} exists in {os.getcwd()}, where the run started: run the nodes there)"
    return ""


def tolerate(action: Callable[[], object], what: str) -> None:
    """Run ``action``; a failed write only warns (the run is already stopping over a broken disk)."""
    try:
        action()
    except (OSError, StorageError) as err:
        logger.warning("%s: %s", what, err)
