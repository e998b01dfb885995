"""The guard refuses proposals that would waste a run, with a one-line reason."""

from __future__ import annotations

import pytest

from autoresearch_jupyter.engine.guard import Guard, code_hash, is_seed_name, normalize
from autoresearch_jupyter.core.protocol import Protocol

BASE = '''"""Train a model."""
import numpy as np
from sklearn.linear_model import LogisticRegression

# autoresearch: freeze
X = np.arange(20).reshape(10, 2)
y = X[:, 0] % 2
# autoresearch: end

np.random.seed(1)
SEED = 0
clf = LogisticRegression(C=0.01, max_iter=20, random_state=0)
print("val_acc:", clf.fit(X, y).score(X, y))
'''


@pytest.fixture
def guard() -> Guard:
    guard = Guard(protocol=Protocol.for_script(BASE, metric="val_acc", maximize=True))
    guard.remember(BASE)
    return guard


def test_a_real_change_passes(guard: Guard) -> None:
    assert guard.check(code=BASE.replace("C=0.01", "C=0.1"), parent_code=BASE) is None


def test_syntax_error_names_the_line(guard: Guard) -> None:
    broken = BASE.replace("SEED = 0", "SEED = (0")
    reason = guard.check(code=broken, parent_code=BASE)
    assert reason is not None and reason.startswith("syntax error")
    assert f"line {broken.splitlines().index('SEED = (0') + 1}" in reason
    # compile() catches what the parser lets through
    reason = guard.check(code=BASE + "return 3\n", parent_code=BASE)
    assert reason is not None and "'return' outside function" in reason
    assert f"line {len(BASE.splitlines()) + 1}" in reason


def test_frozen_region_edit_is_rejected(guard: Guard) -> None:
    edited = BASE.replace("reshape(10, 2)", "reshape(5, 4)")
    reason = guard.check(code=edited, parent_code=BASE)
    assert reason is not None and "frozen code changed" in reason


def test_removed_frozen_marker_is_rejected(guard: Guard) -> None:
    unmarked = BASE.replace("# autoresearch: freeze\n", "")
    reason = guard.check(code=unmarked, parent_code=BASE)
    assert reason is not None and "frozen" in reason


def test_duplicate_up_to_formatting_and_comments(guard: Guard) -> None:
    tried = BASE.replace("C=0.01", "C=0.1")
    guard.remember(tried)
    reformatted = tried.replace("C=0.1, max_iter=20", "C = 0.1,   max_iter = 20  ").replace(
        "SEED = 0", "SEED = 0  # fixed"
    )
    other_parent = BASE.replace("max_iter=20", "max_iter=40")
    reason = guard.check(code=reformatted, parent_code=other_parent)
    assert reason is not None and reason.startswith("duplicate")
    assert guard.is_known(reformatted) and not guard.is_known(other_parent)


def test_no_op_change_against_the_parent(guard: Guard) -> None:
    cosmetic = BASE.replace('"""Train a model."""', '"""Train a better model."""').replace(
        "SEED = 0", "SEED = 0   # the seed"
    )
    reason = guard.check(code=cosmetic, parent_code=BASE)
    assert reason is not None and reason.startswith("no-op change")


@pytest.mark.parametrize(
    "old, new",
    [
        ("random_state=0", "random_state=1"),
        ("np.random.seed(1)", "np.random.seed(2)"),
        ("SEED = 0", "SEED = 7"),
    ],
)
def test_seed_only_change_is_rejected(guard: Guard, old: str, new: str) -> None:
    changed = BASE.replace(old, new)
    reason = guard.check(code=changed, parent_code=BASE)
    assert reason is not None and reason.startswith("seed-only change")


def test_seed_only_variant_of_a_tried_node_is_rejected(guard: Guard) -> None:
    with_rng = BASE.replace("SEED = 0", "SEED = 0\nrng = np.random.default_rng(0)")
    assert guard.check(code=with_rng, parent_code=BASE) is None  # a new statement is a real change
    guard.remember(with_rng)
    reason = guard.check(code=with_rng.replace("default_rng(0)", "default_rng(2)"), parent_code=BASE)
    assert reason is not None and reason.startswith("seed-only variant of an already tried node")


def test_seed_aliases_and_environment_seeds() -> None:
    code = 'import os\nos.environ["PYTHONHASHSEED"] = "0"\nRS = 3\nf(random_state=RS, n=2)\n'
    guard = Guard(protocol=Protocol.for_script(code, metric="m", maximize=True))
    assert guard.check(code=code.replace('"0"', '"1"'), parent_code=code).startswith("seed-only")
    assert guard.check(code=code.replace("RS = 3", "RS = 4"), parent_code=code).startswith("seed-only")
    assert guard.check(code=code.replace("n=2", "n=3"), parent_code=code) is None


def test_seed_change_with_a_real_change_passes(guard: Guard) -> None:
    both = BASE.replace("random_state=0", "random_state=1").replace("max_iter=20", "max_iter=40")
    assert guard.check(code=both, parent_code=BASE) is None
    # settings passed next to a seed are not seeds
    code = "seed_model = build(lr=0.1, seed=1)\nrun_with_seed(3, depth=2)\n"
    guard = Guard(protocol=Protocol.for_script(code, metric="m", maximize=True))
    assert guard.check(code=code.replace("lr=0.1", "lr=0.2"), parent_code=code) is None
    assert guard.check(code=code.replace("depth=2", "depth=4"), parent_code=code) is None
    assert guard.check(code=code.replace("(3,", "(4,"), parent_code=code).startswith("seed-only")


def test_empty_script_is_rejected(guard: Guard) -> None:
    for empty in ("", "# nothing here\n", '"""Only a docstring."""\n'):
        assert guard.check(code=empty, parent_code=BASE) == "empty script: no statements to run"


def test_normal_form_and_hash() -> None:
    a = "x = 1  # one\ny = f( x )\n"
    b = "x=1\n\n\ny = f(x)\n"
    assert normalize(a) == normalize(b)
    assert code_hash(a) == code_hash(b) and len(code_hash(a)) == 64
    assert code_hash(a) != code_hash("x = 2\ny = f(x)\n")
    with pytest.raises(SyntaxError):
        code_hash("def (:\n")
    with pytest.raises(SyntaxError):
        normalize("x = '\0'\0\n")


def test_unparsable_scripts_are_remembered_by_text() -> None:
    guard = Guard(protocol=Protocol(metric="m", maximize=True), known=["x = (\n"])
    assert guard.is_known("x = (\n") and not guard.is_known("y = (\n")
    assert len(guard) == 1


@pytest.mark.parametrize(
    "name", ["seed", "SEED", "random_state", "random_seed", "rng_seed", "manual_seed", "PYTHONHASHSEED",
             "set_seed", "default_rng", "RandomState", "seed_everything"],
)
def test_seed_names(name: str) -> None:
    assert is_seed_name(name)


@pytest.mark.parametrize("name", ["lr", "C", "max_iter", "random", "n_estimators", "state"])
def test_not_seed_names(name: str) -> None:
    assert not is_seed_name(name)
