"""RaftStorage on local disk: a WAL (`<data_dir>/wal`) plus snapshot files
(`<data_dir>/snap`).

Recovery happens when the storage is opened; load() hands back what survived. Entries go to
the WAL as they are appended (buffered); the hard state is written at sync(), after the
entries it may refer to, so one fsync makes a whole batch durable in the order Raft needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from triumvir.consensus.raft.types import Entry, HardState, Snapshot
from triumvir.consensus.storage.fsutil import ensure_dir
from triumvir.consensus.storage.interface import LogGap, RecoveredState, StorageError
from triumvir.consensus.storage.log_window import LogWindow
from triumvir.consensus.storage.snapshots import SkippedSnapshot, SnapshotStore
from triumvir.consensus.storage.staging import StagedLog
from triumvir.consensus.storage.wal import SEGMENT_BYTES_MAX_DEFAULT, WriteAheadLog

WAL_DIR = "wal"
SNAP_DIR = "snap"


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What opening had to repair or skip; worth a warning in the replica's log."""

    torn_tails: tuple[Path, ...] = ()  # bytes cut from a torn WAL tail, kept for inspection
    skipped_snapshots: tuple[SkippedSnapshot, ...] = ()  # newer snapshots that failed checks


class FileStorage:
    """Not thread-safe: one replica's driver owns it. One process per data directory."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        segment_bytes_max: int = SEGMENT_BYTES_MAX_DEFAULT,
    ) -> None:
        root = Path(data_dir)
        ensure_dir(root)
        self._snapshots = SnapshotStore(root / SNAP_DIR)
        loaded = self._snapshots.load()
        snapshot = loaded.snapshot
        snapshot_index = snapshot.meta.index if snapshot is not None else 0
        self._wal = WriteAheadLog.open(
            root / WAL_DIR,
            segment_bytes_max=segment_bytes_max,
            first_index=snapshot_index + 1,
        )
        recovery = self._wal.recovery
        try:
            window = _reconcile(recovery.window, snapshot, root / WAL_DIR)
        except LogGap:
            self._wal.close()
            raise
        self._log = StagedLog(window=window, hard_state=recovery.hard_state, snapshot=snapshot)
        self.report = RecoveryReport(recovery.torn_tails, loaded.skipped)
        self._closed = False

    def load(self) -> RecoveredState:
        """Everything synced so far (at open: everything that survived on disk)."""
        self._check_open()
        return self._log.recovered()

    def append(self, entries: Sequence[Entry]) -> None:
        self._check_open()
        self._log.stage_entries(entries)
        self._wal.append_entries(entries)

    def set_hard_state(self, hard_state: HardState) -> None:
        self._check_open()
        self._log.stage_hard_state(hard_state)

    def sync(self) -> None:
        self._check_open()
        self._flush_staged()
        self._wal.sync()
        self._log.commit()

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Durable on return, together with every earlier write; then drops the WAL segments
        the snapshot covers."""
        self._check_open()
        self._log.check_snapshot(snapshot)
        # the snapshot file first: a WAL that says "the log starts after i" must never be
        # durable while the snapshot covering i is not
        self._snapshots.save(snapshot)
        self._flush_staged()
        self._wal.mark_snapshot(snapshot.meta)
        self._wal.sync()
        self._log.install_snapshot(snapshot)
        self._wal.compact(snapshot.meta.index)

    def last_index(self) -> int:
        """Index of the last entry written (synced or not), or the snapshot index."""
        return self._log.last_index()

    def wal_segments(self) -> tuple[Path, ...]:
        return self._wal.segment_paths()

    def close(self) -> None:
        """Release the files. Does not sync: call sync() first to keep pending writes."""
        if not self._closed:
            self._closed = True
            self._wal.close()

    def _flush_staged(self) -> None:
        hard_state = self._log.staged_hard_state()
        if hard_state is not None:
            self._wal.write_hard_state(hard_state)

    def _check_open(self) -> None:
        if self._closed:
            raise StorageError("storage is closed")


def _reconcile(window: LogWindow | None, snapshot: Snapshot | None, wal_dir: Path) -> LogWindow:
    """Fit the replayed log onto the snapshot: drop what it covers, and refuse if entries
    between the snapshot and the log are missing."""
    snapshot_index = snapshot.meta.index if snapshot is not None else 0
    if window is None:
        return LogWindow(snapshot_index + 1)
    if snapshot is not None:
        # a crash between writing the snapshot file and its WAL record lands here too
        window.compact(snapshot.meta.index, snapshot.meta.term)
    if window.start != snapshot_index + 1:
        raise LogGap(
            f"the WAL in {wal_dir} starts at index {window.start} but the newest valid "
            f"snapshot ends at index {snapshot_index}: entries in between are lost; refusing "
            f"to start (restore this replica from a peer or a backup)"
        )
    return window
