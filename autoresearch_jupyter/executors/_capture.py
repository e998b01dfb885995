"""A capped log: a script that prints gigabytes must not fill the disk or the parent's memory.

The head goes to the file as it arrives (so a live view sees ordinary logs at once); past the
head, only the most recent bytes are kept in a bounded buffer, and written after a marker line
when the job ends. Memory stays below the tail's size plus one read.
"""

from __future__ import annotations

import collections
from pathlib import Path

TAIL_CHARS = 4096  # how much of the end of the log a JobResult carries


class CappedLog:
    """Writes at most about ``limit`` bytes to ``path``: the first half and the last half."""

    def __init__(self, path: Path, limit: int) -> None:
        self.path = path
        self.head_cap = limit // 2
        self.tail_cap = limit - self.head_cap
        self.head_len = 0
        self.dropped = 0
        self._tail: collections.deque[bytes] = collections.deque()
        self._tail_len = 0
        self._file = open(path, "wb", buffering=0)

    def write(self, data: bytes) -> None:
        """Add output; the head is written through, the rest kept as a bounded tail."""
        if self.head_len < self.head_cap:
            part = data[: self.head_cap - self.head_len]
            self._file.write(part)
            self.head_len += len(part)
            data = data[len(part) :]
            if not data:
                return
        self._tail.append(data)
        self._tail_len += len(data)
        while self._tail_len - len(self._tail[0]) >= self.tail_cap:
            self.dropped += len(self._tail[0])
            self._tail_len -= len(self._tail.popleft())

    def note(self, text: str) -> None:
        """Append a line of the executor's own (why a job was killed or could not start)."""
        self.write(f"\n[autoresearch] {text}\n".encode())

    def _trim(self) -> None:
        excess = self._tail_len - self.tail_cap
        if excess > 0:
            self._tail[0] = self._tail[0][excess:]
            self._tail_len -= excess
            self.dropped += excess

    def close(self) -> None:
        """Write the marker and the tail; safe to call twice."""
        if self._file.closed:
            return
        self._trim()
        try:
            if self.dropped:
                self._file.write(
                    f"\n[autoresearch] ... {self.dropped} bytes of output dropped here "
                    f"(log capped at {self.head_cap + self.tail_cap} bytes: head and tail kept) ...\n"
                    .encode()
                )
            for chunk in self._tail:
                self._file.write(chunk)
        finally:
            self._file.close()

    def tail_text(self, n: int = TAIL_CHARS) -> str:
        """The last ``n`` bytes of output as text, for the journal and error messages."""
        self._trim()
        parts: list[bytes] = []
        have = 0
        for chunk in reversed(self._tail):
            parts.append(chunk[-(n - have) :])
            have += len(parts[-1])
            if have >= n:
                break
        data = b"".join(reversed(parts))
        if have < n and self.head_len:  # short output: the rest is at the end of the head
            with open(self.path, "rb") as f:
                f.seek(max(0, self.head_len - (n - have)))
                data = f.read(min(self.head_len, n - have)) + data
        i = 0
        while i < min(4, len(data)) and 0x80 <= data[i] < 0xC0:  # do not start inside a character
            i += 1
        return data[i:].decode("utf-8", errors="replace")
