"""The JupyterLab face's Python side: the read-only server endpoint the extension reads runs through
(``server``), and the run defaults it takes from ``core.settings`` (``settings``).

``server`` holds the Jupyter server extension's handlers; ``views`` replays runs with the
package's own journal replay into the notebook widget's records and headers, cached per run
folder and sent incrementally. It imports ``core``, ``store`` and ``report`` (view records), never
the engine; the TypeScript lives in ``labextension/`` at the top of the repository.
"""
