from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from triumvir.consensus.raft.types import Entry, HardState, SnapshotMeta
from triumvir.consensus.storage import records
from triumvir.consensus.storage.interface import CorruptLog, LogGap
from triumvir.consensus.storage.wal import WriteAheadLog, segment_name

from .helpers import entries

HARD = HardState(term=3, vote=2, commit=4)


def _recovered_entries(wal: WriteAheadLog) -> tuple[Entry, ...]:
    window = wal.recovery.window
    return window.entries() if window is not None else ()


def _single_segment(directory: Path) -> Path:
    (segment,) = sorted(directory.glob("*.wal"))
    return segment


def _write_with_last_record(directory: Path, last: Entry | HardState) -> tuple[int, int]:
    """Entries 1..4, a hard state, then `last`; returns where the last record starts and
    ends in the segment."""
    wal = WriteAheadLog.open(directory)
    wal.append_entries(entries(1, 4, term=2))
    wal.write_hard_state(HARD)
    wal.sync()
    start = wal.end_offset
    if isinstance(last, Entry):
        wal.append_entries([last])
    else:
        wal.write_hard_state(last)
    wal.sync()
    wal.close()
    return start, _single_segment(directory).stat().st_size


@pytest.mark.parametrize(
    "last",
    [Entry(term=2, index=5, data=b"the last entry"), HardState(term=4, vote=1, commit=4)],
    ids=["entry", "hard-state"],
)
def test_wal_torn_tail_at_every_byte_offset(tmp_path: Path, last: Entry | HardState) -> None:
    original_dir = tmp_path / "original"
    start, end = _write_with_last_record(original_dir, last)
    original = _single_segment(original_dir).read_bytes()
    assert end - start > records.FRAME_HEAD.size

    for cut in range(start + 1, end):
        copy_dir = tmp_path / f"cut-{cut}"
        shutil.copytree(original_dir, copy_dir)
        segment = _single_segment(copy_dir)
        with open(segment, "r+b") as f:
            f.truncate(cut)

        wal = WriteAheadLog.open(copy_dir)
        assert _recovered_entries(wal) == tuple(entries(1, 4, term=2)), cut
        assert wal.recovery.hard_state == HARD, cut
        assert wal.end_offset == start, cut
        if any(original[start:cut]):
            torn = segment.with_name(f"{segment.name}.torn-{start}")
            assert wal.recovery.torn_tails == (torn,)
            assert torn.read_bytes() == original[start:cut]
            assert segment.stat().st_size == start
        else:
            # what survived is zeros, like preallocated space: nothing to keep
            assert wal.recovery.torn_tails == ()
        wal.close()

        again = WriteAheadLog.open(copy_dir)
        assert again.recovery.torn_tails == ()
        assert _recovered_entries(again) == tuple(entries(1, 4, term=2))
        again.close()
        shutil.rmtree(copy_dir)


def test_wal_bad_crc_in_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    start, end = _write_with_last_record(tmp_path, Entry(term=2, index=5, data=b"x" * 20))
    segment = _single_segment(tmp_path)
    data = bytearray(segment.read_bytes())
    data[end - 1] ^= 0x01
    segment.write_bytes(bytes(data))
    wal = WriteAheadLog.open(tmp_path)
    assert _recovered_entries(wal) == tuple(entries(1, 4, term=2))
    (torn,) = wal.recovery.torn_tails
    assert torn.read_bytes() == bytes(data[start:])
    assert segment.stat().st_size == start
    wal.close()


def test_wal_flipped_bit_in_middle_record_refuses_to_start(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path)
    wal.append_entries(entries(1, 2))
    wal.sync()
    segment = _single_segment(tmp_path)
    middle_start = wal.end_offset
    wal.append_entries(entries(3, 3))
    wal.sync()
    middle_end = wal.end_offset
    wal.append_entries(entries(4, 6))
    wal.write_hard_state(HARD)
    wal.sync()
    wal.close()
    pristine = segment.read_bytes()

    # every single bit of the middle record: its length, its checksum and its payload
    for bit in range(middle_start * 8, middle_end * 8):
        damaged = bytearray(pristine)
        damaged[bit // 8] ^= 1 << (bit % 8)
        segment.write_bytes(bytes(damaged))
        with pytest.raises(CorruptLog) as caught:
            WriteAheadLog.open(tmp_path)
        message = str(caught.value)
        assert str(segment) in message, bit
        assert f"at offset {middle_start}" in message, bit
        assert "refusing to start" in message
        # nothing was cut or rewritten: the evidence stays as it was
        assert segment.read_bytes() == bytes(damaged)
        assert not list(tmp_path.glob("*.torn-*"))


def test_damage_in_a_sealed_segment_refuses_even_at_its_end(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, segment_bytes_max=200)
    wal.append_entries(entries(1, 20))
    wal.sync()
    wal.close()
    sealed = sorted(tmp_path.glob("*.wal"))[0]
    data = bytearray(sealed.read_bytes())
    data[-1] ^= 0x80
    sealed.write_bytes(bytes(data))
    with pytest.raises(CorruptLog, match=re.escape(str(sealed))):
        WriteAheadLog.open(tmp_path)


def test_overwrite_replaces_index_and_everything_after_across_restart(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path)
    wal.append_entries(entries(1, 10, term=1))
    wal.append_entries(entries(7, 7, term=2))
    wal.sync()
    wal.close()
    reopened = WriteAheadLog.open(tmp_path)
    assert _recovered_entries(reopened) == tuple(entries(1, 6, term=1) + entries(7, 7, term=2))
    reopened.append_entries(entries(8, 9, term=2))
    reopened.sync()
    reopened.close()
    again = WriteAheadLog.open(tmp_path)
    assert _recovered_entries(again) == tuple(entries(1, 6, term=1) + entries(7, 9, term=2))
    again.close()


def test_rotation_names_segments_by_sequence_and_first_index(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, segment_bytes_max=256)
    wal.write_hard_state(HARD)
    wal.append_entries(entries(1, 40))
    wal.sync()
    paths = wal.segment_paths()
    wal.close()
    assert len(paths) > 3
    assert paths[0].name == segment_name(0, 1)
    for sequence, path in enumerate(paths):
        assert path.name.startswith(f"{sequence:016x}-")
        assert path.stat().st_size <= 256
    reopened = WriteAheadLog.open(tmp_path, segment_bytes_max=256)
    assert _recovered_entries(reopened) == tuple(entries(1, 40))
    assert reopened.recovery.hard_state == HARD
    # the first index in each later name is the first entry the segment holds
    first_indexes = [int(p.name.split("-")[1].split(".")[0], 16) for p in paths]
    assert first_indexes == sorted(first_indexes)
    reopened.close()


def test_compaction_keeps_latest_hard_state_and_later_entries(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, segment_bytes_max=256)
    wal.write_hard_state(HARD)  # only ever written into the first segment
    wal.append_entries(entries(1, 60))
    wal.sync()
    before = len(wal.segment_paths())
    wal.mark_snapshot(SnapshotMeta(index=45, term=1))
    wal.sync()
    removed = wal.compact(45)
    after = wal.segment_paths()
    wal.close()
    assert removed > 0
    assert len(after) == before - removed
    assert not any(p.exists() for p in sorted(tmp_path.glob("*.wal")) if p not in after)

    reopened = WriteAheadLog.open(tmp_path, segment_bytes_max=256)
    assert reopened.recovery.hard_state == HARD
    window = reopened.recovery.window
    assert window is not None
    # replay may still hold some covered entries; everything after the snapshot is there
    assert window.start <= 46
    assert window.entries()[46 - window.start :] == tuple(entries(46, 60))
    reopened.close()


def test_compaction_never_removes_the_segment_being_written(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, segment_bytes_max=256)
    wal.append_entries(entries(1, 30))
    wal.sync()
    wal.compact(1000)
    assert len(wal.segment_paths()) == 1
    assert wal.segment_paths()[0].exists()
    wal.close()


def test_snapshot_record_with_other_term_discards_the_log(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path)
    wal.append_entries(entries(1, 10, term=1))
    wal.mark_snapshot(SnapshotMeta(index=5, term=3))  # a leader's snapshot contradicting ours
    wal.append_entries(entries(6, 7, term=3))
    wal.sync()
    wal.close()
    reopened = WriteAheadLog.open(tmp_path)
    window = reopened.recovery.window
    assert window is not None
    assert window.start == 6
    assert window.entries() == tuple(entries(6, 7, term=3))
    assert reopened.recovery.snapshot_mark == SnapshotMeta(index=5, term=3)
    reopened.close()


def test_entry_gap_in_the_log_refuses_to_start(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path)
    wal.append_entries(entries(1, 3))
    wal.append_entries(entries(9, 9))
    wal.sync()
    wal.close()
    with pytest.raises(LogGap, match="entry 9"):
        WriteAheadLog.open(tmp_path)


def test_missing_middle_segment_refuses_to_start(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path, segment_bytes_max=200)
    wal.append_entries(entries(1, 30))
    wal.sync()
    paths = wal.segment_paths()
    wal.close()
    assert len(paths) >= 3
    paths[1].unlink()
    with pytest.raises(LogGap, match="missing"):
        WriteAheadLog.open(tmp_path)


def test_leftover_temp_segment_is_ignored(tmp_path: Path) -> None:
    wal = WriteAheadLog.open(tmp_path)
    wal.append_entries(entries(1, 3))
    wal.sync()
    wal.close()
    leftover = tmp_path / (segment_name(1, 4) + ".tmp")
    leftover.write_bytes(b"half a segment")
    reopened = WriteAheadLog.open(tmp_path)
    assert _recovered_entries(reopened) == tuple(entries(1, 3))
    assert not leftover.exists()
    assert len(reopened.segment_paths()) == 1
    reopened.close()


def test_wal_crash_with_preallocated_tail_replays_every_synced_record(tmp_path: Path) -> None:
    live = tmp_path / "live"
    wal = WriteAheadLog.open(live)
    wal.append_entries(entries(1, 5))
    wal.write_hard_state(HARD)
    wal.sync()
    segment = _single_segment(live)
    assert segment.stat().st_size > wal.end_offset  # zeros preallocated past the records
    crashed = tmp_path / "crashed"
    shutil.copytree(live, crashed)  # the files as a crash would leave them: never closed
    wal.close()

    again = WriteAheadLog.open(crashed)
    assert _recovered_entries(again) == tuple(entries(1, 5))
    assert again.recovery.hard_state == HARD
    assert again.recovery.torn_tails == ()
    again.append_entries(entries(6, 6))
    again.sync()
    again.close()
    assert _recovered_entries(WriteAheadLog.open(crashed)) == tuple(entries(1, 6))


def test_wal_torn_record_before_preallocated_zeros_is_cut(tmp_path: Path) -> None:
    live = tmp_path / "live"
    wal = WriteAheadLog.open(live)
    wal.append_entries(entries(1, 3))
    wal.sync()
    start = wal.end_offset
    wal.append_entries([Entry(term=1, index=4, data=b"y" * 40)])
    wal.sync()
    end = wal.end_offset
    crashed = tmp_path / "crashed"
    shutil.copytree(live, crashed)
    wal.close()
    segment = _single_segment(crashed)
    data = bytearray(segment.read_bytes())
    data[start + (end - start) // 2 : end] = bytes(end - start - (end - start) // 2)
    segment.write_bytes(bytes(data))  # the record's second half never reached the disk

    again = WriteAheadLog.open(crashed)
    assert _recovered_entries(again) == tuple(entries(1, 3))
    (torn,) = again.recovery.torn_tails
    assert torn.name.endswith(f".torn-{start}")
    assert again.end_offset == start
    again.close()
