"""Keeps a run's ``best.py`` current: a subscriber, because the engine never writes reports.

The faces (the CLI's ``run``/``resume``, the notebook's ``%%autoresearch``/``resume``) subscribe a
``BestScriptWriter`` to every search they start; a program driving ``Search`` itself adds one
with ``search.subscribe(BestScriptWriter())`` if it wants the file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from ..core.node import Node
from ..core.noise import minimal_best
from ..core.protocol import Protocol
from ..core.tree import Tree
from ..engine.callbacks import Callback
from ..store.runs import RunDir, atomic_write
from .export import export_script

logger = logging.getLogger(__name__)


class BestScriptWriter(Callback):
    """Writes the best node as ``best.py`` (with its provenance header) into the run folder,
    atomically, whenever the best node changes and once more when the run ends (then the
    ablation's minimal script of the best, when it dropped changes that did not matter)."""

    def __init__(self) -> None:
        self._path: Path | None = None
        self._run_id = ""
        self._protocol: Protocol | None = None

    def on_run_started(self, *, run_id: str, run_dir: str, resumed: bool, **info: Any) -> None:
        self._path = RunDir.open(run_dir).best_path
        self._run_id = run_id
        self._protocol = info.get("protocol")

    def on_best_changed(self, *, node: Node, previous: Node | None, **info: Any) -> None:
        self._write(info.get("tree"), node)

    def on_run_finished(self, *, state: str, reason: str | None, **info: Any) -> None:
        tree = info.get("tree")
        best = info.get("best")
        if tree is not None and self._protocol is not None:
            best = minimal_best(tree, self._protocol) or best  # changes that do not matter left out
        self._write(tree, best)

    def _write(self, tree: Tree | None, best: Node | None) -> None:
        if self._path is None or self._protocol is None or tree is None or best is None:
            return
        script = export_script(tree, self._protocol, best.id, run_id=self._run_id)
        try:
            atomic_write(self._path, script)
        except OSError as err:  # a full disk stops the run with its own line; the old best.py stays whole
            logger.warning("best.py not written: %s", err.strerror or err)
