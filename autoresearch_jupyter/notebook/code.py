"""Notebook cells -> node scripts: the registered setup, frozen, then the training cell.

A node script must run on its own, so it carries everything the training cell needs from the
notebook: the ``--use`` loader and the ``%%autoresearch_setup`` cells, inside one frozen region
(``# autoresearch: freeze`` ... ``# autoresearch: end``). The guard rejects any proposal that
edits it, so the data and the evaluation helpers stay what the user wrote.

Several setup cells are joined in the order they first ran. Running the same cell again replaces
its earlier version in place (the same Jupyter cell id, or the same text where the front end
sends no id), so re-running a notebook does not stack copies. A run copies the setup into its
baseline when it starts: editing a setup cell later changes only runs started afterwards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from ..core.errors import ScriptError
from ..core.protocol import END_MARK, FREEZE_MARK
from .usevars import preamble

SETUP_BEGIN = "# autoresearch: freeze  (notebook setup: %%autoresearch_setup cells and --use variables)"
SETUP_END = "# autoresearch: end  (notebook setup)"


@dataclasses.dataclass(frozen=True)
class SetupBlock:
    """One registered setup cell: its code, and what identifies it when it runs again."""

    key: str
    code: str


class SetupRegistry:
    """The setup cells registered in this kernel, in the order they first ran."""

    def __init__(self) -> None:
        self._blocks: list[SetupBlock] = []

    def register(self, code: str, *, cell_id: str | None = None) -> bool:
        """Add a setup cell, or replace the earlier version of the same cell; True if replaced."""
        check_setup(code)
        key = f"id:{cell_id}" if cell_id else f"text:{code.strip()}"
        block = SetupBlock(key, code.strip("\n"))
        for i, old in enumerate(self._blocks):
            if old.key == key:
                self._blocks[i] = block
                return True
        self._blocks.append(block)
        return False

    def clear(self) -> None:
        self._blocks = []

    @property
    def blocks(self) -> tuple[SetupBlock, ...]:
        return tuple(self._blocks)

    @property
    def code(self) -> str:
        return "\n\n".join(b.code for b in self._blocks)

    def __len__(self) -> int:
        return len(self._blocks)


def check_plain_python(code: str, what: str) -> None:
    """ScriptError unless ``code`` compiles: node scripts are plain Python, not IPython syntax."""
    try:
        compile(code, f"<{what}>", "exec")
    except SyntaxError as err:
        line = (err.text or "").strip()
        hint = ""
        if line.startswith(("%", "!")) or line.endswith("?"):
            hint = " (IPython syntax: node scripts are plain Python, move it to another cell)"
        shown = f": {line[:80]}" if line else ""
        raise ScriptError(f"the {what} is not valid Python: line {err.lineno}: {err.msg}{shown}{hint}") from None


def check_setup(code: str) -> None:
    """A setup cell must be plain Python without its own freeze markers (it is frozen whole)."""
    check_plain_python(code, "setup cell")
    for n, line in enumerate(code.splitlines(), 1):
        if FREEZE_MARK.match(line) or END_MARK.match(line):
            raise ScriptError(
                f"the setup cell is frozen as a whole; remove its marker line {n} ({line.strip()[:60]})"
            )


def build_script(*, cell: str, setup: str = "", use: Sequence[str] = ()) -> str:
    """The baseline script: the frozen setup (the --use loader first), a blank line, the cell."""
    cell = cell.strip("\n") + "\n"
    parts = [p for p in (preamble(use).rstrip("\n"), setup.strip("\n")) if p]
    if not parts:
        return cell
    return "\n".join([SETUP_BEGIN, "\n\n".join(parts), SETUP_END, "", cell])


def split_script(code: str) -> tuple[str, str]:
    """(setup, cell) of a script that ``build_script`` made; ("", code) for any other script.

    The setup comes back without its markers; the cell is what the training cell looked like in
    this node (after the proposer's changes).
    """
    lines = code.splitlines(keepends=True)
    if not lines or lines[0].rstrip("\r\n") != SETUP_BEGIN:
        return "", code
    for i, line in enumerate(lines[1:], 1):
        if line.rstrip("\r\n") == SETUP_END:
            setup = "".join(lines[1:i])
            rest = lines[i + 1 :]
            if rest and not rest[0].strip():
                rest = rest[1:]
            return setup, "".join(rest)
    return "", code
