"""The separate grader (--eval): the evaluator's number decides, the node's own is only shown.

A small task throughout: the training script fits a ridge classifier (numpy only, so node runs
are quick), writes its predictions on the validation rows to preds.npy and its weights to
weights.npy, and claims a perfect score. The validation labels live only in --eval-data; the
holdout rows and labels only in --holdout. Real runs: real subprocesses, the real CLI.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from autoresearch_jupyter.cli import main
from autoresearch_jupyter.core.node import Status
from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.evaluation import NOT_PROTECTED, build_spec, contract_text, load_spec
from autoresearch_jupyter.engine.search import Search
from autoresearch_jupyter.executors import get_executor
from autoresearch_jupyter.report import export
from autoresearch_jupyter.report.views import node_record
from autoresearch_jupyter.store.runs import RunDir, list_runs

TRAIN = '''\
import os
import numpy as np
from autoresearch_jupyter import report

src = os.environ.get("AUTORESEARCH_SOURCE_DIR", os.path.dirname(os.path.abspath(__file__)))
X = np.load(os.path.join(src, "X_train.npy"))
y = np.load(os.path.join(src, "y_train.npy"))
Xv = np.load(os.path.join(src, "X_val.npy"))
lam = 300.0
w = np.linalg.solve(X.T @ X + lam * np.eye(X.shape[1]), X.T @ (2 * y - 1))
np.save("preds.npy", (Xv @ w > 0).astype(np.int64))
np.save("weights.npy", w)
with open("runs.txt", "a") as f:  # how often this node's training ran
    f.write("ran\\n")
print("val_acc: 1.0")  # a claim, not a measurement
report(val_acc=1.0)
'''

EVALUATE = '''\
"""Accuracy of preds.npy (one 0/1 label per validation row, int) against labels only I see.

On the holdout split, the linear model in weights.npy is applied to the holdout rows.
"""
import os
import time
import numpy as np

gate = os.environ.get("EVAL_GATE")
if gate and os.path.exists(gate):  # tests: hold the evaluation so the search can be killed here
    time.sleep(60)
if os.environ.get("AUTORESEARCH_RESULT"):  # how often this node was graded (in the evaluator's own folder)
    with open(os.path.join(os.path.dirname(os.environ["AUTORESEARCH_RESULT"]), "calls.txt"), "a") as f:
        f.write("graded\\n")
if os.environ["AUTORESEARCH_EVAL_SPLIT"] == "holdout":
    d = os.path.join(os.environ["AUTORESEARCH_HOLDOUT"], "hold")
    w = np.load("weights.npy", allow_pickle=False)
    pred = (np.load(os.path.join(d, "X_holdout.npy")) @ w > 0).astype(np.int64)
    truth = np.load(os.path.join(d, "y_holdout.npy"))
else:
    pred = np.load("preds.npy", allow_pickle=False)
    truth = np.load(os.path.join(os.environ["AUTORESEARCH_EVAL_DATA"], "secret", "y_val.npy"))
if pred.shape != truth.shape:
    raise ValueError(f"preds.npy has shape {pred.shape}, expected {truth.shape}")
print(f"val_acc: {(pred == truth).mean()}")
'''

# A node that looks for the labels: by the path the user gave, in the run's evaluator folder,
# and by walking the whole folder that holds the task, the data and the runs. It copies what it finds.
ATTACK = '''
import os
found = None
run = os.path.join(os.environ["AUTORESEARCH_NODE_DIR"], "..", "..")
for guess in [{secret!r}, os.path.join(run, "eval", "data", "secret", "y_val.npy")]:
    if os.path.exists(guess):
        found = guess
try:
    print("run.json readable:", "y_val" in open(os.path.join(run, "run.json")).read())
except OSError as err:
    print("run.json readable: no")
if found is None:
    for root, dirs, files in os.walk({top!r}):
        if "y_val.npy" in files:
            found = os.path.join(root, "y_val.npy")
            break
print("attack found:", found)
if found:
    np.save("preds.npy", np.load(found))
'''


def accuracy(task: Path, lam: float) -> float:
    """The graded number the evaluator must report for the script with this ``lam``."""
    X, y, Xv = (np.load(task / n) for n in ("X_train.npy", "y_train.npy", "X_val.npy"))
    w = np.linalg.solve(X.T @ X + lam * np.eye(X.shape[1]), X.T @ (2 * y - 1))
    return float(((Xv @ w > 0).astype(np.int64) == np.load(task.parent / "secret" / "y_val.npy")).mean())


@pytest.fixture
def task(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    w = rng.normal(size=6)

    def rows(n: int) -> tuple[np.ndarray, np.ndarray]:
        X = rng.normal(size=(n, 6))
        return X, (X @ w + 0.8 * rng.normal(size=n) > 0).astype(np.int64)

    folder, secret, hold = tmp_path / "task", tmp_path / "secret", tmp_path / "hold"
    for f in (folder, secret, hold):
        f.mkdir()
    (Xt, yt), (Xv, yv), (Xh, yh) = rows(150), rows(120), rows(120)
    np.save(folder / "X_train.npy", Xt), np.save(folder / "y_train.npy", yt), np.save(folder / "X_val.npy", Xv)
    np.save(secret / "y_val.npy", yv)
    np.save(hold / "X_holdout.npy", Xh), np.save(hold / "y_holdout.npy", yh)
    (folder / "train.py").write_text(TRAIN)
    (tmp_path / "evaluate.py").write_text(EVALUATE)
    return folder


def eval_settings(task: Path, **options) -> dict:
    spec = load_spec(task.parent / "evaluate.py", data=[task.parent / "secret"], holdout=[task.parent / "hold"],
                     **options)
    return spec.to_settings()


def search(task: Path, proposer=None, *, steps: int = 3, executor=None, **eval_options) -> Search:
    code = (task / "train.py").read_text()
    settings = {"steps": steps, "source_dir": str(task), "eval": eval_settings(task, **eval_options),
                "executor": {"name": "local", "workers": 1}}
    return Search(code=code, protocol=Protocol.for_script(code, metric="val_acc", maximize=True, time_budget=30),
                  runs_dir=task.parent / ".autoresearch", settings=settings, proposer=proposer, executor=executor)


def cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "autoresearch_jupyter", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def sandboxed() -> bool:
    """True once nodes run in the bubblewrap sandbox (executors/), which honours Job.hidden_paths."""
    executor = get_executor("local")
    try:
        return bool(getattr(executor, "hides_paths", False))
    finally:
        executor.close()


# ---- the metric is the evaluator's -----------------------------------------------------------


def test_metric_comes_from_the_evaluator_and_a_claimed_score_changes_nothing(task, scripted, caplog):
    claims = scripted([
        ("lam 3", TRAIN.replace("lam = 300.0", "lam = 3.0")),
        ("claim harder", TRAIN.replace('print("val_acc: 1.0")', 'print("val_acc: 1.0\\nval_acc=1.0")')),
        ("worse, but says 1.0", TRAIN.replace("lam = 300.0", "lam = 1e6").replace(
            "np.save(\"preds.npy\", (Xv @ w > 0).astype(np.int64))", "np.save(\"preds.npy\", np.zeros(len(Xv), np.int64))")),
    ])
    with caplog.at_level(logging.WARNING):
        s = search(task, claims)
        outcome = s.run()
    tree = outcome.tree
    assert outcome.state == "finished" and len(tree) == 4
    assert all(n.status is Status.OK for n in tree)
    assert tree[0].metric == pytest.approx(accuracy(task, 300.0)) and tree[0].metric < 1.0
    assert tree[1].metric == pytest.approx(accuracy(task, 3.0))
    assert tree[2].metric == tree[0].metric  # the same model, louder claims: the same grade
    assert tree[3].metric < tree[0].metric and not tree[3].kept
    for node in tree:
        assert node.meta["graded"] is True and node.meta["self_reported"] == 1.0
    assert outcome.best.metric < 1.0
    # the evaluator is fixed in run.json, with its hash; nodes' scripts never contain it
    run = RunDir.open(outcome.run_dir)
    fixed = run.settings["eval"]
    assert fixed["sha256"] == hashlib.sha256(EVALUATE.encode()).hexdigest() and fixed["code"] == EVALUATE
    assert all("AUTORESEARCH_EVAL_DATA" not in n.code for n in tree)
    if not sandboxed():
        assert NOT_PROTECTED in caplog.text  # said once, in one line
        assert caplog.text.count(NOT_PROTECTED) == 1
    # the journal holds the same: a fresh replay agrees
    replay = run.load().tree
    assert [(n.metric, n.meta["self_reported"]) for n in replay] == [(n.metric, 1.0) for n in tree]


def test_report_show_and_records_put_graded_self_reported_and_holdout_side_by_side(task):
    outcome = search(task, steps=2).run()
    tree = outcome.tree
    scored = [n for n in tree if "holdout" in n.meta]
    assert {n.meta["holdout"]["role"] for n in scored} >= {"baseline"}
    assert all(n.meta["holdout"]["state"] == "ok" and 0 < n.meta["holdout"]["metric"] < 1 for n in scored)
    report = export.build_report(tree, outcome.protocol, run_id=outcome.run_id, state=outcome.state)
    text = export.render_report_text(report)
    assert "## Graded by the separate evaluator" in text
    assert "val_acc (graded)  self-reported  holdout" in text
    base = tree[0]
    row = next(line for line in text.splitlines() if line.startswith("0 "))
    assert f"{base.metric:.6g}" in row and f"{base.meta['holdout']['metric']:.6g}" in row and " 1 " in row + " "
    assert report.to_dict()["grading"]["has_holdout"] is True
    shown = export.render_node_text(base, tree, outcome.protocol)
    assert "self-reported (ignored): 1" in shown and "holdout val_acc:" in shown
    rec = node_record(base, tree.nodes)
    assert rec["graded"]["self_reported"] == 1.0 and rec["graded"]["holdout"] == base.meta["holdout"]["metric"]
    assert rec["metric"] == base.metric and "val_acc:" in rec["graded"]["eval_tail"]


def test_evaluator_failures_are_their_own_state_not_a_bug_of_the_node(task, scripted):
    wrong_shape = TRAIN.replace('np.save("preds.npy", (Xv @ w > 0).astype(np.int64))',
                                'np.save("preds.npy", np.zeros(5, np.int64))')  # not a goalpost slice
    crashes = TRAIN.replace("lam = 300.0", "lam = 300.0\nraise SystemExit(3)")
    outcome = search(task, scripted([("short preds", wrong_shape), ("crash", crashes)]), steps=2).run()
    bad, crashed = outcome.tree[1], outcome.tree[2]
    assert bad.status is Status.EVAL_FAILED and bad.metric is None and bad.kept is False
    assert bad.reason.startswith("the evaluator failed: ValueError: preds.npy has shape (5,)")
    assert bad.meta["self_reported"] == 1.0 and bad.meta["eval"]["state"] == "failed"
    assert crashed.status is Status.BUGGY and "eval" not in crashed.meta  # the node's own failure: not graded
    text = export.render_report_text(export.build_report(outcome.tree, outcome.protocol))
    assert "1 the evaluator could not grade" in text and "eval_failed 1" in text


def test_evaluator_time_budget_is_enforced(task, scripted):
    slow = EVALUATE.replace("import numpy as np\n", "import numpy as np\nif os.path.exists('slow'): time.sleep(30)\n", 1)
    (task.parent / "evaluate.py").write_text(slow)
    started = time.monotonic()
    outcome = search(task, scripted([("make the evaluator slow", TRAIN + "open('slow', 'w').close()\n")]),
                     steps=1, timeout=1.5).run()
    assert time.monotonic() - started < 25
    node = outcome.tree[1]
    assert node.status is Status.EVAL_FAILED and node.meta["eval"]["state"] == "timeout"
    assert node.reason == "the evaluator timed out after 1.5 s (raise --eval-timeout or make it faster)"


# ---- data the node never sees ---------------------------------------------------------------


@pytest.mark.skipif(not sandboxed(), reason="needs the bubblewrap sandbox of executors/ (Job.hidden_paths): "
                    "without it a node can read any file its user can")
def test_sandbox_a_node_that_looks_for_the_labels_finds_nothing(task, scripted):  # SANDBOX-DEPENDENT
    secret = str(task.parent / "secret" / "y_val.npy")
    attack = TRAIN.replace("with open", ATTACK.format(secret=secret, top=str(task.parent)) + "with open", 1)
    outcome = search(task, scripted([("read the labels", attack)]), steps=1).run()
    node = outcome.tree[1]
    assert "attack found: None" in node.output_tail
    assert node.status is Status.OK and node.metric == pytest.approx(accuracy(task, 300.0)) and node.metric < 1.0


def test_without_a_sandbox_the_same_attack_is_what_the_warning_is_about(task, scripted):
    """Documents the unprotected case: the grader still decides, but nothing hides the labels."""
    if sandboxed():
        pytest.skip("nodes are sandboxed here; see the test above")
    secret = str(task.parent / "secret" / "y_val.npy")
    attack = TRAIN.replace("with open", ATTACK.format(secret=secret, top=str(task.parent)) + "with open", 1)
    outcome = search(task, scripted([("read the labels", attack)]), steps=1).run()
    node = outcome.tree[1]
    assert "attack found: /" in node.output_tail and "y_val.npy" in node.output_tail
    assert node.metric == 1.0  # a node that can read the labels can copy them: hence the warning
    assert node.meta["holdout"]["metric"] < 1.0  # ... and the holdout, which it never saw, shows it


def test_eval_data_is_hidden_from_nodes_jobs_and_holdout_from_validation(task):
    s = search(task, steps=0)
    run = s.prepare()
    grader = s._executor.grader
    hidden = {str(p) for p in grader.node_hidden}
    assert str(run.path.resolve() / "eval") in hidden
    assert str((task.parent / "secret").resolve()) in hidden and str((task.parent / "hold").resolve()) in hidden
    job = grader.eval_job(0)
    assert job.cwd == (run.path / "nodes" / "0").resolve() and job.env["AUTORESEARCH_EVAL_SPLIT"] == "validation"
    assert (task.parent / "hold").resolve() in job.hidden_paths and "AUTORESEARCH_HOLDOUT" not in job.env
    assert (task.parent / "secret").resolve() in job.extra_ro_binds
    late = grader.eval_job(0, "holdout")
    assert late.hidden_paths == () and late.env["AUTORESEARCH_HOLDOUT"].endswith("eval/holdout")
    assert (run.path / "eval" / "data" / "secret" / "y_val.npy").exists()  # the evaluator's snapshot
    s._executor.close()


# ---- the CLI, as a new user runs it ---------------------------------------------------------


def test_cli_run_with_eval_holdout_then_evaluate_later(task):
    root = task.parent
    done = cli("run", "task/train.py", "--metric", "val_acc", "--maximize", "--steps", "3", "--eval", "evaluate.py",
               "--eval-data", "secret", "--holdout", "hold", "--name", "graded", cwd=root)
    assert done.returncode == 0, done.stderr
    assert "val_acc (graded)  self-reported  holdout" in done.stdout
    [summary] = list_runs(root / ".autoresearch")
    assert summary.best_metric < 1.0
    shown = cli("show", "graded", "--node", "0", cwd=root)
    assert "graded by the evaluator: val_acc" in shown.stdout and "self-reported (ignored): 1" in shown.stdout
    # later: a new holdout, scored for the baseline only
    other = root / "hold2" / "hold"
    other.mkdir(parents=True)
    for name in ("X_holdout.npy", "y_holdout.npy"):
        np.save(other / name, np.load(root / "hold" / name)[:40])
    later = cli("evaluate", "graded", "--holdout", str(other), "--top", "0", "--json", cwd=root)
    assert later.returncode == 0, later.stderr
    scores = json.loads(later.stdout)["scores"]
    assert {row["role"] for row in scores} <= {"baseline", "best"} and all(row["state"] == "ok" for row in scores)
    tree = RunDir.open(summary.path).load().tree
    assert tree[0].meta["holdout"]["metric"] == next(r["metric"] for r in scores if r["node"] == 0)
    # export: the best script and the evaluator beside it, reproducible on their own
    out = root / "best.py"
    exported = cli("export", "graded", "-o", str(out), cwd=root)
    assert exported.returncode == 0, exported.stderr
    assert (root / "best_evaluate.py").exists()
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "AUTORESEARCH_SOURCE_DIR": str(task)}
    subprocess.run([sys.executable, str(out)], cwd=elsewhere, check=True, capture_output=True, env=env, timeout=60)
    graded = subprocess.run([sys.executable, str(root / "best_evaluate.py")], cwd=elsewhere, capture_output=True,
                            text=True, env=env, timeout=60)
    assert graded.returncode == 0, graded.stderr
    assert f"val_acc: {summary.best_metric}" in graded.stdout
    single = cli("export", "graded", "-o", str(root / "one.py"), "--with-eval", cwd=root)
    assert single.returncode == 0, single.stderr
    both = subprocess.run([sys.executable, str(root / "one.py")], cwd=elsewhere, capture_output=True, text=True,
                          env=env, timeout=60)
    assert both.stdout.strip().splitlines()[-1] == f"val_acc: {summary.best_metric}"


@pytest.mark.parametrize("evaluator, words", [
    (None, ["nope.py: no such evaluator script"]),
    ("x = (\n", ["is not valid Python: line 1"]),
    ("print('all good')\n", ["on the baseline, the evaluator printed no 'val_acc: <number>' line"]),
    ("import numpy as np\nnp.load('predictions.npy')\n", ["on the baseline, the evaluator failed: FileNotFoundError",
                                                          "'predictions.npy'"]),
])
def test_bad_evaluators_stop_at_the_baseline_with_one_line(task, capsys, evaluator, words):
    root = task.parent
    path = root / ("nope.py" if evaluator is None else "bad_eval.py")
    if evaluator is not None:
        path.write_text(evaluator)
    rc = main(["run", str(task / "train.py"), "--metric", "val_acc", "--maximize", "--steps", "2", "--eval", str(path),
               "--runs-dir", str(root / ".autoresearch")])
    err = capsys.readouterr().err
    assert rc == 1
    line = next(ln for ln in err.splitlines() if ln.startswith("autoresearch: error:"))
    for word in words:
        assert word in line, err
    assert "Traceback" not in err.split("--- evaluator output tail ---")[0]
    runs = list_runs(root / ".autoresearch")
    assert all(r.nodes <= 1 for r in runs)  # nothing ran after the baseline


def test_missing_eval_data_is_one_line_before_anything_runs(task, capsys):
    root = task.parent
    rc = main(["run", str(task / "train.py"), "--metric", "val_acc", "--maximize", "--eval", str(root / "evaluate.py"),
               "--eval-data", str(root / "labels_missing"), "--runs-dir", str(root / ".autoresearch")])
    assert rc == 1
    assert capsys.readouterr().err.strip() == f"autoresearch: error: --eval-data {root / 'labels_missing'}: no such file or folder"
    assert not (root / ".autoresearch").exists()


# ---- resume ---------------------------------------------------------------------------------


def test_kill_9_between_a_nodes_run_and_its_evaluation_redoes_only_the_evaluation(task):
    root = task.parent
    gate = root / "gate"
    gate.touch()
    proc = subprocess.Popen(
        [sys.executable, "-m", "autoresearch_jupyter", "run", "task/train.py", "--metric", "val_acc", "--maximize",
         "--steps", "2", "--eval", "evaluate.py", "--eval-data", "secret", "--name", "k9",
         "--replicates", "1",  # one training run per node: the count below is about resume
         "--allow-path", str(root)],  # the sandbox hides /tmp: the evaluator must see the gate file
        cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "EVAL_GATE": str(gate)},
    )
    started = list((root / ".autoresearch").glob("*/eval/nodes/0/eval.log"))
    deadline = time.monotonic() + 60
    while not started and time.monotonic() < deadline:
        time.sleep(0.05)
        started = list((root / ".autoresearch").glob("*/eval/nodes/0/eval.log"))
    assert started, "the evaluation of the baseline did not start"
    time.sleep(0.3)  # inside its sleep
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    [summary] = list_runs(root / ".autoresearch")
    run = RunDir.open(summary.path)
    assert run.load().state == "interrupted" and run.load().tree[0].status is Status.RUNNING
    assert (run.path / "nodes" / "0" / "runs.txt").read_text() == "ran\n"
    gate.unlink()
    time.sleep(0.3)
    resumed = cli("resume", "k9", cwd=root)
    assert resumed.returncode == 0, resumed.stderr
    tree = run.load().tree
    assert all(n.status is Status.OK for n in tree) and len(tree) == 3
    assert tree[0].metric == pytest.approx(accuracy(task, 300.0)) and tree[0].meta["self_reported"] == 1.0
    assert (run.path / "nodes" / "0" / "runs.txt").read_text() == "ran\n", "the baseline's training ran again"
    calls = (run.path / "eval" / "nodes" / "0" / "calls.txt").read_text().split()
    assert calls == ["graded"]  # the killed evaluation never got to count; the redone one did


# ---- the proposer knows the contract, not the answers ---------------------------------------


def test_contract_names_what_the_evaluator_reads_and_never_its_data(task):
    spec = build_spec(code='"""Reads preds.npy and scores it against y_val.npy."""\nimport numpy as np\n'
                      'p = np.load("preds.npy")\ny = np.load("/data/secret/y_val.npy")\nz = np.load("y_val.npy")\n',
                      source="e.py", data=[task.parent / "secret"], use=("y_true",))
    text = contract_text(spec)
    assert "preds.npy" in text and "numbers your script prints are ignored" in text
    assert "/data/secret" not in text and "secret" not in text and "y_true" not in text


def test_llm_prompt_carries_the_contract(task, monkeypatch):
    sys.path.insert(0, str(Path(__file__).parent))
    from openai_server import FakeOpenAI, clear_openai_env

    clear_openai_env(monkeypatch, "sk-test-eval")
    with FakeOpenAI(default="PLAN: nothing\n\nno code here") as server:
        code = (task / "train.py").read_text()
        settings = {"steps": 1, "source_dir": str(task), "eval": eval_settings(task),
                    "proposer": {"name": "llm", "model": "m", "base_url": server.url, "llm_retries": 0}}
        Search(code=code, protocol=Protocol.for_script(code, metric="val_acc", maximize=True),
               runs_dir=task.parent / ".autoresearch", settings=settings).run()
        prompt = server.requests[0]["messages"][1]["content"]
    assert "a separate, fixed evaluator runs after your script" in prompt
    assert "preds.npy" in prompt and "weights.npy" in prompt
    assert "y_val" not in prompt and str(task.parent / "secret") not in prompt


def test_a_node_that_links_its_output_to_the_labels_is_not_evaluated(task, scripted):
    """In the sandbox the node cannot read the labels, but a symlink it leaves would be followed
    by the evaluator, which can: outputs that lead outside the node's folder are refused."""
    secret = task.parent / "secret" / "y_val.npy"
    link = TRAIN.replace('np.save("preds.npy", (Xv @ w > 0).astype(np.int64))',
                         f'os.symlink({str(secret)!r}, "preds.npy")')
    outcome = search(task, scripted([("let the evaluator read the labels", link)]), steps=1).run()
    node = outcome.tree[1]
    assert node.status is Status.EVAL_FAILED and node.metric is None
    assert node.reason.startswith("not evaluated: the node left preds.npy, a link that leads outside its folder")
    assert outcome.best.id == 0


def test_an_evaluator_that_calls_report_wins_over_what_it_prints(task):
    (task.parent / "evaluate.py").write_text(
        "import os\nimport numpy as np\nfrom autoresearch_jupyter import report\n"
        "pred = np.load('preds.npy', allow_pickle=False)\n"
        "truth = np.load(os.path.join(os.environ['AUTORESEARCH_EVAL_DATA'], 'secret', 'y_val.npy'))\n"
        "print('val_acc: 7')\nreport(val_acc=float((pred == truth).mean()))\n")
    outcome = search(task, steps=0).run()
    assert outcome.tree[0].metric == pytest.approx(accuracy(task, 300.0))
    assert outcome.tree[0].meta["self_reported"] == 1.0


WRAPPER = '''#!{python}
"""Stand-in for the sandbox of executors/ until it lands: runs a node job under bubblewrap with
TEST_HIDE's paths made empty (folders) or /dev/null (files), as Job.hidden_paths asks; evaluator
jobs (AUTORESEARCH_EVAL_SPLIT set) run as they are."""
import os, sys
python, args = {python!r}, sys.argv[1:]
if "AUTORESEARCH_EVAL_SPLIT" in os.environ:
    os.execv(python, [python, *args])
node_dir = os.environ["AUTORESEARCH_NODE_DIR"]
cmd = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--bind", node_dir, node_dir]
for path in os.environ["TEST_HIDE"].split(os.pathsep):
    cmd += ["--tmpfs", path] if os.path.isdir(path) else ["--ro-bind", "/dev/null", path]
os.execvp("bwrap", cmd + ["--chdir", os.getcwd(), "--unshare-pid", "--die-with-parent", python, *args])
'''


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap")
def test_hidden_paths_are_enough_the_attack_finds_nothing_and_the_evaluator_still_reads(task, scripted,
                                                                                        monkeypatch):
    """What the sandbox must do with Job.hidden_paths, checked with real bwrap: hiding exactly the
    grader's node_hidden paths defeats the attack by path, through the run folder and by walking."""
    from autoresearch_jupyter.executors.local import LocalExecutor

    wrapper = task.parent / "sandboxed-python"
    wrapper.write_text(WRAPPER.format(python=sys.executable))
    wrapper.chmod(0o755)
    probe = subprocess.run(["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
                            "true"], capture_output=True)
    if probe.returncode:
        pytest.skip(f"bwrap cannot run here: {probe.stderr.decode().strip()[:100]}")
    secret = str(task.parent / "secret" / "y_val.npy")
    attack = TRAIN.replace("with open", ATTACK.format(secret=secret, top=str(task.parent)) + "with open", 1)
    s = search(task, scripted([("read the labels", attack)]), steps=1,
               executor=LocalExecutor(python=wrapper, warm="off", sandbox="off"))  # the wrapper is the sandbox here
    run = s.prepare()
    hidden = s._executor.grader.node_hidden
    record = run.path.resolve()
    assert {str(p) for p in hidden} == {str(record / "eval"), str((task.parent / "secret").resolve()),
                                        str((task.parent / "hold").resolve()), str(record / "run.json"),
                                        str(record / "journal.jsonl")}
    monkeypatch.setenv("TEST_HIDE", os.pathsep.join(map(str, hidden)))
    outcome = s.run()
    base, node = outcome.tree[0], outcome.tree[1]
    assert base.status is Status.OK and base.metric == pytest.approx(accuracy(task, 300.0))
    assert "attack found: None" in node.output_tail, node.output_tail
    assert "run.json readable: True" not in node.output_tail  # the evaluator's code and data paths stay hidden
    assert node.status is Status.OK and node.metric == base.metric < 1.0
