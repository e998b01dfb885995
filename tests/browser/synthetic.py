"""Synthetic search trees of any size, shaped like real runs, for view tests and benchmarks.

Each node changes one hyper-parameter line of its parent's ~60-line script, so codes, diffs,
output tails and statuses have realistic sizes; the shape follows a greedy tree search
(mostly children of the best node, some backtracks, failed leaves).
"""

from __future__ import annotations

import random
import time

from autoresearch_jupyter.core.diffs import unified_diff
from autoresearch_jupyter.core.node import Node, Operator, Status, Usage
from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.core.tree import Tree

PROTOCOL = Protocol(metric="val_acc", maximize=True, time_budget=60, seed=0)
PARAMS = ["lr", "momentum", "weight_decay", "dropout", "hidden", "epochs", "batch_size", "warmup"]


def base_script() -> str:
    lines = ["import os", "import numpy as np", "", "# autoresearch: freeze",
             "SEED = int(os.environ.get('AUTORESEARCH_SEED', '0'))", "# autoresearch: end", ""]
    lines += [f"{p} = {0.1 * (i + 1):.3f}  # search: float(0, 1)" for i, p in enumerate(PARAMS)]
    lines += ["", "def train(X, y):"]
    lines += [f"    step_{i} = np.tanh(X * lr + {i}) * momentum  # layer {i}" for i in range(40)]
    lines += ["    return float(np.mean(step_0))", "", "print(f'val_acc: {train(np.ones(3), None):.4f}')", ""]
    return "\n".join(lines)


def _tail(i: int, status: Status) -> str:
    lines = [f"epoch {e}: loss {1 / (e + 1 + i % 7):.4f} val_acc {0.8 + e / 100:.4f}" for e in range(12)]
    if status is Status.BUGGY:
        lines += ["Traceback (most recent call last):", '  File "train.py", line 52, in <module>',
                  "    train(X, y)", f"ValueError: shapes (3,) and ({i},) not aligned"]
    else:
        lines.append(f"val_acc: {0.8 + (i % 97) / 1000:.4f}")
    return "\n".join(lines) + "\n"


def synthetic_tree(n: int, *, seed: int = 0, running: int = 0, usage: bool = False) -> Tree:
    """A finished-looking tree of ``n`` nodes (the last ``running`` of them still running)."""
    rng = random.Random(seed)
    tree = Tree()
    code = base_script()
    t0 = time.time() - 2 * n - 30  # so a 'running' tree shows a plausible elapsed time
    tree.add(Node(id=0, parent=None, operator=Operator.BASELINE, plan="baseline", code=code,
                  status=Status.OK, metric=0.8, kept=True, exit_code=0, exec_time=1.0,
                  output_tail=_tail(0, Status.OK), created_at=t0, started_at=t0, finished_at=t0 + 1))
    best = 0
    good = [0]
    kinds = [Status.OK] * 7 + [Status.BUGGY] * 2 + [Status.TIMEOUT, Status.REJECTED]
    for i in range(1, n):
        parent = best if rng.random() < 0.7 else rng.choice(good)
        pcode = tree[parent].code
        lines = pcode.split("\n")
        k = 7 + rng.randrange(len(PARAMS))
        name = PARAMS[k - 7]
        lines[k] = f"{name} = {rng.random():.4f}  # search: float(0, 1)"
        new = "\n".join(lines)
        status = Status.RUNNING if i >= n - running else rng.choice(kinds)
        metric = kept = None
        if status is Status.OK:
            metric = round(tree[parent].metric + rng.uniform(-0.02, 0.015), 4)  # type: ignore[operator]
            kept = metric > tree[parent].metric  # type: ignore[operator]
        reason = {Status.BUGGY: f"ValueError: shapes (3,) and ({i},) not aligned",
                  Status.TIMEOUT: "timed out after 60 s",
                  Status.REJECTED: "duplicate of an earlier node"}.get(status)
        done = status not in (Status.RUNNING, Status.REJECTED)
        node = Node(
            id=i, parent=parent, operator=Operator.IMPROVE, plan=f"set {name} to {lines[k].split()[2]} "
            f"to see whether a {'smaller' if i % 2 else 'larger'} {name} helps the validation accuracy",
            code=new, diff=unified_diff(pcode, new, f"node {parent}", "proposed"), status=status,
            metric=metric, kept=kept, reason=reason, exit_code=(1 if status is Status.BUGGY else 0) if done else None,
            exec_time=1.0 + (i % 5) / 10 if done else None, output_tail=_tail(i, status) if done else "",
            created_at=t0 + 2 * i, started_at=t0 + 2 * i, finished_at=t0 + 2 * i + 1.5 if status is not Status.RUNNING else None,
            usage=Usage(prompt_tokens=900 + i, completion_tokens=150, cost=0.0004) if usage else None,
        )
        tree.add(node)
        if status is Status.OK and kept:
            good.append(i)
            if metric > tree[best].metric:  # type: ignore[operator]
                best = i
    return tree


# JavaScript run in a page made by ``viewstate.standalone_html``: times a cold mount of the
# whole tree (DOM built and laid out), an incremental update of one node, and a click.
MEASURE_JS = """async () => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const { store, createStore, mountTreeView } = window.arView;
  const el = document.createElement("div");
  document.body.append(el);
  const copy = createStore();
  copy.setMeta(store.meta);
  copy.applySnapshot({ seq: store.seq, nodes: [...store.nodes.values()] });
  copy.ui.fold = false;  // every row on screen: the worst case
  const t0 = performance.now();
  mountTreeView(el, copy);
  el.getBoundingClientRect();
  document.body.offsetHeight;
  const mount = performance.now() - t0;
  const rows = el.querySelectorAll(".ar-row").length;
  const last = [...copy.nodes.values()].pop();
  const t1 = performance.now();
  copy.applyUpdates({ seq: copy.seq + 1, from: copy.seq + 1,
                      nodes: [{ ...last, v: copy.seq + 1, status: "ok", kind: "kept", metric: 0.99 }] });
  await frame();
  document.body.offsetHeight;
  const update = performance.now() - t1;
  const t2 = performance.now();
  el.querySelector('.ar-row[data-id="' + last.id + '"]').click();
  await frame();
  document.body.offsetHeight;
  const click = performance.now() - t2;
  const shown = el.querySelector(".ar-insp .ar-diff") !== null;
  el.remove();
  return { mount_ms: mount, update_ms: update, click_ms: click, rows, inspector_shown: shown };
}"""
