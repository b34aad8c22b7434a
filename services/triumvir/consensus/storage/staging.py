"""What a replica has made durable versus what it has only written since the last sync.

Writes are staged as one overlay on top of the durable log (the index from which they
replace it, plus the entries), so any number of appends before a sync cost no more than
the entries themselves and a crash simply forgets the overlay. Both storages keep their
bookkeeping here; the file storage additionally writes the bytes to its WAL.
"""

from __future__ import annotations

from collections.abc import Sequence

from triumvir.consensus.raft.types import Entry, HardState, Snapshot
from triumvir.consensus.storage.interface import RecoveredState, StaleSnapshot
from triumvir.consensus.storage.log_window import LogWindow, check_contiguous


class StagedLog:
    """invariant: self._durable.start == self.snapshot_index() + 1 (the log resumes right
    after the snapshot), and staged entries start at or after that index."""

    __slots__ = ("_durable", "_hard_state", "_snapshot", "_staged", "_staged_from", "_staged_hs")

    def __init__(
        self,
        *,
        window: LogWindow | None = None,
        hard_state: HardState | None = None,
        snapshot: Snapshot | None = None,
    ) -> None:
        snapshot_index = snapshot.meta.index if snapshot is not None else 0
        self._durable = window if window is not None else LogWindow(snapshot_index + 1)
        assert self._durable.start == snapshot_index + 1, (
            f"log starts at {self._durable.start} but the snapshot ends at {snapshot_index}"
        )
        self._hard_state = hard_state if hard_state is not None else HardState()
        self._snapshot = snapshot
        self._staged: list[Entry] = []
        self._staged_from: int | None = None  # staged entries replace the log from here
        self._staged_hs: HardState | None = None

    def snapshot_index(self) -> int:
        return self._snapshot.meta.index if self._snapshot is not None else 0

    def last_index(self) -> int:
        """Last index including staged writes: where the next append may continue."""
        if self._staged_from is None:
            return self._durable.last_index()
        return self._staged_from + len(self._staged) - 1

    def has_staged(self) -> bool:
        return self._staged_from is not None or self._staged_hs is not None

    def staged_hard_state(self) -> HardState | None:
        return self._staged_hs

    def stage_entries(self, entries: Sequence[Entry]) -> None:
        """Validate and stage `entries`; raises ValueError for an append that would leave a
        hole or rewrite entries the snapshot already covers."""
        if not entries:
            return
        check_contiguous(entries)
        first = entries[0].index
        if first <= self.snapshot_index():
            raise ValueError(
                f"append at index {first} rewrites entries covered by the snapshot at "
                f"{self.snapshot_index()}"
            )
        if first > self.last_index() + 1:
            raise ValueError(
                f"append at index {first} leaves a gap after last index {self.last_index()}"
            )
        if self._staged_from is None or first < self._staged_from:
            self._staged_from = first
            self._staged = list(entries)
        else:
            del self._staged[first - self._staged_from :]
            self._staged.extend(entries)

    def stage_hard_state(self, hard_state: HardState) -> None:
        self._staged_hs = hard_state

    def commit(self) -> None:
        """Everything staged is now durable."""
        if self._staged_from is not None:
            self._durable.append(self._staged)
        if self._staged_hs is not None:
            self._hard_state = self._staged_hs
        self.discard()

    def discard(self) -> None:
        """Forget everything staged, as a power cut would."""
        self._staged = []
        self._staged_from = None
        self._staged_hs = None

    def check_snapshot(self, snapshot: Snapshot) -> None:
        if snapshot.meta.index <= self.snapshot_index():
            raise StaleSnapshot(
                f"snapshot at index {snapshot.meta.index} is not newer than the stored one "
                f"at {self.snapshot_index()}"
            )

    def install_snapshot(self, snapshot: Snapshot) -> None:
        """Commit staged writes, then make `snapshot` the base of the log."""
        self.check_snapshot(snapshot)
        self.commit()
        self._durable.compact(snapshot.meta.index, snapshot.meta.term)
        self._snapshot = snapshot

    def recovered(self) -> RecoveredState:
        return RecoveredState(
            hard_state=self._hard_state,
            snapshot=self._snapshot,
            entries=self._durable.entries(),
        )
