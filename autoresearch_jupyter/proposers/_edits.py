"""Reading a model's answer: a one-line plan, then search/replace edit blocks or a whole file.

Models without tool calling still follow a plain-text format well, so the answer format is text::

    PLAN: lower the learning rate to 3e-4; the loss curve oscillates

    <<<<<<< SEARCH
    lr = 1e-3
    =======
    lr = 3e-4
    >>>>>>> REPLACE

or the whole new script in one ```python fenced block. Edit blocks are preferred: they are atomic
(the rest of the file stays byte-identical), cheap in output tokens, and an edit that does not
apply is caught before any compute is spent.

Parsing is forgiving where models are sloppy and strict where a guess could change the wrong code:
extra prose, ```python fences around the blocks, CRLF line ends, 5 to 9 marker characters, and
SEARCH text that differs from the script only in whitespace (indentation, trailing spaces, blank
lines) are accepted when they match exactly one place; a SEARCH text that matches nowhere or in
several places is an error whose message tells the model what to fix (it gets one retry).
"""

from __future__ import annotations

import dataclasses
import difflib
import re

__all__ = ["AnswerError", "Edit", "ParsedAnswer", "apply_edits", "parse_answer"]

_BLOCK = re.compile(
    r"^[ \t]*<{5,9}[ \t]*SEARCH[^\n]*\n(.*?)^[ \t]*={5,9}[ \t]*\n(.*?)^[ \t]*>{5,9}[ \t]*REPLACE[^\n]*$",
    re.MULTILINE | re.DOTALL | re.IGNORECASE,
)
_SEARCH_MARK = re.compile(r"^[ \t]*<{5,9}[ \t]*SEARCH\b", re.MULTILINE | re.IGNORECASE)
_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+.-]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.MULTILINE | re.DOTALL)
_FENCE_OPEN = re.compile(r"^[ \t]*```", re.MULTILINE)
_PLAN = re.compile(r"^[\s>*_#-]*plan[\s*_]*:[\s*_]*(.+)$", re.IGNORECASE | re.MULTILINE)
_PY_TAGS = ("", "python", "py", "python3", "py3")
MAX_PLAN = 300


class AnswerError(ValueError):
    """An answer that cannot be used; the message is written for the model (it is sent back)."""


@dataclasses.dataclass(frozen=True)
class Edit:
    """One search/replace block: ``search`` must match the script in exactly one place."""

    search: str
    replace: str


@dataclasses.dataclass(frozen=True)
class ParsedAnswer:
    """What an answer says: a plan, and either edits or a whole new ``code`` (never both)."""

    plan: str
    edits: tuple[Edit, ...] = ()
    code: str | None = None

    @property
    def format(self) -> str:
        return "edits" if self.edits else "file"


def _normalise(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _strip_fence(section: str) -> str:
    """A SEARCH or REPLACE section that the model wrapped in its own ``` fence, unwrapped."""
    lines = section.split("\n")
    if lines and lines[0].strip().startswith("```"):
        body = lines[1:]
        while body and not body[-1].strip():
            body.pop()
        if body and body[-1].strip() == "```":
            return "\n".join(body[:-1]) + "\n"
    return section


def _plan(text: str, blocks: list[tuple[int, int]]) -> str:
    """The PLAN line, else the first line of prose outside code and edit blocks."""
    match = _PLAN.search(text)
    if match and not any(a <= match.start() < b for a, b in blocks):
        return match.group(1).strip().strip("*_`").strip()[:MAX_PLAN]
    pos = 0
    for start, end in sorted(blocks) + [(len(text), len(text))]:
        for line in text[pos:start].splitlines():
            line = line.strip().strip("#*_>`-").strip()
            if len(line) > 3:
                return line[:MAX_PLAN]
        pos = max(pos, end)
    return ""


def parse_answer(text: str) -> ParsedAnswer:
    """Parse a model's answer; raises AnswerError (message for the model) when it holds no change."""
    text = _normalise(text or "")
    if not text.strip():
        raise AnswerError("the answer was empty")
    fences = list(_FENCE.finditer(text))
    found = list(_BLOCK.finditer(text))
    marks = len(_SEARCH_MARK.findall(text))
    if marks > len(found):
        raise AnswerError(
            f"{marks - len(found)} of {marks} edit blocks are incomplete: each needs a line "
            "'<<<<<<< SEARCH', the exact lines to change, a line '=======', the new lines, "
            "and a line '>>>>>>> REPLACE'"
        )
    if found:
        edits = tuple(Edit(_strip_fence(m.group(1)), _strip_fence(m.group(2))) for m in found)
        spans = [(m.start(), m.end()) for m in found] + [(f.start(), f.end()) for f in fences]
        return ParsedAnswer(plan=_plan(text, spans), edits=edits)
    python = [f for f in fences if f.group(1).lower() in _PY_TAGS and f.group(2).strip()]
    if not python:
        if len(_FENCE_OPEN.findall(text)) % 2:
            raise AnswerError("the code block is not closed with ``` (was the answer cut off?)")
        raise AnswerError(
            "no change found: give edit blocks (<<<<<<< SEARCH / ======= / >>>>>>> REPLACE) "
            "or the whole new script in one ```python block"
        )
    code = max(python, key=lambda f: len(f.group(2))).group(2)
    return ParsedAnswer(plan=_plan(text, [(f.start(), f.end()) for f in fences]), code=code)


# ---- applying edits --------------------------------------------------------------------------


def _key(line: str) -> str:
    return " ".join(line.split())


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _fuzzy_matches(lines: list[str], search: list[str]) -> list[tuple[int, int]]:
    """(first, last) line indexes where ``search`` matches up to whitespace and blank lines."""
    want = [_key(s) for s in search if s.strip()]
    if not want:
        return []
    content = [i for i, line in enumerate(lines) if line.strip()]
    keys = [_key(lines[i]) for i in content]
    out = []
    for j in range(len(keys) - len(want) + 1):
        if keys[j : j + len(want)] == want:
            out.append((content[j], content[j + len(want) - 1]))
    return out


def _reindent(replace: list[str], search: list[str], matched: str) -> list[str]:
    """Shift the replacement by the indentation the SEARCH text lost or gained against the script."""
    first = next((s for s in search if s.strip()), "")
    have, want = _indent(first), _indent(matched)
    if have == want:
        return replace
    if want.startswith(have):
        extra = want[len(have) :]
        return [extra + r if r.strip() else r for r in replace]
    if have.startswith(want):
        cut = have[len(want) :]
        return [r.removeprefix(cut) for r in replace]
    return replace


def _hint(lines: list[str], search: list[str]) -> str:
    first = next((s.strip() for s in search if s.strip()), "")
    stripped = [line.strip() for line in lines]
    close = difflib.get_close_matches(first, stripped, n=1, cutoff=0.6)
    if not close:
        return ""
    lineno = stripped.index(close[0]) + 1
    return f"; its first line is closest to line {lineno}: `{close[0][:120]}`"


def _exact_positions(code: str, search: str) -> list[int]:
    """Where ``search`` occurs starting at a line start (never in the middle of a line)."""
    out, pos = [], code.find(search)
    while pos != -1:
        if pos == 0 or code[pos - 1] == "\n":
            out.append(pos)
        pos = code.find(search, pos + 1)
    return out


def _apply_one(code: str, edit: Edit, label: str) -> str:
    search, replace = edit.search, edit.replace
    if not search.strip():
        raise AnswerError(f"{label}: the SEARCH section is empty; copy the lines you change from the script")
    exact = _exact_positions(code, search)
    if len(exact) == 1:
        pos = exact[0]
        return code[:pos] + replace + code[pos + len(search) :]
    lines = code.split("\n")
    s_lines = search.rstrip("\n").split("\n")
    if len(exact) > 1:
        where = ", ".join(str(code.count("\n", 0, pos) + 1) for pos in exact[:5])
        raise AnswerError(
            f"{label}: the SEARCH text matches {len(exact)} places (lines {where}); "
            "include more surrounding lines so that it matches exactly one"
        )
    spans = _fuzzy_matches(lines, s_lines)
    if not spans:
        raise AnswerError(
            f"{label}: the SEARCH text was not found in the script{_hint(lines, s_lines)}. "
            "Copy the lines exactly as they are in the current script"
        )
    if len(spans) > 1:
        where = ", ".join(str(a + 1) for a, _ in spans[:5])
        raise AnswerError(
            f"{label}: the SEARCH text matches {len(spans)} places (lines {where}); "
            "include more surrounding lines so that it matches exactly one"
        )
    first, last = spans[0]
    r_lines = replace.rstrip("\n").split("\n") if replace.strip() else []
    new = _reindent(r_lines, s_lines, lines[first])
    return "\n".join(lines[:first] + new + lines[last + 1 :])


def apply_edits(code: str, edits: tuple[Edit, ...] | list[Edit]) -> str:
    """``code`` with each edit applied in order; raises AnswerError naming the edit that failed."""
    crlf = "\r\n" in code
    out = _normalise(code)
    for i, edit in enumerate(edits, 1):
        label = f"edit {i} of {len(edits)}" if len(edits) > 1 else "the edit"
        out = _apply_one(out, edit, label)
    return out.replace("\n", "\r\n") if crlf else out
