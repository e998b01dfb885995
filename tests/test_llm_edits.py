"""Reading model answers: plans, search/replace edits and whole files, as models really write them."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autoresearch_jupyter.proposers._edits import AnswerError, Edit, apply_edits, parse_answer

CODE = """import numpy as np

def train(lr):
    model = make(lr=lr)
    for epoch in range(10):
        model.step()
    return model

lr = 0.01
print(f"score: {train(lr).score}")
"""


def block(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE"


def test_plan_and_one_edit():
    answer = parse_answer("PLAN: raise the learning rate\n\n" + block("lr = 0.01", "lr = 0.1"))
    assert answer.plan == "raise the learning rate" and answer.format == "edits"
    assert apply_edits(CODE, answer.edits) == CODE.replace("lr = 0.01\n", "lr = 0.1\n")


def test_prose_fences_crlf_and_bold_plan_are_tolerated():
    text = (
        "Sure! Here is my idea.\r\n\r\n**Plan:** train for more epochs\r\n\r\n```python\r\n"
        + block("    for epoch in range(10):", "    for epoch in range(30):").replace("\n", "\r\n")
        + "\r\n```\r\nThis should help.\r\n"
    )
    answer = parse_answer(text)
    assert answer.plan == "train for more epochs"
    assert "range(30)" in apply_edits(CODE, answer.edits)


def test_plan_falls_back_to_first_prose_line():
    answer = parse_answer("I will use a larger learning rate.\n" + block("lr = 0.01", "lr = 0.05"))
    assert answer.plan == "I will use a larger learning rate."


def test_several_edits_apply_in_order():
    text = block("lr = 0.01", "lr = 0.02") + "\n\n" + block("lr = 0.02", "lr = 0.03")
    assert "lr = 0.03\n" in apply_edits(CODE, parse_answer(text).edits)


def test_whitespace_only_differences_in_search_when_unambiguous():
    # lost indentation, trailing spaces and a dropped blank line: still one place in the script
    search = "model = make(lr=lr)   \nfor epoch in range(10):\n    model.step()"
    replace = "model = make(lr=lr, momentum=0.9)\nfor epoch in range(10):\n    model.step()"
    out = apply_edits(CODE, parse_answer(block(search, replace)).edits)
    assert "    model = make(lr=lr, momentum=0.9)\n    for epoch in range(10):\n        model.step()\n" in out
    compile(out, "x", "exec")


def test_whole_file_answer_takes_the_python_block():
    new = CODE.replace("0.01", "0.5")
    answer = parse_answer(f"PLAN: bigger lr\n\n```text\nnot code\n```\n\n```python\n{new}```\n")
    assert answer.format == "file" and answer.code == new and answer.plan == "bigger lr"


@pytest.mark.parametrize("text,words", [
    ("", ["empty"]),
    ("I think the model is fine as it is.", ["no change found"]),
    ("PLAN: x\n```python\nprint(1)\n", ["not closed"]),
    ("PLAN: x\n<<<<<<< SEARCH\nlr = 0.01\n=======\nlr = 0.1\n", ["incomplete"]),
])
def test_unusable_answers_say_why(text, words):
    with pytest.raises(AnswerError) as info:
        parse_answer(text)
    for word in words:
        assert word in str(info.value)


def test_search_not_found_names_the_closest_line():
    with pytest.raises(AnswerError) as info:
        apply_edits(CODE, [Edit("lr = 0.001\n", "lr = 0.1\n")])
    assert "not found" in str(info.value) and "line 9" in str(info.value)


def test_ambiguous_search_is_an_error_not_a_guess():
    code = "a = 1\nb = 2\na = 1\n"
    with pytest.raises(AnswerError) as info:
        apply_edits(code, [Edit("a = 1\n", "a = 3\n")])
    assert "matches 2 places" in str(info.value) and "lines 1, 3" in str(info.value)
    with pytest.raises(AnswerError):  # also when only whitespace-tolerant matching finds several
        apply_edits("x = 1\n  x = 1\n", [Edit("x  =  1\n", "x = 2\n")])


def test_search_never_matches_inside_a_line():
    code = "clr = 1\nlr = 1\n"
    assert apply_edits(code, [Edit("lr = 1\n", "lr = 2\n")]) == "clr = 1\nlr = 2\n"


def test_empty_search_is_an_error():
    with pytest.raises(AnswerError, match="empty"):
        apply_edits(CODE, parse_answer(block("", "x = 1")).edits)


def test_crlf_scripts_keep_their_line_ends():
    code = CODE.replace("\n", "\r\n")
    out = apply_edits(code, parse_answer(block("lr = 0.01", "lr = 0.2")).edits)
    assert out == code.replace("lr = 0.01", "lr = 0.2")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.from_regex(r"[a-z_]{1,8} = [0-9]{1,4}", fullmatch=True), min_size=2, max_size=12, unique=True),
       st.data())
def test_any_unique_line_can_be_replaced(lines, data):
    code = "\n".join(lines) + "\n"
    i = data.draw(st.integers(0, len(lines) - 1))
    if code.count(lines[i]) != 1:
        return
    new = lines[i] + "0"
    out = apply_edits(code, parse_answer(block(lines[i], new)).edits)
    assert out.splitlines() == lines[:i] + [new] + lines[i + 1 :]
