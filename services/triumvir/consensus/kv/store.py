"""The multi-version key store: every write gets a revision, and past revisions stay readable
until they are compacted.

Three structures, each answering one kind of question fast:
- `_live` / `_live_keys`: the newest version of each existing key, plus a sorted key list, so
  reads at the latest revision cost O(log n + k);
- `_history` / `_history_keys`: every retained version of every key (deleted keys included),
  so reads at a past revision find the version in force by bisecting one key's list;
- `_log`: every retained write in (revision, sub) order, which is what watches replay and
  what the consistency hash covers.

The store knows nothing of leases, sessions or the wire format of requests; writes happen
between `begin_write` and `end_write` so that a transaction's writes share one revision.
"""

from __future__ import annotations

import struct
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from operator import attrgetter

import crc32c

from triumvir.common.errors import Compacted, FutureRevision
from triumvir.consensus.kv import keyrange
from triumvir.consensus.kv.records import KeyRecord, tombstone

MAX_EVENTS_PER_READ = 10_000
"""A sensible page size for `events_since` callers that page (whole revisions are kept)."""

_MOD_REVISION = attrgetter("mod_revision")
_HASH_HEADER = struct.Struct(">qqqqqII")


class MvccStore:
    def __init__(self) -> None:
        # invariant: compact_revision <= revision; every record in _log has
        # mod_revision > compact_revision, and _log is sorted by (mod_revision, sub).
        self._revision = 0
        self._compact_revision = 0
        self._live: dict[bytes, KeyRecord] = {}
        self._live_keys: list[bytes] = []
        self._history: dict[bytes, list[KeyRecord]] = {}
        self._history_keys: list[bytes] = []
        self._log: list[KeyRecord] = []
        self._writing = False
        self._sub = 0

    @property
    def revision(self) -> int:
        return self._revision

    @property
    def compact_revision(self) -> int:
        return self._compact_revision

    def __len__(self) -> int:
        return len(self._live)

    # ---- writes -------------------------------------------------------------------------

    def begin_write(self) -> None:
        assert not self._writing, "nested write"
        self._writing = True
        self._sub = 0

    def end_write(self) -> int:
        """Close the write; the revision advances by one if anything was written."""
        assert self._writing, "end_write without begin_write"
        self._writing = False
        if self._sub > 0:
            self._revision += 1
        return self._revision

    @property
    def pending_revision(self) -> int:
        """The revision the writes of the open write batch carry."""
        return self._revision + 1

    def put(self, key: bytes, value: bytes, lease: int) -> tuple[KeyRecord, KeyRecord | None]:
        """Write `key`; returns the new record and the live one it replaced."""
        assert self._writing, "put outside a write"
        revision = self._revision + 1
        prev = self._live.get(key)
        if prev is None:
            record = KeyRecord(key, value, revision, revision, 1, lease, self._sub)
            insort(self._live_keys, key)
        else:
            # invariant: a key is written at most once per revision (txn checks enforce it).
            assert prev.mod_revision < revision, "key written twice in one revision"
            record = KeyRecord(
                key, value, prev.create_revision, revision, prev.version + 1, lease, self._sub
            )
        self._sub += 1
        self._live[key] = record
        self._remember(record)
        return record, prev

    def delete(self, key: bytes) -> tuple[KeyRecord, KeyRecord] | None:
        """Delete `key` if it exists; returns the tombstone and the record it ended."""
        assert self._writing, "delete outside a write"
        prev = self._live.pop(key, None)
        if prev is None:
            return None
        del self._live_keys[bisect_left(self._live_keys, key)]
        record = tombstone(key, self._revision + 1, self._sub)
        self._sub += 1
        self._remember(record)
        return record, prev

    def _remember(self, record: KeyRecord) -> None:
        history = self._history.get(record.key)
        if history is None:
            self._history[record.key] = [record]
            insort(self._history_keys, record.key)
        else:
            history.append(record)
        self._log.append(record)

    # ---- reads --------------------------------------------------------------------------

    def get(self, key: bytes) -> KeyRecord | None:
        """The live version of `key`, including writes of an open write batch."""
        return self._live.get(key)

    def check_read_revision(self, revision: int) -> int:
        """Validate a requested read revision; 0 or negative means the latest."""
        if revision <= 0:
            return self._revision
        if revision > self._revision:
            raise FutureRevision(
                f"required revision {revision} is a future revision (current {self._revision})"
            )
        if revision < self._compact_revision:
            raise Compacted(
                f"required revision {revision} has been compacted "
                f"(compacted at {self._compact_revision})"
            )
        return revision

    def _reads_live(self, revision: int) -> bool:
        # During a write the live view holds pending versions newer than `revision`.
        return revision >= self._revision and not (self._writing and self._sub > 0)

    def scan(
        self, start: bytes, range_end: bytes, revision: int, *, reverse: bool = False
    ) -> Iterator[KeyRecord]:
        """Versions in force at `revision` of the keys in the range, in key order.

        `revision` must come from `check_read_revision` (or be `pending_revision` inside a
        write, to see the batch's own writes).
        """
        if revision >= self.pending_revision or self._reads_live(revision):
            lo, hi = keyrange.index_bounds(self._live_keys, start, range_end)
            indices = range(hi - 1, lo - 1, -1) if reverse else range(lo, hi)
            live, keys = self._live, self._live_keys
            for i in indices:
                yield live[keys[i]]
            return
        lo, hi = keyrange.index_bounds(self._history_keys, start, range_end)
        indices = range(hi - 1, lo - 1, -1) if reverse else range(lo, hi)
        for i in indices:
            record = self._version_at(self._history[self._history_keys[i]], revision)
            if record is not None:
                yield record

    def count(self, start: bytes, range_end: bytes, revision: int) -> int:
        if revision >= self.pending_revision or self._reads_live(revision):
            lo, hi = keyrange.index_bounds(self._live_keys, start, range_end)
            return hi - lo
        return sum(1 for _ in self.scan(start, range_end, revision))

    @staticmethod
    def _version_at(history: list[KeyRecord], revision: int) -> KeyRecord | None:
        i = bisect_right(history, revision, key=_MOD_REVISION) - 1
        if i < 0 or history[i].is_tombstone:
            return None
        return history[i]

    def previous(self, record: KeyRecord) -> KeyRecord | None:
        """The live version `record` replaced, if it is still retained."""
        history = self._history[record.key]
        i = bisect_left(history, record.mod_revision, key=_MOD_REVISION)
        if i == 0 or history[i - 1].is_tombstone:
            return None
        return history[i - 1]

    # ---- history ------------------------------------------------------------------------

    def compact(self, revision: int) -> None:
        """Forget every version superseded at or before `revision`.

        Reads at `revision` and later keep working; earlier ones fail with Compacted.
        """
        assert not self._writing, "compact inside a write"
        if revision > self._revision:
            raise FutureRevision(
                f"required revision {revision} is a future revision (current {self._revision})"
            )
        if revision <= self._compact_revision:
            raise Compacted(
                f"required revision {revision} has been compacted "
                f"(compacted at {self._compact_revision})"
            )
        emptied = False
        for key in self._history_keys:
            history = self._history[key]
            # Keep the version in force at `revision` (unless it is a delete) so that reads
            # at exactly the compaction revision still see it.
            i = bisect_right(history, revision, key=_MOD_REVISION) - 1
            if i < 0:
                continue
            drop = i + 1 if history[i].is_tombstone else i
            if drop:
                # A new list, never a cut of the old one: a snapshot being encoded on another
                # thread may still be reading the old list (see frozen_histories).
                if drop < len(history):
                    self._history[key] = history[drop:]
                else:
                    del self._history[key]
                    emptied = True
        if emptied:
            self._history_keys = [k for k in self._history_keys if k in self._history]
        del self._log[: bisect_right(self._log, revision, key=_MOD_REVISION)]
        self._compact_revision = revision

    def writes_since(
        self,
        start_revision: int,
        start: bytes,
        range_end: bytes,
        max_events: int | None = None,
    ) -> list[KeyRecord]:
        """Retained writes to keys in the range with revision >= `start_revision`, in order.

        With `max_events`, stops after that many at a revision boundary, so a caller that
        resumes from the last revision returned + 1 sees no gap and no duplicate.
        """
        limit = len(self._log) if max_events is None else max_events
        assert limit > 0
        if start_revision <= self._compact_revision:
            raise Compacted(
                f"required revision {start_revision} has been compacted "
                f"(compacted at {self._compact_revision})"
            )
        log = self._log
        out: list[KeyRecord] = []
        for i in range(bisect_left(log, start_revision, key=_MOD_REVISION), len(log)):
            record = log[i]
            if len(out) >= limit and record.mod_revision != out[-1].mod_revision:
                break
            if keyrange.contains(record.key, start, range_end):
                out.append(record)
        return out

    def hash(self, revision: int) -> int:
        """CRC-32C over every write in (compact_revision, revision], in revision order."""
        if revision > self._revision:
            raise FutureRevision(
                f"required revision {revision} is a future revision (current {self._revision})"
            )
        if revision < self._compact_revision:
            raise Compacted(
                f"required revision {revision} has been compacted "
                f"(compacted at {self._compact_revision})"
            )
        crc = 0
        for record in self._log:
            if record.mod_revision > revision:
                break
            header = _HASH_HEADER.pack(
                record.mod_revision,
                record.sub,
                record.create_revision,
                record.version,
                record.lease,
                len(record.key),
                len(record.value),
            )
            crc = crc32c.crc32c(record.value, crc32c.crc32c(record.key, crc32c.crc32c(header, crc)))
        return crc

    # ---- snapshots ----------------------------------------------------------------------

    def histories(self) -> Iterator[tuple[bytes, list[KeyRecord]]]:
        """Every retained key with its versions, in key order."""
        for key in self._history_keys:
            yield key, self._history[key]

    def frozen_histories(self) -> FrozenHistories:
        """`histories()` as of now, to be read later, on another thread, while writes go on.

        Costs two shallow copies, not a copy of every version: a key's list of versions is
        only ever appended to (compaction puts a new list in its place), so the versions up
        to the current revision stay exactly as they are.
        """
        return FrozenHistories(self._history_keys[:], dict(self._history), self._revision)

    @classmethod
    def from_histories(
        cls,
        revision: int,
        compact_revision: int,
        histories: Iterable[tuple[bytes, list[KeyRecord]]],
    ) -> MvccStore:
        store = cls()
        store._revision = revision
        store._compact_revision = compact_revision
        for key, history in histories:
            store._history[key] = history
            store._history_keys.append(key)
            last = history[-1]
            if not last.is_tombstone:
                store._live[key] = last
                store._live_keys.append(key)
            store._log.extend(r for r in history if r.mod_revision > compact_revision)
        store._history_keys.sort()
        store._live_keys.sort()
        store._log.sort(key=lambda r: (r.mod_revision, r.sub))
        return store


class FrozenHistories:
    """Every key's versions up to one revision, in key order (see `frozen_histories`)."""

    def __init__(
        self, keys: list[bytes], histories: dict[bytes, list[KeyRecord]], revision: int
    ) -> None:
        self._keys = keys
        self._histories = histories
        self._revision = revision

    def __len__(self) -> int:
        return len(self._keys)  # every retained key has at least one version

    def __iter__(self) -> Iterator[tuple[bytes, list[KeyRecord]]]:
        revision = self._revision
        for key in self._keys:
            history = self._histories[key]
            if history[-1].mod_revision > revision:
                history = history[: bisect_right(history, revision, key=_MOD_REVISION)]
            yield key, history
