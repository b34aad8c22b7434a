"""The contiguous run of log entries a replica holds after its snapshot, and the two rules
that change it: an append replaces the entry at its index and everything after it, and a
snapshot drops the entries it covers.

Both storages and the WAL replay use this one implementation so the rules cannot drift
apart between the real disk and the simulator's memory.
"""

from __future__ import annotations

from collections.abc import Sequence

from triumvir.consensus.raft.types import Entry


class LogWindow:
    """Entries `start .. last_index()` with no holes.

    invariant: self._entries[k].index == self._start + k for every k.
    """

    __slots__ = ("_entries", "_start")

    def __init__(self, start: int = 1) -> None:
        assert start >= 1, f"log indexes start at 1, got {start}"
        self._entries: list[Entry] = []
        self._start = start

    @property
    def start(self) -> int:
        """Index of the first entry held, or of the next entry expected when empty."""
        return self._start

    def last_index(self) -> int:
        return self._start + len(self._entries) - 1

    def __len__(self) -> int:
        return len(self._entries)

    def term_at(self, index: int) -> int | None:
        if self._start <= index <= self.last_index():
            return self._entries[index - self._start].term
        return None

    def entries(self) -> tuple[Entry, ...]:
        return tuple(self._entries)

    def append(self, entries: Sequence[Entry]) -> None:
        """Write `entries` (contiguous, ascending); the first replaces the entry at its index
        and everything after it. It may not leave a hole or reach below `start`."""
        if not entries:
            return
        first = entries[0].index
        check_contiguous(entries)
        if first < self._start:
            raise ValueError(f"append at index {first} is below the log start {self._start}")
        if first > self.last_index() + 1:
            raise ValueError(
                f"append at index {first} leaves a gap after last index {self.last_index()}"
            )
        del self._entries[first - self._start :]
        self._entries.extend(entries)

    def restart(self, start: int) -> None:
        """Forget every entry; the next one expected is at `start`."""
        assert start >= 1, f"log indexes start at 1, got {start}"
        self._entries.clear()
        self._start = start

    def compact(self, index: int, term: int) -> None:
        """Apply a snapshot at (index, term). Entries after it survive only when the log
        holds the snapshot's own entry with the same term: otherwise they belong to a
        history the snapshot contradicts (Raft paper, section 7: discard the whole log)."""
        if index < self._start:
            return  # nothing held is covered
        if self.term_at(index) == term:
            del self._entries[: index - self._start + 1]
            self._start = index + 1
        else:
            self.restart(index + 1)


def check_contiguous(entries: Sequence[Entry]) -> None:
    first = entries[0].index
    for offset, entry in enumerate(entries):
        if entry.index != first + offset:
            raise ValueError(
                f"entries must be contiguous: expected index {first + offset}, got {entry.index}"
            )
