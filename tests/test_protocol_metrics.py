"""The protocol's rules and the metric reader: what decides better and worse."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from autoresearch_jupyter.core.errors import ProtocolError
from autoresearch_jupyter.core.metrics import parse_metric, read_metric
from autoresearch_jupyter.core.protocol import Protocol, frozen_blocks, frozen_spans

SCRIPT = """import os
# autoresearch: freeze
X = load()
# autoresearch: end
lr = 0.1
# autoresearch: freeze
def evaluate(m): return m
# autoresearch: end
"""


def test_frozen_regions_are_found_with_markers():
    assert frozen_spans(SCRIPT) == [(1, 3), (5, 7)]
    assert frozen_blocks(SCRIPT)[0].splitlines()[1] == "X = load()"


def test_unclosed_freeze_runs_to_end_of_file():
    code = "a = 1\n# autoresearch: freeze\nb = 2\nc = 3\n"
    assert frozen_spans(code) == [(1, 3)]


def test_frozen_violation_names_the_region():
    p = Protocol.for_script(SCRIPT, metric="val_acc", maximize=True)
    assert p.frozen_violation(SCRIPT.replace("lr = 0.1", "lr = 0.2")) is None
    assert "region 2" in p.frozen_violation(SCRIPT.replace("return m", "return 1.0"))
    removed = SCRIPT.replace("# autoresearch: freeze\ndef", "def")
    assert "frozen" in p.frozen_violation(removed)


@pytest.mark.parametrize("maximize,child,parent,expected", [
    (True, 0.9, 0.8, True), (True, 0.8, 0.8, False), (False, 0.1, 0.2, True), (False, 0.3, 0.2, False),
])
def test_improves_follows_the_users_direction(maximize, child, parent, expected):
    assert Protocol(metric="m", maximize=maximize).improves(child, parent) is expected


def test_min_delta_is_strict():
    p = Protocol(metric="m", maximize=True, min_delta=0.05)
    assert not p.improves(0.85, 0.80)
    assert p.improves(0.851, 0.80)


@pytest.mark.parametrize("kwargs", [
    {"metric": ""}, {"metric": "val acc"}, {"time_budget": 0}, {"time_budget": float("inf")},
    {"seed": -1}, {"min_delta": -0.1},
])
def test_invalid_protocols_raise_a_protocol_error(kwargs):
    args = {"metric": "m", "maximize": True, **kwargs}
    with pytest.raises(ProtocolError):
        Protocol(**args)


def test_protocol_round_trips_through_json():
    p = Protocol.for_script(SCRIPT, metric="val_acc", maximize=False, time_budget=12.5, seed=7)
    again = Protocol.from_dict(json.loads(json.dumps(p.to_dict())))
    assert again == p


@pytest.mark.parametrize("text,expected", [
    ("val_acc: 0.91", 0.91),
    ("val_acc=0.5\nval_acc=0.7", 0.7),
    ("epoch 3 loss=0.2 val_acc=0.93 lr=1e-3", 0.93),
    ("val_acc: 1e-3", 1e-3),
    ("VAL_ACC = 2", 2.0),
    ("best_val_acc: 0.99\nval_acc: 0.5", 0.5),
    ("best_val_acc: 0.99", None),
    ("val_acc: n/a", None),
])
def test_parse_metric(text, expected):
    assert parse_metric(text, "val_acc") == expected


def test_nan_and_inf_are_read_and_flagged():
    value, why = read_metric(name="loss", output="loss: nan")
    assert math.isnan(value) and "not finite" in why
    value, why = read_metric(name="loss", output="loss: -inf")
    assert value == -math.inf and "not finite" in why


def test_missing_metric_says_what_to_print():
    value, why = read_metric(name="val_acc", output="accuracy 0.9")
    assert value is None and "val_acc: <number>" in why


def test_report_wins_over_printed_lines(tmp_path):
    result = tmp_path / "result.json"
    script = tmp_path / "s.py"
    script.write_text(
        "from autoresearch_jupyter import report\nprint('val_acc: 0.1')\nreport(val_acc=0.75, loss=2)\n"
        "print('val_acc: 0.2')\n"
    )
    env = {**os.environ, "AUTORESEARCH_RESULT": str(result)}
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, check=True)
    assert "val_acc: 0.75" in out.stdout
    assert json.loads(result.read_text()) == {"val_acc": 0.75, "loss": 2.0}
    assert read_metric(name="val_acc", output=out.stdout, result_path=result) == (0.75, None)
