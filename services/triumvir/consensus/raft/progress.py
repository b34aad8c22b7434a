"""What a leader knows about one follower's log, and how hard it may push entries at it.

A follower is in one of three states:
- PROBE: we do not know where its log matches ours; one APPEND at a time, then wait.
- REPLICATE: it accepted our last probe; APPENDs are pipelined, at most `inflight_max`.
- SNAPSHOT: it needs entries we compacted; a snapshot is being streamed instead.
"""

from __future__ import annotations

import enum
from collections import deque

from triumvir.consensus.raft.types import Snapshot


class ProgressState(enum.Enum):
    PROBE = "probe"
    REPLICATE = "replicate"
    SNAPSHOT = "snapshot"


class Inflights:
    """Last indexes of the APPENDs sent but not yet acknowledged, oldest first."""

    __slots__ = ("_capacity", "_last_indexes")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._last_indexes: deque[int] = deque()

    def __len__(self) -> int:
        return len(self._last_indexes)

    @property
    def full(self) -> bool:
        return len(self._last_indexes) >= self._capacity

    def add(self, last_index: int) -> None:
        assert not self.full, "too many APPENDs in flight"
        self._last_indexes.append(last_index)

    def free_up_to(self, index: int) -> None:
        """An acknowledgement up to `index` covers every APPEND ending at or before it."""
        while self._last_indexes and self._last_indexes[0] <= index:
            self._last_indexes.popleft()

    def free_first(self) -> None:
        if self._last_indexes:
            self._last_indexes.popleft()

    def clear(self) -> None:
        self._last_indexes.clear()


class Progress:
    __slots__ = (
        "inflights",
        "match",
        "next",
        "probe_sent",
        "recent_active",
        "sent_commit",
        "snapshot",
        "snapshot_answered",
        "snapshot_offset",
        "state",
    )

    def __init__(self, next_index: int, inflight_max: int) -> None:
        # invariant: match < next (the follower holds our entries up to match, we send next)
        self.match = 0
        self.next = next_index
        self.state = ProgressState.PROBE
        self.probe_sent = False  # PROBE: an APPEND is out, wait for its answer or a heartbeat
        self.recent_active = False  # heard from since the last quorum check
        self.sent_commit = 0  # highest commit index this follower was told it may use
        self.inflights = Inflights(inflight_max)
        self.snapshot: Snapshot | None = None  # SNAPSHOT: the one being streamed
        self.snapshot_offset = 0  # SNAPSHOT: bytes the follower confirmed
        self.snapshot_answered = False  # SNAPSHOT: an answer came since the last heartbeat

    def __repr__(self) -> str:
        return f"Progress({self.state.value} match={self.match} next={self.next})"

    @property
    def paused(self) -> bool:
        if self.state is ProgressState.PROBE:
            return self.probe_sent
        if self.state is ProgressState.REPLICATE:
            return self.inflights.full
        return True

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT and self.snapshot is not None:
            # The snapshot may have landed; resume just after it (or after match).
            self.next = max(self.match + 1, self.snapshot.meta.index + 1)
        else:
            self.next = self.match + 1
        self._reset(ProgressState.PROBE)

    def become_replicate(self) -> None:
        self.next = self.match + 1
        self._reset(ProgressState.REPLICATE)

    def become_snapshot(self, snapshot: Snapshot) -> None:
        self._reset(ProgressState.SNAPSHOT)
        self.snapshot = snapshot

    def _reset(self, state: ProgressState) -> None:
        self.state = state
        self.probe_sent = False
        self.inflights.clear()
        self.snapshot = None
        self.snapshot_offset = 0
        self.snapshot_answered = False

    def sent_entries(self, last_index: int) -> None:
        """Record an APPEND carrying entries up to `last_index`."""
        if self.state is ProgressState.REPLICATE:
            self.next = last_index + 1
            self.inflights.add(last_index)
        elif self.state is ProgressState.PROBE:
            self.probe_sent = True

    def acknowledge(self, index: int) -> bool:
        """The follower matches us up to `index`; False when that is old news."""
        updated = index > self.match
        if updated:
            self.match = index
            self.probe_sent = False
        self.next = max(self.next, index + 1)
        return updated

    def reject(self, rejected_index: int, next_guess: int) -> bool:
        """The APPEND whose preceding entry was `rejected_index` did not match. Moves `next`
        back to `next_guess` (never at or below match); False if the rejection is stale."""
        if self.state is ProgressState.SNAPSHOT:
            return False  # the snapshot answer decides where to go next
        if self.state is ProgressState.REPLICATE:
            if rejected_index <= self.match:
                return False  # an old APPEND, already superseded by an acknowledgement
            self.state = ProgressState.PROBE
            self.inflights.clear()
        elif rejected_index != self.next - 1:
            return False  # not an answer to the probe we are waiting for
        self.next = max(min(next_guess, rejected_index), self.match + 1)
        self.probe_sent = False
        return True
