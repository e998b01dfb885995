"""The evaluator next to an exported node, so the pair reproduces the graded number on its own.

Two shapes: a second file (``best_evaluate.py`` beside ``best.py``: run the script, then the
evaluator, in the same folder) or one script (``--with-eval``: the node's code, then the
evaluator run on what it wrote). Either finds the evaluator's data in the run's snapshot
(``<run>/eval/``) unless the environment already says where it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._files import EvalFiles, runnable_code
from ._spec import EvalSpec

_HEADER = '''\
# The evaluator of autoresearch run {run_id} (sha256 {sha}), exported for node {node}.
# Run the exported script first, then this, in the same folder: it reads what the script wrote
# and prints the graded {metric}. Its data is the run's snapshot unless the variables are set.
'''


def _defaults(files: EvalFiles, spec: EvalSpec, node_id: int, metric: str) -> dict[str, str]:
    return {
        "AUTORESEARCH_EVAL_SPLIT": "validation",
        "AUTORESEARCH_EVAL_DATA": str(files.data_dir),
        "AUTORESEARCH_HOLDOUT": str(files.holdout_dir),
        "AUTORESEARCH_EVAL_USE": str(files.use_file),
        "AUTORESEARCH_NODE_ID": str(node_id),
        "AUTORESEARCH_METRIC": metric,
    }


def _env_lines(defaults: dict[str, str]) -> str:
    body = "".join(f"    {k!r}: {v!r},\n" for k, v in defaults.items())
    return ("import os as _os\n"
            f"for _k, _v in {{\n{body}}}.items():\n    _os.environ.setdefault(_k, _v)\n"
            "_os.environ.setdefault('AUTORESEARCH_OUTPUTS', _os.getcwd())\n")


def evaluator_script(settings: dict[str, Any], run_path: Path, *, run_id: str, node_id: int, metric: str) -> str:
    """The evaluator as a standalone file for ``node_id``'s exported script."""
    spec = EvalSpec.from_settings(dict(settings))
    files = EvalFiles(run_path)
    head = _HEADER.format(run_id=run_id, sha=spec.sha256[:12], node=node_id, metric=metric)
    return head + _env_lines(_defaults(files, spec, node_id, metric)) + runnable_code(spec, str(files.use_file))


def with_evaluator(script: str, settings: dict[str, Any], run_path: Path, *, node_id: int, metric: str) -> str:
    """``script`` followed by the evaluator, run on what the script wrote (the last metric line wins)."""
    spec = EvalSpec.from_settings(dict(settings))
    files = EvalFiles(run_path)
    code = runnable_code(spec, str(files.use_file))
    return (
        script.rstrip("\n") + "\n\n\n"
        "# ---- autoresearch: the run's evaluator (export --with-eval); its metric is the graded one ----\n"
        "def _autoresearch_evaluate():\n"
        + "".join("    " + line + "\n" for line in _env_lines(_defaults(files, spec, node_id, metric)).splitlines())
        + f"    exec(compile({code!r}, 'evaluate.py', 'exec'), {{'__name__': '__main__', '__file__': 'evaluate.py'}})\n"
        "\n\n_autoresearch_evaluate()\n"
    )
