"""The narrow storage contract a consensus replica persists through.

Two implementations share it: the file-backed one (WAL segments + snapshot files, fsynced)
that servers use, and an in-memory one the simulator uses, which can "crash" and lose
whatever was written but not yet synced.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from triumvir.consensus.raft.types import Entry, HardState, Snapshot


class StorageError(Exception):
    """Base of every storage failure."""


class CorruptLog(StorageError):
    """A record in the middle of the log failed its checksum: refuse to start."""


class DecodeError(StorageError):
    """Bytes that should hold an encoded record do not decode as one."""


class CorruptSnapshot(StorageError):
    """A snapshot file failed its checksum or does not decode."""


class LogGap(StorageError):
    """Entries the replica needs are missing (a WAL segment or the snapshot covering them is
    gone): starting would silently forget acknowledged data."""


class StaleSnapshot(StorageError):
    """A snapshot no newer than the one already stored was offered."""


@dataclass(frozen=True, slots=True)
class RecoveredState:
    """What a replica restarts from: the latest snapshot, the hard state, and the entries
    after the snapshot (already with overwritten suffixes resolved)."""

    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None
    entries: tuple[Entry, ...] = ()


class RaftStorage(Protocol):
    def load(self) -> RecoveredState:
        """Read back everything that was synced. Called once, at start."""
        ...

    def append(self, entries: Sequence[Entry]) -> None:
        """Write entries; the first one replaces the stored entry at its index and every
        entry after it. Not durable until sync()."""
        ...

    def set_hard_state(self, hard_state: HardState) -> None:
        """Record the hard state. Not durable until sync()."""
        ...

    def save_snapshot(self, snapshot: Snapshot) -> None:
        """Store the snapshot durably (atomic write) and drop log entries it covers.
        Durable on return."""
        ...

    def sync(self) -> None:
        """Make everything written so far durable (one fsync covers a whole batch)."""
        ...

    def close(self) -> None: ...
