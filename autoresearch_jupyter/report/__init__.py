"""Output: turns a tree into something to read, without changing it.

The report model and its text, the JSON envelope, script export and the subscriber that keeps
``best.py`` current, text and SVG trees and the runs table, the text progress subscriber shared by
the CLI and the magics, and the view records (plus the shared
browser renderer in ``static/``) that the notebook widget and the JupyterLab extension both show.
Modules import ``core``, ``store`` and the engine's ``Callback``; never the engine's internals or a face.
"""
