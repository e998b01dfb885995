"""Cost of checking one proposal before it runs, on a 500-line training script.

    python benchmarks/bench_guard.py [--lines 500] [--repeat 30]

Prints, side by side for a one-literal change (what mutate proposes) and a new statement (an
LLM-style edit), the median time per fresh proposal of: what this analysis adds (goalpost
dataflow, metric outside frozen code, failure memory), the checks that existed before (syntax,
normalised-AST duplicates, seed-only variants), and the whole ``Guard.check``. The parent's
analysis is cached, as in a search. Budget for the added part: 50 ms.
"""

from __future__ import annotations

import argparse
import ast
import statistics
import time

BLOCK = """
n_split_{i} = 300
X_train_{i}, X_test_{i} = X[:n_split_{i}], X[n_split_{i}:]
model_{i} = Ridge(alpha={alpha}, fit_intercept=True, max_iter=1000)
model_{i}.fit(X_train_{i}, y[:n_split_{i}])
scores_{i} = cross_val_score(model_{i}, X, y, cv=5, scoring="r2")
for epoch in range(10):
    batch = X_train_{i}[epoch * 32:(epoch + 1) * 32]
    lr_{i} = 0.01 * (0.9 ** epoch)
    loss_{i} = float(((batch @ np.ones(20)) ** 2).mean()) * lr_{i}
if loss_{i} > 1e9:
    print("diverged", loss_{i})
"""


def make_script(lines: int) -> str:
    head = "import numpy as np\nfrom sklearn.linear_model import Ridge\nfrom sklearn.model_selection import cross_val_score\n"
    head += "X = np.random.default_rng(0).normal(size=(400, 20))\ny = X[:, 0]\n"
    body, i = [head], 0
    while sum(b.count("\n") for b in body) < lines - 3:
        body.append(BLOCK.format(i=i, alpha=1.0 + i))
        i += 1
    body.append("# autoresearch: freeze\nprint(f'r2: {scores_0.mean():.4f}')\n# autoresearch: end\n")
    return "".join(body)


def median_ms(fn, proposals: list[str]) -> float:
    times = []
    for code in proposals:
        start = time.perf_counter()
        fn(code)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()

    from autoresearch_jupyter.core import dataflow
    from autoresearch_jupyter.core.node import Node, Operator, Status
    from autoresearch_jupyter.core.protocol import Protocol
    from autoresearch_jupyter.engine.guard import Guard, normalize, syntax_problem, _seedless

    base = make_script(args.lines)
    protocol = Protocol.for_script(base, metric="r2", maximize=True)
    guard = Guard(protocol=protocol)
    guard.remember(base)
    guard.set_baseline(base)
    # a failure on record, so the failure memory has something to compare against
    failed = Node(id=1, parent=0, operator=Operator.IMPROVE, plan="", code=base.replace("max_iter=1000", "max_iter=0", 1),
                  status=Status.BUGGY, reason="ValueError: max_iter must be >= 1")
    guard.failures.record(failed, Node(id=0, parent=None, operator=Operator.BASELINE, plan="", code=base))
    dataflow.protected_literals(base)  # the parent's analysis is cached, as in a search

    counter = iter(range(10**9))

    def literal() -> str:  # a fresh one-literal change each time (defeats every cache)
        return base.replace("alpha=1.0,", f"alpha={2.0 + next(counter) * 0.001:.4f},", 1)

    def structural() -> str:  # an LLM-style edit: a new statement
        return base.replace("y = X[:, 0]\n", f"y = X[:, 0]\nscale = {next(counter)}\n", 1)

    def added(item: tuple[str, object]) -> None:  # what this work adds to every check (the
        code, tree = item                            # guard parses the proposal once already)
        dataflow.describe_change(base, code, tree)
        guard._metric_outside(code, tree)
        guard.failures.check(parent_code=base, code=code)

    def before(code: str) -> None:  # the checks that were there already
        syntax_problem(code)
        normalize(code)
        _seedless(code)

    def timed(fn, make) -> float:
        codes = [make() for _ in range(args.repeat)]
        return median_ms(fn, [(c, ast.parse(c)) for c in codes] if fn is added else codes)

    lines = base.count("\n")
    print(f"script: {lines} lines; median per proposal over {args.repeat} fresh proposals")
    print(f"{'':38}{'literal change':>16}{'new statement':>16}")
    for name, fn in [("goalposts + frozen metric + failures", added),
                     ("existing checks (syntax, duplicates)", before),
                     ("whole Guard.check", lambda c: guard.check(code=c, parent_code=base))]:
        print(f"{name:38}{timed(fn, literal):13.2f} ms{timed(fn, structural):13.2f} ms")
    print("budget for the added analysis: 50 ms per proposal")
    assert guard.check(code=base.replace("n_split_0 = 300", "n_split_0 = 350"), parent_code=base), "goalpost missed"


if __name__ == "__main__":
    main()
