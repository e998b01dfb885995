"""Output: turns a tree into something to read, without changing it.

The report model and its text, the JSON envelope, script export, text and SVG trees, the text
progress subscriber shared by the CLI and the magics, and the view records (plus the shared
browser renderer in ``static/``) that the notebook widget and the JupyterLab extension both show.
Modules import ``core`` and ``store``; never the engine's internals or a face.
"""
