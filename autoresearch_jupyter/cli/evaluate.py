"""`autoresearch evaluate`: score a finished run's best nodes with its evaluator, e.g. on a holdout."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import EvaluatorError, NodeNotFoundError, RunActiveError
from ._common import non_negative_int, open_run, positive_float, print_json, run_ref_argument

NAME = "evaluate"
HELP = ("Score a run's baseline, best and next best nodes with the evaluator on a holdout "
        "(--holdout PATH), or again on validation; the scores go into the run's record.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    run_ref_argument(parser)
    parser.add_argument("--holdout", type=Path, action="append", default=[], metavar="PATH",
                        help="holdout data (file or folder; repeatable), in $AUTORESEARCH_HOLDOUT "
                        "(default: the run's own --holdout)")
    parser.add_argument("--split", choices=("holdout", "validation"), default="holdout",
                        help="AUTORESEARCH_EVAL_SPLIT for the evaluator (holdout)")
    parser.add_argument("--eval", type=Path, default=None, metavar="EVALUATE.py",
                        help="an evaluator for a run that was searched without one")
    parser.add_argument("--eval-data", type=Path, action="append", default=[], metavar="PATH",
                        help="data for that evaluator only (with --eval)")
    parser.add_argument("--eval-timeout", type=positive_float, default=None, help="seconds per evaluation")
    parser.add_argument("--node", type=int, action="append", default=[], metavar="ID",
                        help="score these nodes (repeatable; default: the baseline, the best and --top more)")
    parser.add_argument("--top", type=non_negative_int, default=None,
                        help="next best nodes to score besides the baseline and the best (the run's, 3)")
    parser.add_argument("--json", action="store_true", help="print the scores as JSON")


def run(args: argparse.Namespace) -> int:
    from ..evaluation import EvalSpec, load_spec
    from ..evaluation.later import evaluate_run

    run_dir = open_run(args)
    replay = run_dir.load()
    if replay.state == "running":
        raise RunActiveError(f"run {run_dir.id} is still running (pid {replay.pid}); evaluate it when it ends")
    own = run_dir.settings.get("eval")
    if own and args.eval is not None:
        raise EvaluatorError(f"run {run_dir.id} has its own evaluator, fixed when it started; drop --eval")
    if own:
        if args.eval_data:
            raise EvaluatorError("--eval-data belongs to the run's evaluator and was fixed when it started")
        spec = EvalSpec.from_settings(dict(own))
        if args.holdout or args.eval_timeout is not None:
            from ..evaluation import build_spec

            spec = build_spec(code=spec.code, source=spec.source, use=spec.use, data=spec.data,
                              timeout=args.eval_timeout or spec.timeout,
                              holdout=args.holdout or spec.holdout, holdout_top=spec.holdout_top)
    elif args.eval is not None:
        spec = load_spec(args.eval, timeout=args.eval_timeout, data=args.eval_data, holdout=args.holdout)
    else:
        raise EvaluatorError(f"run {run_dir.id} has no evaluator: give one with --eval EVALUATE.py")
    if args.split == "holdout" and not spec.holdout:
        raise EvaluatorError("no holdout data: pass --holdout PATH (files or folders the search never used)")
    tree = replay.tree
    for node_id in args.node:
        if node_id not in tree:
            raise NodeNotFoundError(f"run {run_dir.id} has no node {node_id} (nodes 0-{len(tree) - 1})")
    top = args.top if args.top is not None else spec.holdout_top
    scores = evaluate_run(run_dir, spec, tree, split=args.split, node_ids=args.node or None, top=top,
                          replace_holdout=bool(args.holdout))
    if args.json:
        print_json({"evaluate_result_version": 1, "run": run_dir.id, "split": args.split, "scores": scores})
        return 0
    from ..report import export

    report = export.build_report(tree, run_dir.protocol, run_id=run_dir.id, run_name=run_dir.name or "",
                                 state=replay.state)
    if report.grading is not None:
        from ..report.grading import grading_lines

        print("\n".join(grading_lines(report.grading, report.metric)).lstrip("\n"))
    for row in scores:
        if row.get("reason"):
            print(f"node {row['node']}: {row['reason']}")
    return 0 if all(row.get("state") == "ok" for row in scores) else 1
