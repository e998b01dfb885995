"""Text tree, DOT, SVG and the fallback when Graphviz's dot is missing."""

from __future__ import annotations

import re
import shutil
import time

import pytest

from autoresearch_jupyter.report import render
from autoresearch_jupyter.core.errors import AutoResearchError
from autoresearch_jupyter.core.node import Node, Operator, Status
from autoresearch_jupyter.core.protocol import Protocol
from autoresearch_jupyter.core.tree import Tree

MAX = Protocol(metric="val_acc", maximize=True, time_budget=60, seed=7)


from trees import add, sample_tree  # noqa: E402


def chain(n: int) -> Tree:
    t = Tree()
    add(t, 0, None, Status.OK, 0.0, op=Operator.BASELINE)
    for i in range(1, n):
        add(t, i, i - 1, Status.OK, float(i), kept=True)
    return t


def wide(n: int) -> Tree:
    """A bushy tree: every node gets up to 5 children, mixed statuses."""
    t = Tree()
    add(t, 0, None, Status.OK, 0.5, op=Operator.BASELINE)
    statuses = [Status.OK, Status.BUGGY, Status.TIMEOUT, Status.REJECTED, Status.RUNNING, Status.PENDING]
    for i in range(1, n):
        status = statuses[i % len(statuses)]
        metric = 0.5 + i / (10 * n) if status is Status.OK else None
        add(t, i, (i - 1) // 5, status, metric, kept=status is Status.OK and i % 2 == 0)
    return t


def line_of(text: str, node_id: int) -> str:
    pattern = re.compile(rf"(^|[─ ]|\* ){node_id} (baseline|improve|debug)")
    (line,) = [ln for ln in text.splitlines() if pattern.search(ln)]
    return line


def test_text_tree_every_node_best_and_path() -> None:
    tree = sample_tree()
    text = render.render_text_tree(tree, MAX)
    lines = text.splitlines()
    assert lines[0].startswith("val_acc (maximize), 10 nodes, best: node 6 = 0.9")
    assert len(lines) == 1 + len(tree)
    for node in tree:
        line_of(text, node.id)
    assert line_of(text, 0) == "* 0 baseline ok 0.8  baseline"
    assert line_of(text, 6) == "    ├── * 6 improve ok 0.9 (+0.05) improved best  wider hidden layer"
    assert line_of(text, 5).startswith("└── * 5 improve ok 0.85 (+0.05) improved")
    assert line_of(text, 1) == "├── 1 improve ok 0.83 (+0.03) reverted  lower the learning rate"
    assert line_of(text, 2).startswith("├── 2 improve buggy  change 2")
    assert line_of(text, 9) == "│   └── 9 debug buggy  guard the division"
    assert line_of(text, 7).startswith("    │   └── 7 ")
    assert [ln for ln in lines if "* " in ln and "marks" not in ln] == [
        line_of(text, 0), line_of(text, 5), line_of(text, 6)]
    # children follow their parent in order
    order = [int(m.group(1)) for m in re.finditer(r"(?:^|── )(?:\* )?(\d+) ", text, re.M)]
    assert order == [0, 1, 2, 9, 3, 4, 5, 6, 7, 8]


def test_text_tree_color_and_plan_truncation() -> None:
    tree = sample_tree()
    tree[1].plan = "x" * 200 + "\nsecond line"
    colored = render.render_text_tree(tree, MAX, color=True)
    (six,) = [ln for ln in colored.splitlines() if "6 improve" in ln]
    (two,) = [ln for ln in colored.splitlines() if "2 improve" in ln]
    assert "\x1b[1m\x1b[32m* 6" in six and six.endswith("\x1b[0m") and "\x1b[31m2 improve" in two
    plain = render.render_text_tree(tree, MAX)
    assert "\x1b" not in plain
    assert line_of(plain, 1).endswith("x" * 59 + "…")


def test_text_tree_deep_chain_is_iterative_and_fast() -> None:
    tree = chain(2000)
    start = time.perf_counter()
    text = render.render_text_tree(tree, MAX)
    assert time.perf_counter() - start < 2.0
    lines = text.splitlines()
    assert len(lines) == 2001
    assert "1999 improve ok 1999 (+1) improved best" in lines[-1]
    assert max(len(ln) for ln in lines) < 250  # guides beyond a depth are elided, not quadratic
    assert lines[-1].startswith("⋯ ")


def test_text_tree_large_wide_tree_fast() -> None:
    tree = wide(3000)
    start = time.perf_counter()
    text = render.render_text_tree(tree, MAX)
    assert time.perf_counter() - start < 2.0
    assert len(text.splitlines()) == 3001


def test_text_tree_collapse_keeps_best_path() -> None:
    tree = wide(500)
    best = tree.best(MAX)
    assert best is not None and tree.depth(best.id) >= 3
    text = render.render_text_tree(tree, MAX, max_nodes=20)
    node_lines = [ln for ln in text.splitlines()[1:] if "more" not in ln]
    more_lines = [ln for ln in text.splitlines() if re.search(r"… \d+ more", ln)]
    assert len(node_lines) == 20
    for node in tree.path(best.id):
        assert line_of(text, node.id)
    assert "best" in line_of(text, best.id)
    hidden = sum(int(m.group(2) or m.group(1)) for m in
                 (re.search(r"… (\d+) more(?: \((\d+) nodes\))?", ln) for ln in more_lines) if m)
    assert hidden + 20 == len(tree)  # every node is either shown or counted
    # the path still beats the budget when it is longer than max_nodes
    deep = render.render_text_tree(chain(50), MAX, max_nodes=5)
    assert len(deep.splitlines()) == 51
    assert render.render_text_tree(tree, MAX, max_nodes=10_000) == render.render_text_tree(tree, MAX)
    assert render.render_text_tree(Tree(), MAX) == "(no nodes yet)"


def test_dot_escaping_and_colours() -> None:
    tree = sample_tree()
    tree[1].plan = 'say "hi" \\ <b>&amp;\nnext'
    tree[1].operator = Operator.IMPROVE
    dot = render.tree_to_dot(tree, MAX)
    assert 'tooltip="say \\"hi\\" \\\\ <b>&amp;amp; next"' in dot
    assert render.dot_quote('a"b\\c\nd\r\ne<f>&') == '"a\\"b\\\\c\\nd\\ne<f>&amp;"'
    colours = re.findall(r'color="([^"]*)"', dot)
    assert len(colours) > len(tree) and all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in colours)
    node6 = next(ln for ln in dot.splitlines() if ln.startswith("  n6 ["))
    assert 'label="#6 improve\\n0.9 (+0.05)\\nbest"' in node6 and "penwidth=3" in node6
    assert 'fillcolor="#b7e4c7"' in node6  # kept: green
    node2 = next(ln for ln in dot.splitlines() if ln.startswith("  n2 ["))
    assert f'fillcolor="{render._FILL["buggy"]}"' in node2
    node4 = next(ln for ln in dot.splitlines() if ln.startswith("  n4 ["))
    assert "dashed" in node4 and 'fillcolor="#f2f2f2"' in node4
    assert 'n5 -> n6 [color="#1b4332", penwidth=3];' in dot and "n0 -> n5 [color" in dot
    assert "n0 -> n1;" in dot and "n0 -> n4 [style=dashed];" in dot
    assert dot.count(" -> ") == len(tree) - 1


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_svg_with_dot() -> None:
    tree = sample_tree()
    tree[1].plan = 'quotes " and <tags> & \\ backslash'
    svg = render.render_svg(tree, MAX)
    assert svg.lstrip().startswith("<?xml") and "</svg>" in svg
    assert svg.count('class="node"') == len(tree)
    assert "quotes &quot; and &lt;tags&gt; &amp; \\ backslash" in svg
    big = wide(200)
    start = time.perf_counter()
    render.render_svg(big, MAX)
    assert time.perf_counter() - start < 1.5
    content, warning = render.render_tree(tree, MAX, fmt="svg")
    assert warning is None and "<svg" in content


def test_svg_fallback_when_dot_missing(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no dot anywhere
    tree = sample_tree()
    with pytest.raises(render.GraphvizMissingError) as info:
        render.render_svg(tree, MAX)
    assert isinstance(info.value, AutoResearchError)
    assert str(info.value) == render.DOT_MISSING
    assert "apt-get install graphviz" in str(info.value) and "brew install graphviz" in str(info.value)
    content, warning = render.render_tree(tree, MAX, fmt="svg")
    assert warning == render.DOT_MISSING
    assert content == render.render_text_tree(tree, MAX)


def test_svg_fallback_when_dot_vanishes_between_check_and_run(monkeypatch) -> None:
    graphviz = pytest.importorskip("graphviz")
    monkeypatch.setattr(render.shutil, "which", lambda name: "/nowhere/dot")

    def boom(self, **kw):  # what the package raises when the program is missing
        raise graphviz.ExecutableNotFound(["dot"])

    monkeypatch.setattr(graphviz.Source, "pipe", boom)
    with pytest.raises(render.GraphvizMissingError, match="'dot' program of Graphviz"):
        render.render_svg(sample_tree(), MAX)


def test_render_tree_formats() -> None:
    tree = sample_tree()
    assert render.render_tree(tree, MAX) == (render.render_text_tree(tree, MAX), None)
    assert render.render_tree(tree, MAX, fmt="dot") == (render.tree_to_dot(tree, MAX), None)
    with pytest.raises(ValueError, match="Valid formats: text, svg, dot"):
        render.render_tree(tree, MAX, fmt="png")  # type: ignore[arg-type]


def test_minimize_marks_lowest() -> None:
    t = Tree()
    add(t, 0, None, Status.OK, 0.5, op=Operator.BASELINE)
    add(t, 1, 0, Status.OK, 0.3, kept=True)
    add(t, 2, 0, Status.OK, 0.6, kept=False)
    text = render.render_text_tree(t, Protocol(metric="loss", maximize=False))
    assert "1 improve ok 0.3 (-0.2) improved best" in text and "best" not in line_of(text, 2)


def test_multiple_roots_are_all_drawn() -> None:
    t = Tree()
    t.add(Node(id=0, parent=None, operator=Operator.DRAFT, plan="a", code="", status=Status.OK, metric=0.1))
    t.add(Node(id=1, parent=None, operator=Operator.DRAFT, plan="b", code="", status=Status.BUGGY))
    t.add(Node(id=2, parent=1, operator=Operator.DEBUG, plan="c", code="", status=Status.OK, metric=0.2,
               kept=True))
    text = render.render_text_tree(t, MAX)
    assert text.splitlines()[1:] == [
        "0 draft ok 0.1  a", "* 1 draft buggy  b", "└── * 2 debug ok 0.2 improved best  c"]


def test_svg_fallback_when_package_missing(monkeypatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "graphviz", None)  # makes `import graphviz` fail
    with pytest.raises(render.GraphvizMissingError, match="graphviz Python package is not installed"):
        render.render_svg(sample_tree(), MAX)
    content, warning = render.render_tree(sample_tree(), MAX, fmt="svg", max_nodes=3)
    assert warning == render.PACKAGE_MISSING and content.splitlines()[-1] == "└── … 4 more (5 nodes)"
