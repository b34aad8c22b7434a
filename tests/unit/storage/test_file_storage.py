from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from triumvir.consensus.raft.types import HardState
from triumvir.consensus.storage.file_storage import SNAP_DIR, WAL_DIR, FileStorage
from triumvir.consensus.storage.interface import LogGap
from triumvir.consensus.storage.snapshots import SnapshotStore

from .helpers import entries, snapshot

SMALL_SEGMENT_BYTES = 400


def test_one_sync_is_one_fsync_for_a_whole_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = FileStorage(tmp_path)
    calls: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        calls.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    for first in range(1, 50, 7):
        s.append(entries(first, first + 6))
    s.set_hard_state(HardState(term=1, vote=1, commit=10))
    s.sync()
    assert len(calls) == 1
    s.sync()  # nothing new: no fsync at all
    assert len(calls) == 1
    s.close()


def test_unsynced_writes_are_not_on_disk_after_a_power_cut(tmp_path: Path) -> None:
    s = FileStorage(tmp_path / "live")
    s.append(entries(1, 3))
    s.set_hard_state(HardState(term=1, commit=3))
    s.sync()
    s.append(entries(4, 6))
    s.set_hard_state(HardState(term=2, commit=6))
    # what the disk holds at this instant is what a power cut leaves
    shutil.copytree(tmp_path / "live", tmp_path / "after-cut")
    s.close()
    state = FileStorage(tmp_path / "after-cut").load()
    assert state.entries == tuple(entries(1, 3))
    assert state.hard_state == HardState(term=1, commit=3)


def test_rotation_then_compaction_after_snapshot_and_restart(tmp_path: Path) -> None:
    s = FileStorage(tmp_path, segment_bytes_max=SMALL_SEGMENT_BYTES)
    s.set_hard_state(HardState(term=1, vote=2, commit=1))
    s.sync()  # the only hard-state record written outside segment headers
    s.append(entries(1, 80))
    s.sync()
    before = s.wal_segments()
    assert len(before) > 4

    s.save_snapshot(snapshot(60, 1))
    after = s.wal_segments()
    assert len(after) < len(before)
    assert before[0] not in after and not before[0].exists()
    assert after[-1] == before[-1]
    s.close()

    reopened = FileStorage(tmp_path, segment_bytes_max=SMALL_SEGMENT_BYTES)
    state = reopened.load()
    assert state.snapshot == snapshot(60, 1)
    assert state.entries == tuple(entries(61, 80))
    assert state.hard_state == HardState(term=1, vote=2, commit=1)

    reopened.append(entries(81, 140, term=2))
    reopened.sync()
    reopened.save_snapshot(snapshot(130, 2))
    reopened.close()
    state = FileStorage(tmp_path, segment_bytes_max=SMALL_SEGMENT_BYTES).load()
    assert state.entries == tuple(entries(131, 140, term=2))
    assert state.hard_state == HardState(term=1, vote=2, commit=1)
    assert len(list((tmp_path / SNAP_DIR).glob("*.snap"))) == 2


def test_crash_after_snapshot_file_before_its_wal_record(tmp_path: Path) -> None:
    s = FileStorage(tmp_path)
    s.append(entries(1, 10, term=1))
    s.sync()
    s.close()
    # the snapshot file is durable, the WAL never heard of it: a leader's snapshot whose
    # entry 5 has another term than ours
    SnapshotStore(tmp_path / SNAP_DIR).save(snapshot(5, 3))
    state = FileStorage(tmp_path).load()
    assert state.snapshot == snapshot(5, 3)
    assert state.entries == ()


def test_corrupt_newest_snapshot_falls_back_and_is_reported(tmp_path: Path) -> None:
    s = FileStorage(tmp_path)
    s.append(entries(1, 10))
    s.save_snapshot(snapshot(4, 1))
    s.save_snapshot(snapshot(7, 1))
    s.close()
    newest = SnapshotStore(tmp_path / SNAP_DIR).paths()[0]
    newest.write_bytes(newest.read_bytes()[:-1])

    reopened = FileStorage(tmp_path)
    state = reopened.load()
    assert state.snapshot == snapshot(4, 1)
    assert state.entries == tuple(entries(5, 10))
    assert [skipped.path for skipped in reopened.report.skipped_snapshots] == [newest]
    reopened.close()


def test_corrupt_snapshot_with_its_log_compacted_refuses_to_start(tmp_path: Path) -> None:
    s = FileStorage(tmp_path, segment_bytes_max=SMALL_SEGMENT_BYTES)
    s.append(entries(1, 60))
    s.save_snapshot(snapshot(5, 1))
    s.save_snapshot(snapshot(50, 1))  # compacts segments holding 6..50
    s.close()
    newest = SnapshotStore(tmp_path / SNAP_DIR).paths()[0]
    newest.write_bytes(b"garbage")
    with pytest.raises(LogGap, match="newest valid snapshot ends at index 5"):
        FileStorage(tmp_path, segment_bytes_max=SMALL_SEGMENT_BYTES)


def test_torn_tail_is_reported(tmp_path: Path) -> None:
    s = FileStorage(tmp_path)
    s.append(entries(1, 5))
    s.sync()
    s.close()
    (segment,) = (tmp_path / WAL_DIR).glob("*.wal")
    with open(segment, "r+b") as f:
        f.truncate(segment.stat().st_size - 3)
    reopened = FileStorage(tmp_path)
    assert reopened.load().entries == tuple(entries(1, 4))
    (torn,) = reopened.report.torn_tails
    assert torn.exists()
    reopened.close()
