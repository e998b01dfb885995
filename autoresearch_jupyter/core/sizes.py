"""Sizes in bytes as people write them (``4G``, ``512M``): memory limits and log caps."""

from __future__ import annotations

import re

from .errors import ExecutorError

_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([KMGT]?)(?:I?B)?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """Bytes from ``"2G"``, ``"512M"``, ``"1.5GiB"`` or a plain number (K/M/G/T are powers of 1024)."""
    if isinstance(text, int) and not isinstance(text, bool):
        if text <= 0:
            raise ExecutorError(f"invalid size {text!r}: must be a positive number of bytes")
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise ExecutorError(f"invalid size {text!r}: use a number with an optional K, M, G or T suffix (2G)")
    value = int(float(match.group(1)) * _UNITS[match.group(2).upper()])
    if value <= 0:
        raise ExecutorError(f"invalid size {text!r}: must be more than 0 bytes")
    return value


def format_size(n: int) -> str:
    """``2147483648 -> '2 GiB'``: sizes in messages, in the units parse_size reads."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"
