from __future__ import annotations

from pathlib import Path

import pytest

from triumvir.consensus.storage.interface import CorruptSnapshot
from triumvir.consensus.storage.snapshots import (
    SNAPSHOTS_KEPT,
    SnapshotStore,
    decode_file,
    encode_file,
    snapshot_name,
)

from .helpers import snapshot


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    snap = snapshot(10, 2, data=b"x" * 1000)
    path = store.save(snap)
    assert path.name == snapshot_name(2, 10)
    loaded = SnapshotStore(tmp_path).load()
    assert loaded.snapshot == snap
    assert loaded.skipped == ()


def test_empty_store_loads_nothing(tmp_path: Path) -> None:
    loaded = SnapshotStore(tmp_path / "new").load()
    assert loaded.snapshot is None
    assert loaded.skipped == ()


def test_leftover_temp_file_is_ignored_and_removed(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.save(snapshot(5, 1))
    # a crash mid-write of a newer snapshot leaves only its temp file
    leftover = tmp_path / (snapshot_name(1, 9) + ".tmp")
    leftover.write_bytes(encode_file(snapshot(9, 1))[:20])
    reopened = SnapshotStore(tmp_path)
    assert not leftover.exists()
    assert reopened.load().snapshot == snapshot(5, 1)


def test_newest_valid_snapshot_loads_and_corrupt_newer_is_reported(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.save(snapshot(5, 1))
    newest = store.save(snapshot(8, 2))
    data = bytearray(newest.read_bytes())
    data[-1] ^= 0x10
    newest.write_bytes(bytes(data))
    loaded = SnapshotStore(tmp_path).load()
    assert loaded.snapshot == snapshot(5, 1)
    assert len(loaded.skipped) == 1
    assert loaded.skipped[0].path == newest
    assert "crc mismatch" in loaded.skipped[0].reason


def test_only_the_newest_snapshots_are_kept(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    for index in (3, 6, 9, 12):
        store.save(snapshot(index, 1))
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == SNAPSHOTS_KEPT
    assert names == sorted([snapshot_name(1, 9), snapshot_name(1, 12)])


def test_newest_is_ordered_by_index_not_by_name(tmp_path: Path) -> None:
    store = SnapshotStore(tmp_path)
    store.save(snapshot(20, 1))
    store.save(snapshot(10, 5))  # higher term, lower index: older
    assert store.load().snapshot == snapshot(20, 1)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda b: b[:10], "header"),
        (lambda b: b"XXXX" + b[4:], "magic"),
        (lambda b: b + b"\x00", "payload bytes"),
    ],
)
def test_damaged_files_are_rejected_with_a_reason(damage, reason: str, tmp_path: Path) -> None:
    path = tmp_path / snapshot_name(1, 4)
    with pytest.raises(CorruptSnapshot, match=reason):
        decode_file(path, damage(encode_file(snapshot(4, 1))))


def test_file_whose_content_disagrees_with_its_name_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / snapshot_name(1, 99)
    with pytest.raises(CorruptSnapshot, match="not what its name says"):
        decode_file(path, encode_file(snapshot(4, 1)))
