"""Output: turns a tree into something to read, without changing it.

The report model and its text, the JSON envelope, script export and the subscriber that keeps
``best.py`` current, text and SVG trees and the runs table, the text progress subscriber shared by
the CLI and the magics, and the view records (plus the shared
browser renderer in ``static/``) that the notebook widget and the JupyterLab extension both show.
Modules import ``core``, ``store`` and the engine's ``Callback``; never the engine's internals or a face.
"""

import sys
import types
from typing import Any


class _ReportModule(types.ModuleType):
    """This package shares its name with ``autoresearch_jupyter.report(...)``, the function node
    scripts call. Importing the package rebinds ``autoresearch_jupyter.report`` to it, so that
    ``from autoresearch_jupyter import report`` would give a module once anything (the warm
    interpreter, the magics) has imported it; calling the package calls the function instead."""

    def __call__(self, **metrics: float) -> None:
        from ..core.metrics import report

        report(**metrics)


sys.modules[__name__].__class__ = _ReportModule
del sys, types, Any
