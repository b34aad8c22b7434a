"""The run's fingerprint: a sha256 over every event, in the order it happened.

Two runs of one seed must produce the same hash; any divergence (an unseeded random
choice, iteration over an unordered set of strings, wall-clock use) shows up here first.
"""

from __future__ import annotations

import hashlib

TRACE_BUFFER_LINES = 1024  # lines hashed together: one update per batch is much cheaper


class Trace:
    __slots__ = ("_buffer", "_hash", "_keep", "events")

    def __init__(self, *, keep: bool = False) -> None:
        self._hash = hashlib.sha256()
        self._buffer: list[str | tuple[object, ...]] = []
        self.events = 0
        self._keep: list[str] | None = [] if keep else None

    def record(self, event: str | tuple[object, ...]) -> None:
        """Record one event: a line of text, or a tuple of ints, strings and bools (cheaper
        to build than text on the hot path; its repr is just as deterministic)."""
        buffer = self._buffer
        buffer.append(event)
        if len(buffer) >= TRACE_BUFFER_LINES:
            self._flush()

    def _flush(self) -> None:
        buffer = self._buffer
        if not buffer:
            return
        # The repr of a list of strings and tuples of plain values does not depend on the
        # process (no hash randomization), so equal runs hash equal bytes.
        self._hash.update(repr(buffer).encode())
        self.events += len(buffer)
        if self._keep is not None:
            self._keep.extend(e if isinstance(e, str) else " ".join(map(str, e)) for e in buffer)
        self._buffer = []

    def lines(self) -> list[str]:
        """Every recorded event as text (only when constructed with keep=True)."""
        self._flush()
        return list(self._keep or ())

    def hexdigest(self) -> str:
        self._flush()
        return self._hash.hexdigest()
