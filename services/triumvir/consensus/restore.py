"""`triumvir snapshot restore`: a new group's data directory seeded from a backup.

A backup (`triumvir snapshot save`) is the state machine at one applied index. Restoring
writes it as the log's snapshot at that index, with the new group's members as its
membership, so each member starts with the whole state and no log: every member restored
from the same file with the same members starts identical, and they elect a leader and go
on from the next index. The old group's membership is left behind with its log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from triumvir.consensus.kv.machine import KVStateMachine
from triumvir.consensus.kv.snapshot import SnapshotError
from triumvir.consensus.raft.membership import founding_conf
from triumvir.consensus.raft.types import HardState, Snapshot, SnapshotMeta
from triumvir.consensus.storage.file_storage import FileStorage

# The term the restored snapshot and hard state carry: the group's first election follows.
RESTORED_TERM = 1


class RestoreError(ValueError):
    """The backup cannot be restored there (unreadable file, used directory, no members)."""


@dataclass(frozen=True, slots=True)
class Restored:
    data_dir: str
    index: int  # the restored snapshot's log index: the group's log goes on after it
    revision: int  # the store's revision, as it was when the backup was taken
    members: tuple[int, ...]


def restore_data_dir(
    backup: str | Path, data_dir: str | Path, peers: Mapping[int, str]
) -> Restored:
    if not peers:
        raise RestoreError("--peers must name the new group's members, e.g. 1=10.0.0.1:7001,...")
    root = Path(data_dir)
    if root.exists() and any(root.iterdir()):
        raise RestoreError(
            f"data directory {root} is not empty; restore only into a new, empty directory "
            "(move the old one aside first)"
        )
    try:
        data = Path(backup).read_bytes()
    except OSError as exc:
        raise RestoreError(f"cannot read backup {backup}: {exc.strerror or exc}") from exc
    machine = KVStateMachine()
    try:
        machine.restore(data)  # checks the format and its CRC before anything is written
    except SnapshotError as exc:
        raise RestoreError(f"{backup} is not a readable triumvir backup: {exc}") from exc
    conf = founding_conf(peers)
    # A log snapshot sits at a positive index; only a backup of a group that never applied
    # anything is at 0.
    index = max(machine.applied_index, 1)
    storage = FileStorage(root)
    try:
        storage.set_hard_state(HardState(term=RESTORED_TERM, vote=0, commit=index))
        storage.save_snapshot(Snapshot(SnapshotMeta(index, RESTORED_TERM, conf), data))
        storage.sync()
    finally:
        storage.close()
    return Restored(str(root), index, machine.revision, tuple(sorted(peers)))
