"""Changes between two scripts as token hunks: what a node changed, and how to take it back out.

A line diff cannot tell apart two literals changed on one line (``fit(n_estimators=200,
max_depth=4)``), so the failure memory and the ablation work on Python tokens: a hunk is a
run of tokens of the old script replaced by a run of tokens of the new one, with a few tokens of
context on each side that name where it happened.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import io
import tokenize

_SKIP = {tokenize.ENCODING, tokenize.ENDMARKER}
_CONTEXT = 4  # tokens before a hunk that identify its site (``axis`` ``=`` ...)


@dataclasses.dataclass(frozen=True)
class Token:
    text: str
    start: int  # character offsets into the source
    end: int


@dataclasses.dataclass(frozen=True)
class Hunk:
    """Tokens ``a1:a2`` of the old script became tokens ``b1:b2`` of the new one."""

    a1: int
    a2: int
    b1: int
    b2: int
    old: str  # the old tokens' text, joined by spaces
    new: str
    before: tuple[str, ...]  # context tokens before the hunk (in the old script)
    after: tuple[str, ...]

    @property
    def site(self) -> str:
        """Where the change happened, independent of line numbers and other changes."""
        return " ".join(self.before) + " <> " + " ".join(self.after)


@functools.lru_cache(maxsize=256)
def tokens(code: str) -> tuple[Token, ...]:
    """The script's tokens with character offsets; raises SyntaxError when it does not tokenize."""
    starts = [0]
    for line in code.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(pos: tuple[int, int]) -> int:
        row, col = pos
        return starts[min(row - 1, len(starts) - 1)] + col

    out: list[Token] = []
    try:
        for tok in tokenize.generate_tokens(io.StringIO(code).readline):
            if tok.type in _SKIP or tok.type in (tokenize.INDENT, tokenize.DEDENT):
                continue
            if tok.type in (tokenize.NEWLINE, tokenize.NL):
                text = "\n"
            else:
                text = tok.string
            out.append(Token(text, offset(tok.start), offset(tok.end)))
    except (tokenize.TokenError, IndentationError) as err:
        raise SyntaxError(str(err)) from err
    return tuple(out)


def hunks(old: str, new: str) -> list[Hunk]:
    """The token hunks that turn ``old`` into ``new``; raises SyntaxError if either does not tokenize."""
    a, b = tokens(old), tokens(new)
    at, bt = [t.text for t in a], [t.text for t in b]
    out: list[Hunk] = []
    for tag, a1, a2, b1, b2 in opcodes(at, bt):
        if tag == "equal":
            continue
        out.append(Hunk(
            a1, a2, b1, b2, " ".join(at[a1:a2]), " ".join(bt[b1:b2]),
            tuple(at[max(0, a1 - _CONTEXT):a1]), tuple(at[a2:a2 + 1]),
        ))
    return out


def common_ends(a: list[str], b: list[str]) -> tuple[int, int]:
    """How many items ``a`` and ``b`` share at their start and (after that) at their end."""
    n = min(len(a), len(b))
    head = 0
    while head < n and a[head] == b[head]:
        head += 1
    tail = 0
    while tail < n - head and a[len(a) - 1 - tail] == b[len(b) - 1 - tail]:
        tail += 1
    return head, tail


def opcodes(a: list[str], b: list[str]) -> list[tuple[str, int, int, int, int]]:
    """difflib's opcodes, with the common head and tail matched first: a proposal usually changes
    a few tokens of a long script, and difflib is quadratic in the part it has to search."""
    head, tail = common_ends(a, b)
    ops: list[tuple[str, int, int, int, int]] = []
    if head:
        ops.append(("equal", 0, head, 0, head))
    matcher = difflib.SequenceMatcher(None, a[head:len(a) - tail], b[head:len(b) - tail], autojunk=False)
    for tag, a1, a2, b1, b2 in matcher.get_opcodes():
        ops.append((tag, a1 + head, a2 + head, b1 + head, b2 + head))
    if tail:
        ops.append(("equal", len(a) - tail, len(a), len(b) - tail, len(b)))
    return ops


def revert(code: str, *, parent: str, child: str) -> str | None:
    """``code`` with the change ``parent -> child`` taken back out, or None if it cannot be.

    ``code`` descends from ``child`` (it has the change, maybe with later ones). Each hunk of the
    change is found in ``code`` through the tokens it shares with ``child``; a hunk whose tokens
    a later change touched again is not separable, and the answer is None.
    """
    try:
        ctoks, ptoks, btoks = tokens(child), tokens(parent), tokens(code)
        change = hunks(parent, child)
    except SyntaxError:
        return None
    if not change:
        return code
    where: dict[int, int] = {}  # child token index -> code token index, for tokens left alone
    for tag, c1, c2, d1, _ in opcodes([t.text for t in ctoks], [t.text for t in btoks]):
        if tag == "equal":
            for k in range(c2 - c1):
                where[c1 + k] = d1 + k
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in code's characters
    for h in change:
        # The hunk's tokens in child (b1:b2) must map, contiguously, onto code.
        if h.b2 > h.b1:
            mapped = [where.get(i) for i in range(h.b1, h.b2)]
            if None in mapped or any(y - x != 1 for x, y in zip(mapped, mapped[1:])):  # type: ignore[operator]
                return None
            start = btoks[mapped[0]].start  # type: ignore[index]
            end = _span_end(code, btoks, mapped[-1])  # type: ignore[arg-type]
        else:  # a pure insertion into child: put the parent's tokens back before the next token
            nxt = where.get(h.b1)
            if nxt is None:
                return None
            start = end = btoks[nxt].start
        text = _parent_text(parent, ptoks, h.a1, h.a2)
        edits.append((start, end, text))
    out = code
    for start, end, text in sorted(edits, reverse=True):
        out = out[:start] + text + out[end:]
    try:
        compile(out, "ablation.py", "exec", dont_inherit=True)
    except (SyntaxError, ValueError):
        return None
    return out


def _span_end(code: str, toks: tuple[Token, ...], last: int) -> int:
    """Where the text of tokens up to ``last`` ends: the next token's start (keeps spacing)."""
    return toks[last + 1].start if last + 1 < len(toks) else len(code)


def _parent_text(parent: str, toks: tuple[Token, ...], a1: int, a2: int) -> str:
    if a2 <= a1:
        return ""
    return parent[toks[a1].start:_span_end(parent, toks, a2 - 1)]


# ---- fast paths for the guard: only the lines that changed are tokenized --------------------


def _window(old: str, new: str) -> tuple[list[str], list[str], int]:
    """The changed middle lines of both scripts (one line of context before) and the 0-based
    index of the first of them: a proposal usually changes a few lines of a long script."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    head, tail = common_ends(a, b)
    start = max(0, head - 1)
    return a[start:len(a) - tail], b[start:len(b) - tail], start


def _snippet_tokens(lines: list[str]) -> list[tuple[int, str, int, int]] | None:
    """(type, text, line, col) of the tokens of some lines, or None if they do not tokenize.

    Lines are fed without their indentation (a window may start inside a block) and columns are
    put back; a bracket the window cuts open is fine (the tokens up to the end all came out).
    """
    indent = [len(line) - len(line.lstrip(" \t")) for line in lines]
    feed = iter(line[i:] for line, i in zip(lines, indent))
    out: list[tuple[int, str, int, int]] = []
    try:
        for tok in tokenize.generate_tokens(lambda: next(feed, "")):
            if tok.type in _SKIP or tok.type in (tokenize.INDENT, tokenize.DEDENT, tokenize.NL, tokenize.NEWLINE):
                continue
            row = tok.start[0]
            col = tok.start[1] + (indent[row - 1] if row <= len(indent) else 0)
            out.append((tok.type, tok.string, row, col))
    except tokenize.TokenError as err:
        if "EOF" not in str(err):
            return None
    except (IndentationError, SyntaxError):
        return None
    return out


_LITERAL_NAMES = frozenset({"True", "False", "None"})


def literal_edits(old: str, new: str) -> list[tuple[int, int, str, str]] | None:
    """``[(line, col, old_text, new_text)]`` (1-based line, in ``old``) when ``new`` differs from
    ``old`` only in number or True/False/None literals; None for any other kind of change."""
    a_lines, b_lines, start = _window(old, new)
    a, b = _snippet_tokens(a_lines), _snippet_tokens(b_lines)
    if a is None or b is None or len(a) != len(b) or not a:
        return None
    out = []
    for (ta, sa, la, ca), (tb, sb, _, _) in zip(a, b):
        if sa == sb:
            continue
        literal = (ta == tb == tokenize.NUMBER) or (sa in _LITERAL_NAMES and sb in _LITERAL_NAMES)
        if not literal:
            return None
        out.append((la + start, ca, sa, sb))
    return out


def local_hunks(old: str, new: str) -> list[Hunk]:
    """Like :func:`hunks`, from the changed lines only (token indexes are the window's): enough
    to name a change by its site and values, at a fraction of the cost on long scripts."""
    a_lines, b_lines, _ = _window(old, new)
    a, b = _snippet_tokens(a_lines), _snippet_tokens(b_lines)
    if a is None or b is None:
        return hunks(old, new)
    at, bt = [t[1] for t in a], [t[1] for t in b]
    out: list[Hunk] = []
    for tag, a1, a2, b1, b2 in opcodes(at, bt):
        if tag != "equal":
            out.append(Hunk(a1, a2, b1, b2, " ".join(at[a1:a2]), " ".join(bt[b1:b2]),
                            tuple(at[max(0, a1 - _CONTEXT):a1]), tuple(at[a2:a2 + 1])))
    return out
