"""The journal's hash chain: each line carries the hash of the line before it, and the first line
(and every run event) pins the hash of ``run.json``.

A line added, removed or changed anywhere before the last one, or a ``run.json`` changed after
the run started, is found on replay; the first line that does not follow is named. Tamper
evidence, not a signature: whoever can write the folder can rewrite it whole, which the sandbox
prevents nodes from doing. A run written before the chain (no ``prev`` anywhere at its start)
loads as unverified; once a line is chained, every later line must be.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from ..core.errors import JournalError


def line_hash(data: bytes) -> str:
    """The chain's hash of one line (without its newline) or of run.json's bytes: 128 bits of SHA-256."""
    return hashlib.sha256(data).hexdigest()[:32]


def last_line(path: Path) -> bytes | None:
    """The file's last non-empty line, or None for an empty or missing file."""
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            pos, tail = size, b""
            while pos > 0:
                begin = max(0, pos - 65536)
                f.seek(begin)
                tail = f.read(pos - begin) + tail
                stripped = tail.rstrip(b"\n")
                if b"\n" in stripped or begin == 0:
                    return stripped.rsplit(b"\n", 1)[-1] if stripped else None
                pos = begin
    except FileNotFoundError:
        return None
    return None


class ChainCheck:
    """Checks one journal's lines in order; ``anchor`` is run.json's hash (None: not known)."""

    def __init__(self, source: str, anchor: str | None) -> None:
        self.source = source
        self.anchor = anchor
        self.chained = False  # a line with "prev" was seen: from there on every line must chain
        self.unchained = False  # lines without "prev" came first (a run written before chaining)

    def check(self, event: dict[str, Any], previous: bytes | None, lineno: int) -> None:
        """Raise JournalError at the first line that does not follow (``previous``: the line before)."""
        prev = event.get("prev")
        if prev is None:
            if self.chained:
                raise self.tampered(lineno, "it carries no hash of the line before, as every line after line "
                                    "1 of a chained journal does (a line added by hand?)")
            self.unchained = True
            return
        self.chained = True
        if previous is not None:
            if prev != line_hash(previous):
                raise self.tampered(lineno, f"line {lineno - 1} is not the line this one was written after")
        elif self.anchor is not None and prev != self.anchor:
            raise self.tampered(lineno, "run.json is not the one this journal was started with (it was modified)")
        pinned = event.get("run_json")
        if pinned is not None and self.anchor is not None and pinned != self.anchor:
            raise self.tampered(lineno, "run.json is not the one this line pinned (it was modified after the run started)")

    def verified(self, count: int) -> bool:
        """Every line chained and run.json pinned (an empty journal has nothing to doubt)."""
        return count == 0 or (self.chained and not self.unchained and self.anchor is not None)

    def tampered(self, lineno: int, why: str) -> JournalError:
        return JournalError(
            f"{self.source}:{lineno}: the run record was modified: {why}; refusing to use it "
            "(restore the run from a copy, or delete it)"
        )
