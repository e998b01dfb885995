"""Taking a run up again from its folder: the lock, the replayed tree, the settings, the checks.

A run is resumed by one writer at a time, only when it is not still running elsewhere, and only
from a folder that has a baseline to build on; ``autoresearch ablate`` also needs a best node
beyond the baseline. These checks read the run folder and refuse with one line each, before the
search is built, and they hand back what the search restores itself from: the writer lock (held
until the resumed search ends, released here when a check fails), the replayed journal and the
settings from run.json. The search then fills its own state; nothing here imports it.
"""

from __future__ import annotations

from ..core.errors import AblationError, BaselineError, RunActiveError
from ..core.protocol import Protocol
from ..core.settings import RunSettings
from ..core.tree import Tree
from ..store.journal import Replay, pid_alive
from ..store.lock import RunLock, is_locked
from ..store.runs import RunDir

__all__ = ["check_ablatable", "open_for_resume"]


def open_for_resume(run_dir: RunDir) -> tuple[RunLock, Replay, RunSettings]:
    """Lock ``run_dir`` for resuming and read it back: its lock, its replayed journal (with a
    baseline node) and its settings. Raises RunActiveError or BaselineError, lock released."""
    legacy = is_locked(run_dir.path) is None  # written by a version without the lock: judge by its pid
    lock = run_dir.lock("resume")  # one writer per run, held until the resumed search ends
    try:
        replay = run_dir.load()
        if legacy and replay.finished_at is None and pid_alive(replay.pid, replay.host):
            raise RunActiveError(
                f"run {run_dir.id} is still running (pid {replay.pid} on {replay.host}); stop it before resuming"
            )
        if replay.tree.root is None:
            raise BaselineError(f"run {run_dir.id} has no baseline node to resume from")
        settings = RunSettings.from_dict(run_dir.settings, strict=False)  # run.json may come from another version
    except BaseException:
        lock.release()
        raise
    return lock, replay, settings


def check_ablatable(tree: Tree, protocol: Protocol, run_id: str) -> None:
    """Refuse (AblationError) a run without a best node beyond its baseline: nothing to ablate."""
    best = tree.best(protocol)
    if best is None or best.parent is None:
        raise AblationError(
            f"run {run_id} has no best node beyond its baseline, so there is nothing to ablate; "
            f"continue the search first (autoresearch resume {run_id})"
        )
