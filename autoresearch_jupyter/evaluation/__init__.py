"""The separate grader: a frozen evaluator scores each node's outputs in a job of its own.

The node's code never computes the number that decides: it writes outputs (predictions, a model,
a submission) into its folder, and the evaluator (``--eval EVALUATE.py`` or a
``%%autoresearch_eval`` cell), with data only it can see (``--eval-data``, ``--use``), prints or
``report()`` s the metric. At the end it scores the best nodes on a holdout nobody used.

This is a part, beside the executors it wraps: the engine uses it; it imports executors and core.
"""

from __future__ import annotations

from ._export import evaluator_script, with_evaluator
from ._files import EvalFiles, runnable_code
from ._grader import HOLDOUT, VALIDATION, Evaluation, GradedResult, Grader, GradingExecutor
from ._session import NOT_PROTECTED, Grading, holdout_nodes, score_holdout
from ._spec import EvalSpec, build_spec, contract_text, load_spec

__all__ = [
    "EvalFiles", "EvalSpec", "Evaluation", "GradedResult", "Grader", "Grading", "GradingExecutor", "HOLDOUT",
    "NOT_PROTECTED", "VALIDATION", "build_spec", "contract_text", "holdout_nodes", "load_spec", "runnable_code",
    "score_holdout", "evaluator_script", "with_evaluator",
]
