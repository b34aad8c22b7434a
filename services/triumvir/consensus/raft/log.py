"""The in-memory Raft log: the entries after the latest snapshot, in a list with an offset.

The log knows nothing of commit, durability or roles; it answers "which term is at index i"
and keeps itself contiguous. Terms never decrease along the log, which lets term searches
bisect instead of scanning.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from triumvir.consensus.raft.types import Entry


def _entry_term(entry: Entry) -> int:
    return entry.term


class RaftLog:
    __slots__ = ("_entries", "_snapshot_index", "_snapshot_term")

    def __init__(
        self, snapshot_index: int = 0, snapshot_term: int = 0, entries: Sequence[Entry] = ()
    ) -> None:
        self._snapshot_index = snapshot_index
        self._snapshot_term = snapshot_term
        # invariant: _entries[k].index == _snapshot_index + 1 + k, terms never decrease,
        # and every term is >= _snapshot_term.
        self._entries: list[Entry] = []
        self.append(entries)

    # -- queries ---------------------------------------------------------------------------

    @property
    def snapshot_index(self) -> int:
        return self._snapshot_index

    @property
    def snapshot_term(self) -> int:
        return self._snapshot_term

    @property
    def first_index(self) -> int:
        return self._snapshot_index + 1

    @property
    def last_index(self) -> int:
        return self._snapshot_index + len(self._entries)

    @property
    def last_term(self) -> int:
        return self._entries[-1].term if self._entries else self._snapshot_term

    def term(self, index: int) -> int | None:
        """The term at `index`, or None when it was compacted away or is not there yet."""
        offset = index - self._snapshot_index
        if offset == 0:
            return self._snapshot_term
        if 0 < offset <= len(self._entries):
            return self._entries[offset - 1].term
        return None

    def matches(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def entry(self, index: int) -> Entry:
        offset = index - self._snapshot_index
        assert 0 < offset <= len(self._entries), f"entry {index} is not in the log"
        return self._entries[offset - 1]

    def slice(self, lo: int, hi: int) -> list[Entry]:
        """Entries with lo <= index < hi (both clamped to what the log holds)."""
        start = max(lo - self._snapshot_index - 1, 0)
        stop = max(hi - self._snapshot_index - 1, 0)
        return self._entries[start:stop]

    def batch_from(self, lo: int, count_max: int, bytes_max: int) -> list[Entry]:
        """Up to `count_max` entries from `lo`, stopping before `bytes_max` is exceeded but
        always including the first entry so one oversized entry still makes progress."""
        assert lo > self._snapshot_index, f"entry {lo} was compacted"
        start = lo - self._snapshot_index - 1
        batch = self._entries[start : start + count_max]
        total = 0
        for position, entry in enumerate(batch):
            total += entry.size_bytes()
            if total > bytes_max and position > 0:
                return batch[:position]
        return batch

    def all_entries(self) -> tuple[Entry, ...]:
        return tuple(self._entries)

    def find_conflict(self, entries: Sequence[Entry]) -> int:
        """Index of the first of `entries` that is missing or has another term; 0 if the log
        already holds them all."""
        for entry in entries:
            if self.term(entry.index) != entry.term:
                return entry.index
        return 0

    def first_index_of_term(self, term: int, at_or_before: int) -> int:
        """The smallest index in (snapshot, at_or_before] whose term equals the term there."""
        hi = min(at_or_before, self.last_index) - self._snapshot_index
        position = bisect.bisect_left(self._entries, term, 0, hi, key=_entry_term)
        return self._snapshot_index + 1 + position

    def last_index_of_term(self, term: int) -> int:
        """The largest index holding `term`, or 0 if the retained log has none."""
        position = bisect.bisect_right(self._entries, term, key=_entry_term)
        if position > 0 and self._entries[position - 1].term == term:
            return self._snapshot_index + position
        if position == 0 and self._snapshot_term == term and self._snapshot_index > 0:
            return self._snapshot_index
        return 0

    # -- changes ---------------------------------------------------------------------------

    def append(self, entries: Sequence[Entry]) -> None:
        """Add entries that continue the log exactly."""
        last_term = self.last_term
        expected = self.last_index + 1
        for entry in entries:
            assert entry.index == expected, f"entry {entry.index} does not follow {expected - 1}"
            assert entry.term >= last_term, f"term goes back at index {entry.index}"
            self._entries.append(entry)
            expected += 1
            last_term = entry.term

    def truncate_and_append(self, entries: Sequence[Entry]) -> None:
        """Replace everything from entries[0].index on with `entries`."""
        if not entries:
            return
        first = entries[0].index
        assert self._snapshot_index < first <= self.last_index + 1, f"cannot write at {first}"
        del self._entries[first - self._snapshot_index - 1 :]
        self.append(entries)

    def compact(self, index: int) -> None:
        """Drop every entry up to and including `index`; it becomes the snapshot point."""
        term = self.term(index)
        assert term is not None and index >= self._snapshot_index, f"cannot compact to {index}"
        del self._entries[: index - self._snapshot_index]
        self._snapshot_index = index
        self._snapshot_term = term

    def reset(self, snapshot_index: int, snapshot_term: int) -> None:
        """Throw the whole log away in favour of a snapshot that does not match it."""
        self._entries = []
        self._snapshot_index = snapshot_index
        self._snapshot_term = snapshot_term
