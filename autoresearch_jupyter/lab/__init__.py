"""The JupyterLab face's Python side: the read-only server endpoint the extension reads runs through
(``server``), and the run defaults it takes from ``core.settings`` (``settings``).

It imports ``core``, ``store`` and ``report`` (view records), never the engine; the TypeScript lives in
``labextension/`` at the top of the repository.
"""
