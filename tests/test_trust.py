"""Results you can trust on other people's scripts: every claim checked with real runs.

The scripts under tests/corpus/ are written in the style of public gallery examples (data cut by a
variable, no seed, xgboost-style logs, a frozen evaluation, plots after the metric).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch_jupyter import Protocol, Search
from autoresearch_jupyter.core import noise
from autoresearch_jupyter.core.errors import AmbiguousMetricError
from autoresearch_jupyter.core.node import Operator, Status
from autoresearch_jupyter.report import export
from autoresearch_jupyter.report.bestfile import BestScriptWriter
from autoresearch_jupyter.store.runs import RunDir

CORPUS = Path(__file__).resolve().parent / "corpus"
LOCAL = {"name": "local", "workers": 1, "warm": "off"}


def corpus(name: str) -> str:
    return (CORPUS / name).read_text()


def search(tmp_path, code, scripted_proposer, *, metric, maximize, steps=20, protocol=None, **settings):
    """A search on ``code``; ``scripted_proposer`` None means the one named in settings["proposer"]."""
    protocol = protocol or Protocol.for_script(code, metric=metric, maximize=maximize, time_budget=60)
    return Search(code=code, protocol=protocol, runs_dir=tmp_path / "runs", proposer=scripted_proposer,
                  settings={"steps": steps, "executor": LOCAL, **settings}, callbacks=[BestScriptWriter()])


def cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "autoresearch_jupyter", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=env)


def one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode != 0, proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


# ---- the evaluation's data is a goalpost ---------------------------------------------------


@pytest.mark.parametrize("name,old,new", [
    ("label_spreading.py", "n_labeled_points = 40", "n_labeled_points = 240"),
    ("split_by_variable.py", "n_split = 300", "n_split = 350"),
    ("split_by_variable.py", "n_samples=400", "n_samples=800"),
])
def test_a_proposal_that_changes_the_evaluation_data_is_refused_before_it_runs(tmp_path, scripted, name, old, new):
    code = corpus(name)
    metric = "accuracy" if name.startswith("label") else "r2"
    moved = code.replace(old, new)
    tunable = code.replace("alpha = 30.0", "alpha = 3.0") if "alpha" in code else code.replace(
        "gamma=0.25", "gamma=0.5")
    outcome = search(tmp_path, code, scripted([("moves the goalpost", moved), ("a real change", tunable)]),
                     metric=metric, maximize=True).run()
    refused, ran = outcome.tree[1], outcome.tree[2]
    assert refused.status is Status.REJECTED and "evaluation's data" in refused.reason, refused.reason
    assert old.split("=")[-1].strip() in refused.reason and new.split("=")[-1].strip() in refused.reason
    assert not (outcome.run_dir / "nodes" / "1" / "output.log").exists()  # never ran
    assert ran.status is Status.OK  # literals that do not decide the data stay tunable


def test_search_comment_declares_a_goalpost_tunable(tmp_path, scripted):
    code = corpus("split_by_variable.py").replace("n_split = 300", "n_split = 300  # search: int(200, 350)")
    moved = code.replace("n_split = 300", "n_split = 320")
    outcome = search(tmp_path, code, scripted([("user said tunable", moved)]), metric="r2", maximize=True).run()
    assert outcome.tree[1].status is Status.OK


def test_the_offline_proposer_never_runs_a_node_with_other_evaluation_data(tmp_path):
    code = corpus("split_by_variable.py")
    outcome = search(tmp_path, code, None, metric="r2", maximize=True, steps=10,
                     proposer={"name": "mutate"}).run()
    ran = [n for n in outcome.tree if n.status is not Status.REJECTED]
    assert len(ran) > 3
    for node in ran:
        assert "n_split = 300" in node.code and "n_samples=400" in node.code, node.plan


# ---- noise floor -------------------------------------------------------------------------------


def _noisy_proposals():
    def change(old, new):
        return lambda parent: (f"{old} -> {new}", parent.replace(old, new))

    return [change("momentum = 0.9", "momentum = 0.95"), change("dropout = 0.1", "dropout = 0.2"),
            change("momentum = 0.9", "momentum = 0.8"), change("dropout = 0.1", "dropout = 0.05"),
            change("width = 4", "width = 8"), change("momentum = 0.9", "momentum = 0.99"),
            change("dropout = 0.1", "dropout = 0.3")]


def test_noisy_script_finds_the_true_effect_and_claims_no_noise(tmp_path, scripted):
    code = corpus("noisy_training.py")
    outcome = search(tmp_path, code, scripted(_noisy_proposals()), metric="val_acc", maximize=True,
                     ablate=False).run()
    tree, protocol = outcome.tree, outcome.protocol
    root = tree.root
    assert len(root.samples) == 5 and noise.sigma(tree) > 0.002  # noisy: the baseline ran 5 times
    best = outcome.best
    assert best is not None and "width = 8" in best.code, best.plan  # the true effect
    assert len(best.samples) == 5 and best.new_best  # confirmed by as many runs as the baseline
    for node in tree:  # no noise claimed as a gain: useless changes never became the best
        if node.new_best:
            assert "width = 8" in node.code, node.plan
    report = export.build_report(tree, protocol)
    assert report.trust.noisy and report.trust.significant is True
    text = export.render_report_text(report)
    assert "±" in text and "significant" in text
    # the claimed gain reproduces: re-run the exported script 3 times
    claimed = protocol.gain(best.metric, root.metric)
    reruns = [_metric_of(outcome.run_dir / "best.py", "val_acc", tmp_path) for _ in range(3)]
    assert noise.mean(reruns) - root.metric >= claimed / 2, (reruns, root.metric, claimed)
    # the protocol in run.json keeps the replicate policy; resume reads sigma back from the journal
    run = RunDir.open(outcome.run_dir)
    assert json.loads((outcome.run_dir / "run.json").read_text())["protocol"]["replicates"] == "auto"
    assert noise.sigma(run.load().tree) == pytest.approx(noise.sigma(tree))


def test_pure_noise_is_never_reported_as_a_gain(tmp_path):
    code = corpus("noisy_training.py").replace("0.05 if width >= 8 else 0.0", "0.0")
    outcome = search(tmp_path, code, None, metric="val_acc", maximize=True, steps=10,
                     proposer={"name": "mutate"}).run()
    trust = export.build_report(outcome.tree, outcome.protocol).trust
    assert trust.noisy and trust.new_bests == 0 and outcome.best.id == 0


def test_a_deterministic_script_pays_exactly_one_extra_baseline_run(tmp_path, scripted):
    code = corpus("split_by_variable.py")
    changes = [(f"alpha {a}", code.replace("alpha = 30.0", f"alpha = {a}")) for a in (10.0, 3.0, 1.0)]
    outcome = search(tmp_path, code, scripted(changes), metric="r2", maximize=True, ablate=False).run()
    logs = sorted(str(p.relative_to(outcome.run_dir / "nodes")) for p in (outcome.run_dir / "nodes").glob("*/output*.log"))
    assert logs == ["0/output-run2.log", "0/output.log", "1/output.log", "2/output.log", "3/output.log"]
    assert len(outcome.tree.root.samples) == 2 and noise.sigma(outcome.tree) == 0
    assert all(not n.samples for n in outcome.tree if n.id)


def _metric_of(script: Path, metric: str, cwd: Path) -> float:
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=cwd, timeout=60).stdout
    return float(re.findall(rf"{metric}: ([-\d.e]+)", out)[-1])


# ---- honest labels ---------------------------------------------------------------------------------


def test_new_best_and_improved_on_parent_are_told_apart_and_a_tie_is_never_kept(tmp_path, scripted):
    code = corpus("three_changes.py")
    proposals = [("b up", code.replace("b = 1", "b = 2")),
                 ("tie", code.replace("b = 1", "b = 2").replace("score = max", "score = 0 + max"))]
    outcome = search(tmp_path, code, scripted(proposals), metric="score", maximize=True, ablate=False).run()
    better, tie = outcome.tree[1], outcome.tree[2]
    assert better.kept and better.new_best is True
    assert tie.metric == better.metric and tie.kept is False and tie.new_best is False
    replay = RunDir.open(outcome.run_dir).load().tree
    assert replay[1].new_best is True and replay[2].new_best is False  # journaled
    text = export.render_report_text(export.build_report(outcome.tree, outcome.protocol))
    assert "new best: 1 times" in text and "improved on parent: 1" in text


# ---- ablation --------------------------------------------------------------------------------------


def test_ablation_keeps_only_the_change_that_matters_and_the_export_reproduces(tmp_path, scripted):
    code = corpus("three_changes.py")
    step1 = code.replace("b = 1", "b = 2")
    step2 = step1.replace("c = 1", "c = 2")
    step3 = step2.replace("a = 1", "a = 5")
    outcome = search(tmp_path, code, scripted([("b", step1), ("c", step2), ("a", step3)]),
                     metric="score", maximize=True).run()
    best = outcome.best
    assert best.id == 3 and best.metric == 50 and [n.id for n in outcome.tree.path(3)] == [0, 1, 2, 3]
    ablations = [n for n in outcome.tree if n.operator is Operator.ABLATE]
    assert ablations and all(n.kept is False for n in ablations)
    report = export.build_report(outcome.tree, outcome.protocol)
    verdicts = {row.node_id: row.verdict for row in report.trust.ablation}
    assert verdicts[1].startswith("dropped") and verdicts[2].startswith("dropped") and verdicts[3] == "kept"
    effects = {row.node_id: row.effect for row in report.trust.ablation}
    # greedy: b and c were dropped first, so leaving a out as well falls back to the baseline (10)
    assert effects[3] == 40 and effects[1] == 0 and effects[2] == 0
    exported = (outcome.run_dir / "best.py").read_text()
    assert "a = 5" in exported and "b = 1" in exported and "c = 1" in exported
    assert _metric_of(outcome.run_dir / "best.py", "score", tmp_path) == 50
    text = export.render_report_text(report)
    assert "Which changes mattered" in text and "change -> effect" in text
    replay = RunDir.open(outcome.run_dir).load().tree  # ablation nodes are journaled like any other
    assert [n.id for n in replay if n.operator is Operator.ABLATE] == [n.id for n in ablations]
    assert noise.minimal_best(replay, outcome.protocol).id != best.id


def test_ablate_command_later_and_on_a_run_without_best(tmp_path):
    (tmp_path / "three.py").write_text(corpus("three_changes.py"))
    proc = cli("run", "three.py", "--metric", "score", "--maximize", "--steps", "6", "--no-ablate",
               "--proposer", "mutate", "--name", "later", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    run = RunDir.open(next((tmp_path / ".autoresearch").glob("*")))
    assert not [n for n in run.load().tree if n.operator is Operator.ABLATE]
    proc = cli("ablate", "later", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    tree = run.load().tree
    best = tree.best(run.protocol)
    if len(tree.path(best.id)) > 2:
        assert any(n.operator is Operator.ABLATE for n in tree)
    assert "Which changes mattered" in proc.stdout
    # a run whose best is its baseline: one line, non-zero exit, nothing rewritten
    (tmp_path / "flat.py").write_text("x = 1\nprint('score: 1')\n")
    assert cli("run", "flat.py", "--metric", "score", "--maximize", "--steps", "2", "--name", "flat",
               cwd=tmp_path).returncode == 0
    journal = next(p for p in (tmp_path / ".autoresearch").glob("*/journal.jsonl") if "flat" in
                   (p.parent / "run.json").read_text())
    before = journal.read_bytes()
    one_line_error(cli("ablate", "flat", cwd=tmp_path), "nothing to ablate")
    assert journal.read_bytes() == before


# ---- the metric is read exactly -------------------------------------------------------------------


def test_xgboost_log_with_an_ambiguous_metric_stops_at_the_baseline(tmp_path):
    (tmp_path / "xgb.py").write_text(corpus("xgboost_log.py"))
    proc = cli("run", "xgb.py", "--metric", "logloss", "--minimize", "--steps", "2", cwd=tmp_path)
    line = one_line_error(proc, "eval-logloss", "train-logloss", "did you mean")
    assert "ambiguous" in line
    proc = cli("run", "xgb.py", "--metric", "eval-logloss", "--minimize", "--steps", "0", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    expected = float(re.findall(r"eval-logloss:([\d.]+)", subprocess.run(
        [sys.executable, "xgb.py"], capture_output=True, text=True, cwd=tmp_path).stdout)[-1])
    assert json.loads(proc.stdout)["data"]["baseline_metric"] == expected


def test_ambiguous_metric_raises_from_the_api(tmp_path, scripted):
    with pytest.raises(AmbiguousMetricError, match="eval-error or train-error"):
        search(tmp_path, corpus("xgboost_log.py"), scripted([]), metric="error", maximize=False).run()


# ---- no metric from outside the evaluation -----------------------------------------------------


@pytest.mark.parametrize("forged", [
    'print("val_acc: 0.9999")',
    'print(f"val_acc: {0.9999}")',
    "from autoresearch_jupyter import report\nreport(val_acc=0.9999)",
    'print("val" + "_acc: 0.9999")',
])
def test_a_metric_printed_outside_frozen_code_is_refused(tmp_path, scripted, forged):
    code = corpus("frozen_evaluation.py")
    honest = code.replace("depth = 3", "depth = 4")
    outcome = search(tmp_path, code, scripted([("forge", code + forged + "\n"), ("honest", honest)]),
                     metric="val_acc", maximize=True, ablate=False).run()
    forged_node, honest_node = outcome.tree[1], outcome.tree[2]
    assert forged_node.status is Status.REJECTED and "outside frozen code" in forged_node.reason
    assert honest_node.status is Status.OK and honest_node.metric == 1.0


def test_a_baseline_that_prints_its_metric_itself_may_keep_doing_so(tmp_path, scripted):
    code = corpus("split_by_variable.py")
    change = code.replace('print(f"r2: ', 'print("fitted")\nprint(f"r2: ')
    outcome = search(tmp_path, code, scripted([("more output", change)]), metric="r2", maximize=True).run()
    assert outcome.tree[1].status is Status.OK


# ---- failed changes are not retried ------------------------------------------------------------------


def test_a_failed_change_is_not_retried_at_another_parent(tmp_path, scripted):
    code = corpus("failing_axis.py")

    def edit(old, new):
        return lambda parent: (f"{old} -> {new}", parent.replace(old, new))

    proposals = [edit("axis=1", "axis=2"), edit("weight = 1.5", "weight = 2.0"), edit("axis=1", "axis=2"),
                 edit("axis=1", "axis=3"), edit("axis=1", "axis=0")]
    outcome = search(tmp_path, code, scripted(proposals), metric="mse", maximize=False, ablate=False).run()
    first, other, again, further, opposite = (outcome.tree[i] for i in range(1, 6))
    assert first.status is Status.BUGGY and other.status is Status.OK
    for node in (again, further):
        assert node.status is Status.REJECTED and "failed before: node 1" in node.reason, node.reason
    assert opposite.status is not Status.REJECTED  # the other direction is a new idea
    # resume remembers it too
    resumed = Search.resume(RunDir.open(outcome.run_dir), steps=6,
                            proposer=scripted([edit("axis=1", "axis=2")]), executor=None)
    assert resumed._guard.failures.check(parent_code=code, code=code.replace("axis=1", "axis=2"))


def test_mutate_tries_no_failing_change_more_than_twice(tmp_path):
    code = corpus("failing_axis.py")
    outcome = search(tmp_path, code, None, metric="mse", maximize=False, steps=14,
                     proposer={"name": "mutate"}, ablate=False).run()
    from autoresearch_jupyter.core.changes import hunks

    tries: dict[tuple[str, str, str], int] = {}
    for node in outcome.tree:
        if node.status is Status.BUGGY and node.parent is not None:
            for h in hunks(outcome.tree[node.parent].code, node.code):
                key = (" ".join(h.before[-2:]), h.old, h.new)
                tries[key] = tries.get(key, 0) + 1
    assert all(count <= 2 for count in tries.values()), tries


# ---- --smoke says what it does ----------------------------------------------------------------------


def test_smoke_on_a_script_that_never_reads_it_is_skipped_with_one_warning(tmp_path):
    (tmp_path / "ridge.py").write_text(corpus("split_by_variable.py"))
    proc = cli("run", "ridge.py", "--metric", "r2", "--maximize", "--steps", "3", "--smoke", "--proposer",
               "mutate", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("AUTORESEARCH_SMOKE") == 1 and "skipped" in proc.stderr
    assert not list((tmp_path / ".autoresearch").glob("*/nodes/*/smoke.log"))


# ---- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag,value,words", [
    ("--replicates", "0", ("--replicates",)), ("--replicates", "many", ("--replicates", "auto")),
    ("--replicates", "11", ("--replicates",)), ("--noise-k", "-1", ("--noise-k",)),
    ("--noise-k", "nan", ("--noise-k",)),
])
def test_bad_noise_options_are_one_line(tmp_path, flag, value, words):
    (tmp_path / "t.py").write_text("print('m: 1')\n")
    proc = cli("run", "t.py", "--metric", "m", "--maximize", flag, value, cwd=tmp_path)
    one_line_error(proc, *words)
    assert not (tmp_path / ".autoresearch").exists()


# ---- the parts on their own ---------------------------------------------------------------------------


@pytest.mark.parametrize("text,name,expected", [
    ("[1]\teval-logloss:0.13776\ttrain-logloss:0.13654", "eval-logloss", 0.13776),
    ("[1]\teval-logloss:0.13776\ttrain-logloss:0.13654", "train-logloss", 0.13654),
    ("[1]\teval-logloss:0.13776\ttrain-logloss:0.13654", "logloss", None),
    ("eval_val_acc: 0.9 val_acc_std: 0.1", "val_acc", None),
    ("eval_val_acc: 0.9 val_acc: 0.5 val_acc_std: 0.1", "val_acc", 0.5),
    ("valid/loss=0.3 loss=0.2", "loss", 0.2),
])
def test_metric_names_match_only_as_whole_tokens(text, name, expected):
    from autoresearch_jupyter.core.metrics import parse_metric

    assert parse_metric(text, name) == expected


def test_protected_literals_follow_names_not_a_list_of_them():
    from autoresearch_jupyter.core.dataflow import protected_literals

    code = corpus("label_spreading.py")
    lines = code.splitlines()
    protected = {lines[line - 1][col:col + 3] for line, col in protected_literals(code)}
    assert "40" in protected and "340" in protected  # n_labeled_points -> indices[n_labeled_points:]
    assert not any(v.startswith(("0.2", "20")) for v in protected)  # gamma, max_iter are the model's
    loop = "X = list(range(100))\nbatch_size = 32\nfor i in range(0, 100, batch_size):\n    b = X[i:i + batch_size]\n"
    assert not protected_literals(loop)  # minibatches inside a loop are not the evaluation's data
    via = "def split(n):\n    return X[:n], X[n:]\nfrac = 0.8\nk = int(frac * 400)\ntrain, test = split(k)\n"
    assert {lines for lines, _ in protected_literals(via)} == {3, 4}  # through a call and arithmetic
    tunable = "n = 300  # search: int(100, 350)\nX_tr = X[:n]\n"
    assert not protected_literals(tunable)
