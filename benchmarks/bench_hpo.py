"""The offline proposer against random search and Optuna's TPE at equal budget (20 evaluations).

    python benchmarks/bench_hpo.py [--evals 20] [--seeds 5] [--tasks gb_clf,svc_default]

Each task is a small scikit-learn script with weak literals (or a declared space, or an argument
left at its default). "mutate" is the search loop's own logic (the greedy tree policy, the guard,
keep-or-revert against the parent) driving ``MutateProposer`` for ``evals - 1`` nodes after the
baseline; "random" and "TPE" are Optuna studies over the same literals of the baseline (declared
spaces exactly, other numbers over the same ranges the proposer uses: 100x around the value for
floats, 8x for integers, documented bounds), their first trial being the baseline itself. Every
script runs in this process (scikit-learn is imported once), one BLAS thread; the figure is the
best metric after ``evals`` evaluations, the median over ``--seeds`` seeds for random and TPE.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import time
import traceback
from typing import Any, Callable

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

from autoresearch_jupyter.core.metrics import parse_metric  # noqa: E402
from autoresearch_jupyter.core.node import Node, Operator, Status  # noqa: E402
from autoresearch_jupyter.core.protocol import Protocol  # noqa: E402
from autoresearch_jupyter.core.tree import Tree  # noqa: E402
from autoresearch_jupyter.engine.guard import Guard  # noqa: E402
from autoresearch_jupyter.engine.policy import GreedyTreePolicy  # noqa: E402
from autoresearch_jupyter.proposers import Context, MutateProposer  # noqa: E402

HEAD = "import warnings\nwarnings.filterwarnings('ignore')\nfrom sklearn.model_selection import cross_val_score\n"
TASKS: dict[str, str] = {
    "gb_clf": HEAD + """from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
X, y = load_breast_cancer(return_X_y=True)
X, y = X[::2], y[::2]
clf = GradientBoostingClassifier(learning_rate=0.01, n_estimators=10, max_depth=1, random_state=0)
print(f"val_acc: {cross_val_score(clf, X, y, cv=3).mean():.4f}")
""",
    "rf_reg": HEAD + """from sklearn.datasets import load_diabetes
from sklearn.ensemble import RandomForestRegressor
X, y = load_diabetes(return_X_y=True)
reg = RandomForestRegressor(n_estimators=5, max_depth=2, min_samples_leaf=40, random_state=0)
print(f"r2: {cross_val_score(reg, X, y, cv=3, scoring='r2').mean():.4f}")
""",
    "mlp_declared": HEAD + """from sklearn.datasets import load_digits
from sklearn.neural_network import MLPClassifier
X, y = load_digits(return_X_y=True)
X, y = X[:600] / 16.0, y[:600]
alpha = 0.5  # search: log(1e-6, 1)
lr = 0.0003  # search: log(1e-4, 0.1)
width = 8  # search: int(4, 128)
clf = MLPClassifier(hidden_layer_sizes=(width,), alpha=alpha, learning_rate_init=lr, max_iter=60, random_state=0)
print(f"val_acc: {cross_val_score(clf, X, y, cv=3).mean():.4f}")
""",
    "svc_default": HEAD + """from sklearn.datasets import load_digits
from sklearn.svm import SVC
X, y = load_digits(return_X_y=True)
X, y = X[::3], y[::3]
clf = SVC(gamma=0.001)
print(f"val_acc: {cross_val_score(clf, X, y, cv=3).mean():.4f}")
""",
    "knn_strings": HEAD + """from sklearn.datasets import load_wine
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
X, y = load_wine(return_X_y=True)
clf = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=60, weights="uniform", p=1))
print(f"val_acc: {cross_val_score(clf, X, y, cv=3).mean():.4f}")
""",
    "ridge_reg": HEAD + """from sklearn.datasets import load_diabetes
from sklearn.linear_model import Ridge
X, y = load_diabetes(return_X_y=True)
reg = Ridge(alpha=300.0, fit_intercept=True)
print(f"r2: {cross_val_score(reg, X, y, cv=3, scoring='r2').mean():.4f}")
""",
}
METRICS = {"rf_reg": "r2", "ridge_reg": "r2"}


def evaluate(code: str, metric: str) -> tuple[float | None, str]:
    """Run a script in this process; (metric, error line)."""
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            exec(compile(code, "train.py", "exec"), {"__name__": "__main__"})
    except Exception as err:  # noqa: BLE001 - a failing node is a result
        return None, "".join(traceback.format_exception_only(type(err), err)).strip().splitlines()[-1]
    value = parse_metric(out.getvalue(), metric)
    return value, "" if value is not None else "no metric"


def run_mutate(code: str, metric: str, evals: int, seed: int = 0, sampler: str = "auto",
               run: Callable[[str, str], tuple[float | None, str]] = evaluate) -> tuple[float, Tree, float]:
    """The search loop's logic in this process: policy, proposer, guard, keep-or-revert."""
    protocol = Protocol.for_script(code, metric=metric, maximize=True, seed=seed)
    tree, guard = Tree(), Guard(protocol=protocol, known=[code])
    value, _ = run(code, metric)
    tree.add(Node(id=0, parent=None, operator=Operator.BASELINE, plan="baseline", code=code,
                  status=Status.OK, metric=value, kept=True))
    proposer, policy = MutateProposer(seed=seed, sampler=sampler), GreedyTreePolicy(seed=seed, num_drafts=0)
    exhausted: set[tuple[int, Operator]] = set()
    spent = 1
    propose_time = 0.0
    while spent < evals:
        decision = policy.next(tree=tree, protocol=protocol, operators=proposer.operators, exhausted=exhausted)
        if decision is None:
            break
        parent = tree[decision.parent]
        context = Context(protocol=protocol, tree=tree, parent=parent, operator=decision.operator,
                          progress=spent / evals, is_known=guard.is_known)
        started = time.perf_counter()
        proposal = proposer.propose(context=context)
        propose_time += time.perf_counter() - started
        if proposal is None:
            exhausted.add((decision.parent, decision.operator))
            continue
        node = Node(id=tree.next_id(), parent=parent.id, operator=proposal.operator, plan=proposal.plan,
                    code=proposal.code, meta=proposal.meta)
        reason = guard.check(code=proposal.code, parent_code=parent.code)
        guard.remember(proposal.code)
        if reason:
            node.status, node.reason = Status.REJECTED, reason
            tree.add(node)
            continue
        metric_value, error = run(proposal.code, metric)
        spent += 1
        node.metric = metric_value
        node.status = Status.OK if metric_value is not None else Status.BUGGY
        node.reason = error or None
        ancestor = parent
        while not ancestor.is_good and ancestor.parent is not None:
            ancestor = tree[ancestor.parent]
        node.kept = metric_value is not None and ancestor.metric is not None and metric_value > ancestor.metric
        tree.add(node)
    best = max(n.metric for n in tree if n.is_good)  # type: ignore[type-var]
    return best, tree, propose_time / max(1, len(tree) - 1)


def space(code: str, metric: str) -> list[tuple[Any, Any]]:
    """(site, optuna distribution) for the baseline's own literals, as the proposer ranges them."""
    from autoresearch_jupyter.proposers.mutate._knowledge import Knowledge
    from autoresearch_jupyter.proposers.mutate._model import distribution

    tree = Tree()
    tree.add(Node(id=0, parent=None, operator=Operator.BASELINE, plan="", code=code))
    know = Knowledge(tree, metric)
    out = []
    for site in know.sites(code):
        if site.at_default or know.inert(code, site):
            continue
        site = know.as_float(site)
        domain = know.domain(site, site.value)
        if domain is not None:
            out.append((site, distribution(domain)))
    return out


def run_optuna(code: str, metric: str, evals: int, seed: int, kind: str,
               run: Callable[[str, str], tuple[float | None, str]] = evaluate) -> float:
    import optuna
    from autoresearch_jupyter.proposers.mutate._proposer import _text

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sites = space(code, metric)
    sampler = optuna.samplers.TPESampler(seed=seed) if kind == "tpe" else optuna.samplers.RandomSampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.enqueue_trial({s.id: s.value for s, _ in sites}, skip_if_exists=False)
    best = -float("inf")
    for _ in range(evals):
        trial = study.ask({s.id: d for s, d in sites})
        changed = code
        for site, _d in sorted(sites, key=lambda p: -p[0].start):  # from the end: offsets stay valid
            value = trial.params[site.id]
            if value != site.value or type(value) is not type(site.value):
                changed = site.apply(changed, _text(site, value))
        value, _ = run(changed, metric)
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            study.tell(trial, value)
            best = max(best, value)
    return best


def compare(task: str, evals: int, seeds: int, mutate_seeds: int = 1) -> dict[str, Any]:
    code, metric = TASKS[task], METRICS.get(task, "val_acc")
    ours = [run_mutate(code, metric, evals, seed=s) for s in range(mutate_seeds)]
    return {
        "task": task,
        "mutate": statistics.median(o[0] for o in ours),
        "tree": ours[0][1],
        "random": statistics.median(run_optuna(code, metric, evals, s, "random") for s in range(seeds)),
        "tpe": statistics.median(run_optuna(code, metric, evals, s, "tpe") for s in range(seeds)),
        "baseline": ours[0][1][0].metric,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evals", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--mutate-seeds", type=int, default=1, help="median over this many seeds of mutate")
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--plans", action="store_true", help="print mutate's plans per task")
    args = parser.parse_args()
    print(f"best metric after {args.evals} evaluations (random, TPE: median of {args.seeds} seeds)")
    print(f"{'task':<14}{'baseline':>10}{'mutate':>10}{'random':>10}{'TPE':>10}   mutate >= TPE")
    wins = 0
    tasks = args.tasks.split(",")
    for task in tasks:
        started = time.perf_counter()
        row = compare(task, args.evals, args.seeds, args.mutate_seeds)
        ok = row["mutate"] >= row["tpe"]
        wins += ok
        print(f"{task:<14}{row['baseline']:>10.4f}{row['mutate']:>10.4f}{row['random']:>10.4f}{row['tpe']:>10.4f}"
              f"   {'yes' if ok else 'no'}   ({time.perf_counter() - started:.0f} s)", flush=True)
        if args.plans:
            for node in row["tree"]:
                print(f"    {node.id:>2} <- {node.parent}  {node.status.value:<8} {node.metric}  {node.plan}")
    print(f"mutate >= TPE median on {wins} of {len(tasks)} tasks")


if __name__ == "__main__":
    sys.exit(main())
