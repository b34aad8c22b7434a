"""In-memory RaftStorage for the deterministic simulator: same contract as the file storage,
plus crash(), which loses exactly what a power cut would (everything not yet synced).

It holds references to the entries it is given (they are frozen) and never copies the whole
log on a write, so thousands of simulated runs stay cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

from triumvir.consensus.raft.types import Entry, HardState, Snapshot
from triumvir.consensus.storage.interface import RecoveredState, StorageError
from triumvir.consensus.storage.staging import StagedLog


class MemoryStorage:
    __slots__ = ("_closed", "_log", "sync_count")

    def __init__(self) -> None:
        self._log = StagedLog()
        self._closed = False
        self.sync_count = 0  # how many syncs the replica asked for: a cost the simulator can report

    def load(self) -> RecoveredState:
        self._check_open()
        return self._log.recovered()

    def append(self, entries: Sequence[Entry]) -> None:
        self._check_open()
        self._log.stage_entries(entries)

    def set_hard_state(self, hard_state: HardState) -> None:
        self._check_open()
        self._log.stage_hard_state(hard_state)

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Durable on return; like the file storage, it also makes earlier writes durable."""
        self._check_open()
        self._log.install_snapshot(snapshot)

    def sync(self) -> None:
        self._check_open()
        self.sync_count += 1
        self._log.commit()

    def last_index(self) -> int:
        """Index of the last entry written (synced or not), or the snapshot index."""
        return self._log.last_index()

    def crash(self) -> None:
        """Drop everything written since the last sync; the storage can be used (and loaded)
        again afterwards, like a disk after a reboot."""
        self._log.discard()
        self._closed = False

    def close(self) -> None:
        self._closed = True

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("storage is closed")
