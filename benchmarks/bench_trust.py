"""What the offline search claims on the trust corpus (tests/corpus/), and whether it holds.

    python benchmarks/bench_trust.py [--steps 12]

For each script, a run with the offline ``mutate`` proposer, then: nodes run, proposals refused
for moving the evaluation's data, the most tries of any one failing change, the claimed gain,
and the gain of the exported best.py re-run 3 times (it must reproduce at least half).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "corpus"
RUNS = [  # script, metric, maximize
    ("label_spreading.py", "accuracy", True),
    ("split_by_variable.py", "r2", True),
    ("noisy_training.py", "val_acc", True),
    ("failing_axis.py", "mse", False),
    ("three_changes.py", "score", True),
    ("xgboost_log.py", "eval-logloss", False),
]


def rerun(script: Path, metric: str, cwd: Path) -> float | None:
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=cwd, timeout=300).stdout
    found = re.findall(rf"(?<![\w.\-/]){re.escape(metric)}\s*[:=]\s*([-+\d.eE]+)", out)
    return float(found[-1]) if found else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()

    from autoresearch_jupyter import Protocol, Search
    from autoresearch_jupyter.core import noise
    from autoresearch_jupyter.core.changes import local_hunks
    from autoresearch_jupyter.core.node import Operator, Status

    print(f"{'script':22}{'nodes':>6}{'goalpost':>9}{'max fail':>9}{'sigma':>9}{'claimed':>10}{'rerun':>10}  ok")
    for name, metric, maximize in RUNS:
        code = (CORPUS / name).read_text()
        with tempfile.TemporaryDirectory() as tmp:
            protocol = Protocol.for_script(code, metric=metric, maximize=maximize, time_budget=120)
            search = Search(code=code, protocol=protocol, runs_dir=Path(tmp) / "runs", settings={
                "steps": args.steps, "proposer": {"name": "mutate"},
                "executor": {"name": "local", "workers": 1, "warm": "off"}})
            outcome = search.run()
            tree = outcome.tree
            searched = [n for n in tree if n.operator not in (Operator.BASELINE, Operator.ABLATE)]
            goalpost = sum(1 for n in searched if n.status is Status.REJECTED and "evaluation's data" in (n.reason or ""))
            fails: dict[tuple[str, str, str], int] = {}
            for n in searched:
                if n.status is Status.BUGGY:
                    for h in local_hunks(tree[n.parent].code, n.code):
                        key = (" ".join(h.before[-2:]), h.old, h.new)
                        fails[key] = fails.get(key, 0) + 1
            root, best = tree.root, outcome.best
            claimed = protocol.gain(best.metric, root.metric)
            reruns = [rerun(outcome.run_dir / "best.py", metric, Path(tmp)) for _ in range(3)]
            got = [r for r in reruns if r is not None]
            again = protocol.gain(noise.mean(got), root.metric) if got else float("nan")
            ok = claimed <= 0 or again >= claimed / 2
            print(f"{name:22}{len(searched):6d}{goalpost:9d}{max(fails.values(), default=0):9d}"
                  f"{noise.sigma(tree):9.3g}{claimed:10.4g}{again:10.4g}  {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
