"""Constraints: what parses, what a node must meet, and every bad input as one line before a run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch_jupyter.core.constraints import parse_constraint, parse_constraints, ruled_out, violations
from autoresearch_jupyter.core.errors import ConstraintError, ProtocolError
from autoresearch_jupyter.core.metrics import collect_metrics
from autoresearch_jupyter.core.node import Node, Operator, Status
from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.core.tree import Tree

GiB, MiB = 2**30, 2**20


@pytest.mark.parametrize("text, metric, op, bound", [
    ("peak_memory<2G", "peak_memory", "<", 2 * GiB),
    ("peak_memory <= 512MiB", "peak_memory", "<=", 512 * MiB),
    ("gpu_memory<1.5GB", "gpu_memory", "<", 1.5 * GiB),
    ("peak_memory<300000000", "peak_memory", "<", 3e8),
    ("time<30", "time", "<", 30.0),
    ("time<500ms", "time", "<", 0.5),
    ("time<=2min", "time", "<=", 120.0),
    ("val_acc>=0.95", "val_acc", ">=", 0.95),
    ("val_loss=<1e-2", "val_loss", "<=", 0.01),
    ("eval-logloss<0.3", "eval-logloss", "<", 0.3),
    ("train/loss>-1", "train/loss", ">", -1.0),
])
def test_constraints_parse(text, metric, op, bound):
    c = parse_constraint(text)
    assert (c.metric, c.op) == (metric, op)
    assert c.bound == pytest.approx(bound)
    assert c.text == "".join(text.split())


@pytest.mark.parametrize("text, words", [
    ("peak_memory<<2G", ["cannot parse", "peak_memory<<2G"]),
    ("peak_memory<2X", ["unknown unit 'X'", "K, M, G or T"]),
    ("time<3parsecs", ["unknown unit 'parsecs'"]),
    ("val_acc>=95%", ["unknown unit '%'", "plain number"]),
    ("peak_mem<2G", ["unknown metric 'peak_mem'", "did you mean peak_memory"]),
    ("val_acc", ["cannot parse"]),
    ("val_acc==0.9", ["cannot parse"]),
    ("", ["empty constraint"]),
    ("3<val_acc", ["cannot parse"]),
])
def test_bad_constraints_say_what_is_wrong_in_one_line(text, words):
    with pytest.raises(ConstraintError) as info:
        parse_constraints([text], code="print('val_acc: 1')")
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_a_name_near_a_measured_one_is_fine_when_the_script_prints_it():
    assert parse_constraint("runtime<3", code="print(f'runtime: {t}')").metric == "runtime"
    with pytest.raises(ConstraintError, match="did you mean time"):
        parse_constraint("runtime<3", code="print('val_acc: 1')")


def test_several_in_one_string_and_duplicates_once():
    cs = parse_constraints(["val_acc>=0.9, time<3", "val_acc >= 0.9"])
    assert [c.text for c in cs] == ["val_acc>=0.9", "time<3"]


def test_violations_and_missing_values():
    cs = parse_constraints(["peak_memory<300M", "val_acc>=0.95"])
    assert violations(cs, {"peak_memory": 100 * MiB, "val_acc": 0.96}) == []
    broken = violations(cs, {"peak_memory": 500 * MiB, "val_acc": float("nan")})
    assert broken == ["peak_memory 500 MiB breaks peak_memory<300M", "val_acc is nan, so val_acc>=0.95 does not hold"]
    assert violations(cs, {"peak_memory": 1}) == ["no val_acc to check val_acc>=0.95"]


def test_the_protocol_keeps_its_constraints_and_refuses_a_maximised_measurement():
    p = Protocol.for_script("print('val_acc: 1')", metric="val_acc", maximize=True,
                            constraints=("peak_memory < 2G", "time<30"))
    assert p.constraints == ("peak_memory<2G", "time<30")
    again = Protocol.from_dict(p.to_dict())
    assert again == p and [c.bound for c in again.parsed_constraints] == [2 * GiB, 30.0]
    for name in ("time", "peak_memory", "gpu_memory"):
        with pytest.raises(ProtocolError, match="use --minimize"):
            Protocol(metric=name, maximize=True)
    assert Protocol(metric="time", maximize=False).measured_metric


def test_ruled_out_counts_each_constraint():
    cs = parse_constraints(["peak_memory<300M", "val_acc>=0.9"])
    tree = Tree()
    for i, (status, measured, metrics) in enumerate([
        (Status.OK, {"peak_memory": MiB}, {"val_acc": 0.95}),
        (Status.INFEASIBLE, {"peak_memory": 400 * MiB}, {"val_acc": 0.5}),
        (Status.INFEASIBLE, {"peak_memory": 400 * MiB}, {"val_acc": 0.95}),
        (Status.BUGGY, {"peak_memory": 900 * MiB}, {}),  # a failure, not ruled out by a constraint
    ]):
        tree.add(Node(id=i, parent=None if i == 0 else 0, operator=Operator.BASELINE if i == 0 else Operator.IMPROVE,
                      plan="", code="", status=status, metric=0.5, measured=measured, metrics=metrics))
    assert ruled_out(cs, tree) == [("peak_memory<300M", 2), ("val_acc>=0.9", 1)]


def test_collect_metrics_bounds_names_and_keeps_the_ones_that_matter():
    lines = "\n".join(f"m{i}: {i}" for i in range(50)) + "\nval_acc: 0.9\ntime: 0.0001\nf1: nan\n"
    got = collect_metrics(lines, {"loss": 0.3, "flag": True, "name": "x"}, first=["val_acc"], exclude=["time"])
    assert len(got) == 32
    assert list(got)[:3] == ["val_acc", "loss", "m0"]  # the objective, report()'s keys, then printed order
    assert "time" not in got and "f1" not in got and "flag" not in got and "name" not in got
    assert collect_metrics("[3] eval-logloss:0.25\ttrain-logloss:0.125") == {"eval-logloss": 0.25, "train-logloss": 0.125}
    assert collect_metrics("loss: 1\nloss: 0.5") == {"loss": 0.5}  # the last value of a name


# ---- bad input as a user meets it: one line, before anything runs ----------------------------


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-m", "autoresearch_jupyter", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=env)


SCRIPT = "import time\nx = 1.0  # search: float(0, 10)\nprint(f'val_acc: {x / 10}')\n"


@pytest.mark.parametrize("args, words", [
    (["--metric", "val_acc", "--maximize", "--constraint", "peak_memory<<2G"], ["cannot parse"]),
    (["--metric", "val_acc", "--maximize", "--constraint", "peak_memory<2Q"], ["unknown unit 'Q'"]),
    (["--metric", "val_acc", "--maximize", "--constraint", "peak_mem<2G"], ["unknown metric 'peak_mem'"]),
    (["--metric", "time", "--maximize"], ["--metric time", "--minimize"]),
    (["--metric", "val_acc", "--maximize", "--constraint", "gpu_memory<1G"], ["--gpus"]),
])
def test_bad_input_is_one_line_and_nothing_runs(tmp_path, args, words):
    (tmp_path / "s.py").write_text(SCRIPT)
    proc = cli("run", "s.py", *args, cwd=tmp_path)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0]
    assert not (tmp_path / ".autoresearch").exists() or not any((tmp_path / ".autoresearch").iterdir())


def test_a_constraint_on_a_metric_the_baseline_does_not_produce_stops_at_the_baseline(tmp_path):
    (tmp_path / "s.py").write_text(SCRIPT)
    proc = cli("run", "s.py", "--metric", "val_acc", "--maximize", "--constraint", "f1>=0.5", "--steps", "3",
               cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    [error] = [ln for ln in proc.stderr.splitlines() if ln.startswith("autoresearch: error")]
    assert "the baseline does not produce f1" in error and "report(f1=...)" in error
    shown = cli("show", "latest", "--json", cwd=tmp_path)
    assert len(json.loads(shown.stdout)["nodes"]) == 1  # only the baseline ran


# ---- the magics ------------------------------------------------------------------------------


@pytest.fixture
def ip(tmp_path, monkeypatch):
    pytest.importorskip("IPython")
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.testing.globalipapp import start_ipython

    shell = start_ipython() or InteractiveShell.instance()
    monkeypatch.chdir(tmp_path)
    manager = shell.extension_manager
    if "autoresearch_jupyter" in manager.loaded:
        manager.unload_extension("autoresearch_jupyter")
    shell.config.pop("AutoResearch", None)
    manager.load_extension("autoresearch_jupyter")
    magics = shell.magics_manager.registry["AutoResearch"]
    magics.runs_dir, magics.view = str(tmp_path / "runs"), "none"
    yield shell
    manager.unload_extension("autoresearch_jupyter")


CELL = "import time\nsize = 20  # search: [20, 400]\ndata = b'x' * (size * 2**20)\nprint(f'score: {size}')\n"


@pytest.mark.slow
def test_magic_constraints_from_the_line_and_from_config(ip, tmp_path):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="cannot parse"):
        ip.run_cell_magic("autoresearch", '--metric score --maximize --constraint "peak_memory<<2G"', CELL)
    with pytest.raises(UsageError, match="use --minimize"):
        ip.run_cell_magic("autoresearch", "--metric time --maximize", CELL)
    ip.run_line_magic("config", "AutoResearch.constraints = ['peak_memory<200M']")
    run = ip.run_cell_magic("autoresearch", "--metric score --maximize --steps 1 --proposer mutate", CELL)
    assert run.protocol.constraints == ("peak_memory<200M",)
    statuses = {n.id: n.status for n in run.tree}
    assert statuses == {0: Status.OK, 1: Status.INFEASIBLE} and run.best.id == 0
    run2 = ip.run_cell_magic(  # the line wins over config
        "autoresearch", "--metric score --maximize --steps 1 --proposer mutate --constraint time<60", CELL)
    assert run2.protocol.constraints == ("time<60",) and run2.best.metric == 400
