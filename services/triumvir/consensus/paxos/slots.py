"""An acceptor's slot log: the value it accepted in every slot after its snapshot point.

Storage keeps a log without holes and replaces the entry at an index *and everything after
it* on append, so this log mirrors that shape: empty slots below the highest accepted one
hold placeholders, and whenever a slot changes the whole suffix from the lowest changed slot
is handed out again for persisting, so storage never drops a later accepted value.
"""

from __future__ import annotations

from collections.abc import Iterable

from triumvir.consensus.paxos.types import NO_BALLOT, placeholder
from triumvir.consensus.raft.types import Entry


class SlotLog:
    """invariant: self._entries[k].index == self._base + 1 + k; self._dirty_from is None or
    base < dirty_from <= last + 1."""

    __slots__ = ("_base", "_dirty_from", "_entries")

    def __init__(self, base: int, entries: Iterable[Entry] = ()) -> None:
        self._base = base
        self._entries: list[Entry] = []
        for entry in entries:
            if entry.index <= base:
                continue
            assert entry.index == self.last + 1, f"restored log has a hole before {entry.index}"
            self._entries.append(entry)
        self._dirty_from: int | None = None

    @property
    def base(self) -> int:
        """The snapshot slot: everything at or below it was compacted."""
        return self._base

    @property
    def last(self) -> int:
        return self._base + len(self._entries)

    @property
    def dirty_from(self) -> int | None:
        """Lowest slot changed since the last `take_dirty()`, None when nothing changed."""
        return self._dirty_from

    def get(self, slot: int) -> Entry | None:
        """The value accepted in `slot`, None if nothing was (or it was compacted)."""
        if self._base < slot <= self.last:
            entry = self._entries[slot - self._base - 1]
            return entry if entry.term != NO_BALLOT else None
        return None

    def ballot_at(self, slot: int) -> int:
        entry = self.get(slot)
        return entry.term if entry is not None else NO_BALLOT

    def put(self, entry: Entry) -> None:
        slot = entry.index
        assert slot > self._base, f"slot {slot} is compacted (base {self._base})"
        assert entry.term != NO_BALLOT, "a stored value needs a ballot"
        last = self.last
        if slot > last:
            self._entries.extend(placeholder(s) for s in range(last + 1, slot))
            self._entries.append(entry)
            self._mark(last + 1)
        else:
            self._entries[slot - self._base - 1] = entry
            self._mark(slot)

    def values_from(self, slot: int, limit: int) -> list[Entry]:
        """Accepted values at `slot` or above, at most `limit` of them."""
        found: list[Entry] = []
        for entry in self._entries[max(slot - self._base - 1, 0) :]:
            if entry.term != NO_BALLOT:
                if len(found) >= limit:
                    break
                found.append(entry)
        return found

    def stored(self) -> tuple[Entry, ...]:
        """Every accepted value, placeholders left out."""
        return tuple(e for e in self._entries if e.term != NO_BALLOT)

    def take_dirty(self) -> list[Entry]:
        """The suffix that must be persisted (placeholders included); clears the mark."""
        start = self._dirty_from
        self._dirty_from = None
        if start is None:
            return []
        return self._entries[start - self._base - 1 :]

    def compact(self, slot: int) -> None:
        """Drop everything at or below `slot`; later slots stay (they are acceptor state)."""
        if slot <= self._base:
            return
        del self._entries[: slot - self._base]
        self._base = slot
        if self._dirty_from is not None and self._dirty_from <= slot:
            self._dirty_from = slot + 1 if self._entries else None

    def _mark(self, slot: int) -> None:
        if self._dirty_from is None or slot < self._dirty_from:
            self._dirty_from = slot
