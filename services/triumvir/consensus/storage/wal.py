"""The write-ahead log: a directory of segment files holding entry, hard-state and snapshot
records, appended with group commit and replayed on start.

Segment files are named `<sequence>-<first index>.wal` (16 hex digits each). Only the last
segment is ever written; a new one is created whole (temp file, fsync, rename, directory
fsync) and begins with the current hard state, so dropping older segments after a snapshot
never loses the latest hard state.

The segment being written is grown ahead of its end in zero-filled chunks, so an fdatasync
only flushes data: the file's size and block map change once a chunk, not on every write.
Replay stops at the zeros after the last record, and a sealed segment is cut back to its
records before the next one is created.

On open, damage at the very end of the last segment is a torn write: the cut bytes are kept
beside the segment as `<segment>.torn-<offset>` and the segment is truncated. Damage
anywhere else means acknowledged data is unreadable, and opening refuses with CorruptLog.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from triumvir.consensus.raft.types import Entry, HardState, SnapshotMeta
from triumvir.consensus.storage import records
from triumvir.consensus.storage.fsutil import (
    ensure_dir,
    fsync_dir,
    remove_temp_files,
    write_durably,
)
from triumvir.consensus.storage.interface import CorruptLog, DecodeError, LogGap
from triumvir.consensus.storage.log_window import LogWindow

SEGMENT_BYTES_MAX_DEFAULT = 64 * 1024 * 1024
PREALLOCATE_BYTES = 4 * 1024 * 1024
WRITE_BUFFER_BYTES = 1024 * 1024
TORN_COPIES_MAX = 1000
"""Upper bound on `.torn-<offset>.<n>` names tried when the same cut repeats."""

_SEGMENT_NAME = re.compile(r"^([0-9a-f]{16})-([0-9a-f]{16})\.wal$")
_REFUSAL = "refusing to start (restore this replica from a peer or a backup)"


def segment_name(sequence: int, first_index: int) -> str:
    return f"{sequence:016x}-{first_index:016x}.wal"


@dataclass(slots=True)
class _Segment:
    path: Path
    sequence: int
    first_index: int
    max_index: int  # highest entry index recorded in this segment; 0 when it holds none
    end: int = 0  # where its records end (so far, for the one being written); zeros may follow


@dataclass(frozen=True, slots=True)
class WalRecovery:
    """What replaying the segments produced."""

    # the entries in replay order with overwrites resolved; None when no entry or snapshot
    # record survives (a fresh log, or every segment holding one was compacted away)
    window: LogWindow | None
    hard_state: HardState
    snapshot_mark: SnapshotMeta | None  # the last snapshot record replayed
    torn_tails: tuple[Path, ...]  # files holding bytes cut from a torn tail, if any


class _Replay:
    """Folds records, in order, into the log they describe."""

    __slots__ = ("hard_state", "mark", "window")

    def __init__(self) -> None:
        self.window: LogWindow | None = None
        self.hard_state = HardState()
        self.mark: SnapshotMeta | None = None

    def apply(self, record: records.Record, path: Path, offset: int) -> None:
        if isinstance(record, Entry):
            self._entry(record, path, offset)
        elif isinstance(record, HardState):
            self.hard_state = record
        else:
            self.mark = record
            window = self.window
            if window is None:
                self.window = LogWindow(record.index + 1)
            elif record.index >= window.start and window.term_at(record.index) != record.term:
                # the snapshot contradicts (or lies beyond) these entries: they are gone.
                # Entries it merely covers stay, in case its file turns out unreadable and
                # an older snapshot has to be used instead.
                window.restart(record.index + 1)

    def _entry(self, entry: Entry, path: Path, offset: int) -> None:
        window = self.window
        if window is None:
            self.window = window = LogWindow(entry.index)
        elif entry.index < window.start:
            # an overwrite reaching below what the surviving segments hold
            window.restart(entry.index)
        elif entry.index > window.last_index() + 1:
            raise LogGap(
                f"WAL record in {path} at offset {offset} holds entry {entry.index} but the "
                f"log before it ends at {window.last_index()}; {_REFUSAL}"
            )
        window.append((entry,))


class WriteAheadLog:
    """Not thread-safe: one replica's driver owns it."""

    def __init__(
        self,
        directory: Path,
        segments: list[_Segment],
        recovery: WalRecovery,
        segment_bytes_max: int,
    ) -> None:
        assert segments, "a WAL always has a segment to write to"
        self._directory = directory
        self._segments = segments
        self.recovery = recovery
        self._segment_bytes_max = segment_bytes_max
        self._hard_state = recovery.hard_state  # the last one written: heads a new segment
        self._file: BinaryIO = self._open_for_append(segments[-1])
        self._allocated = os.fstat(self._file.fileno()).st_size
        self._dirty = False

    @classmethod
    def open(
        cls,
        directory: str | Path,
        *,
        segment_bytes_max: int = SEGMENT_BYTES_MAX_DEFAULT,
        first_index: int = 1,
    ) -> WriteAheadLog:
        """Open (creating if needed) the WAL in `directory` and replay it. `first_index`
        names the first segment of a brand-new log."""
        if segment_bytes_max <= records.FRAME_HEAD.size:
            raise ValueError(f"segment_bytes_max {segment_bytes_max} is too small")
        path = Path(directory)
        ensure_dir(path)
        remove_temp_files(path)
        segments = _list_segments(path)
        replay = _Replay()
        torn: list[Path] = []
        for position, segment in enumerate(segments):
            is_last = position == len(segments) - 1
            cut = _replay_segment(segment, replay, is_last)
            if cut is not None:
                torn.append(cut)
        if not segments:
            first = path / segment_name(0, first_index)
            header = records.encode_record(HardState())
            write_durably(first, header)
            segments.append(_Segment(first, 0, first_index, 0, len(header)))
        recovery = WalRecovery(replay.window, replay.hard_state, replay.mark, tuple(torn))
        return cls(path, segments, recovery, segment_bytes_max)

    def segment_paths(self) -> tuple[Path, ...]:
        return tuple(s.path for s in self._segments)

    def append_entries(self, entries: Sequence[Entry]) -> None:
        """Buffer entry records; durable after sync()."""
        for entry in entries:
            framed = records.encode_record(entry)
            current = self._segments[-1]
            # a segment takes at least one entry, so an entry larger than the limit still fits
            if current.max_index and current.end + len(framed) > self._segment_bytes_max:
                self._rotate(entry.index)
                current = self._segments[-1]
            self._write(framed)
            current.max_index = max(current.max_index, entry.index)

    def write_hard_state(self, hard_state: HardState) -> None:
        self._write(records.encode_record(hard_state))
        self._hard_state = hard_state

    def mark_snapshot(self, meta: SnapshotMeta) -> None:
        """Record that a snapshot at `meta` was installed: replay discards the entries before
        it when they contradict it (see LogWindow.compact)."""
        self._write(records.encode_record(meta))

    def sync(self) -> None:
        """One flush and one fdatasync for everything written since the last sync: the
        size and block map it needs were made durable when the chunk was preallocated."""
        if not self._dirty:
            return
        self._file.flush()
        os.fdatasync(self._file.fileno())
        self._dirty = False

    def compact(self, index: int) -> int:
        """Remove the oldest segments whose entries are all <= `index` (never the one being
        written); returns how many were removed. Only a prefix goes: replaying the rest
        must give the same entries after `index` as replaying everything."""
        removed = 0
        while len(self._segments) > 1 and self._segments[0].max_index <= index:
            self._segments.pop(0).path.unlink()
            removed += 1
        if removed:
            fsync_dir(self._directory)
        return removed

    @property
    def end_offset(self) -> int:
        """Where the records of the segment being written end."""
        return self._segments[-1].end

    def close(self) -> None:
        """Leaves the segment cut back to its records, as a sealed one is."""
        self._seal()

    def _write(self, framed: bytes) -> None:
        tail = self._segments[-1]
        if tail.end + len(framed) > self._allocated:
            self._preallocate(tail.end + len(framed))
        self._file.write(framed)
        tail.end += len(framed)
        self._dirty = True

    def _preallocate(self, needed: int) -> None:
        """Grow the file with zeros to at least `needed`, durably, before writing there."""
        self._file.flush()
        fd = self._file.fileno()
        target = max(needed, min(self._allocated + PREALLOCATE_BYTES, self._segment_bytes_max))
        os.posix_fallocate(fd, self._allocated, target - self._allocated)
        os.fsync(fd)
        self._allocated = target

    def _open_for_append(self, segment: _Segment) -> BinaryIO:
        file = open(segment.path, "r+b", buffering=WRITE_BUFFER_BYTES)  # noqa: SIM115
        file.seek(segment.end)
        return file

    def _seal(self) -> None:
        """Flush, cut the preallocated zeros off the segment and make it durable."""
        self._file.flush()
        fd = self._file.fileno()
        os.ftruncate(fd, self._segments[-1].end)
        os.fsync(fd)
        self._dirty = False
        self._file.close()

    def _rotate(self, first_index: int) -> None:
        # seal the old segment first, so a crash can never leave a hole before the new one
        self._seal()
        sequence = self._segments[-1].sequence + 1
        path = self._directory / segment_name(sequence, first_index)
        header = records.encode_record(self._hard_state)
        write_durably(path, header)
        segment = _Segment(path, sequence, first_index, 0, len(header))
        self._segments.append(segment)
        self._file = self._open_for_append(segment)
        self._allocated = len(header)


def _list_segments(directory: Path) -> list[_Segment]:
    segments = []
    for child in sorted(directory.iterdir()):
        match = _SEGMENT_NAME.match(child.name)
        if match is not None:
            sequence, first = int(match[1], 16), int(match[2], 16)
            segments.append(_Segment(child, sequence, first, 0))
    for before, after in itertools.pairwise(segments):
        if after.sequence != before.sequence + 1:
            raise LogGap(
                f"WAL segment {before.sequence + 1:016x} is missing between {before.path} "
                f"and {after.path}; {_REFUSAL}"
            )
    return segments


def _replay_segment(segment: _Segment, replay: _Replay, is_last: bool) -> Path | None:
    """Replay one segment; returns the torn-tail file if its end had to be cut."""
    data = segment.path.read_bytes()
    buf = memoryview(data)
    # Preallocated space is zeros; no record starts there (a record never begins with a
    # zero header, since an empty payload is not a record).
    zeros_from = len(data.rstrip(b"\0"))
    pos = 0
    while pos < zeros_from:
        payload, reason = records.read_frame(buf, pos)
        if payload is None:
            if is_last and records.intact_record_after(buf, pos, zeros_from) is None:
                segment.end = pos
                return _cut_tail(segment.path, data, pos)
            where = "" if is_last else " of a sealed segment"
            raise CorruptLog(
                f"corrupt WAL record in {segment.path} at offset {pos}{where}: {reason}; {_REFUSAL}"
            )
        try:
            record = records.decode_payload(payload)
        except DecodeError as exc:
            raise CorruptLog(
                f"unreadable WAL record in {segment.path} at offset {pos}: {exc}; {_REFUSAL}"
            ) from exc
        replay.apply(record, segment.path, pos)
        if isinstance(record, Entry):
            segment.max_index = max(segment.max_index, record.index)
        pos += records.FRAME_HEAD.size + len(payload)
    segment.end = pos
    return None


def _cut_tail(path: Path, data: bytes, offset: int) -> Path:
    """Keep the torn bytes beside the segment, then truncate it durably."""
    torn = path.with_name(f"{path.name}.torn-{offset}")
    for attempt in range(1, TORN_COPIES_MAX + 1):
        if not torn.exists():
            break
        torn = path.with_name(f"{path.name}.torn-{offset}.{attempt}")
    else:
        raise CorruptLog(f"too many torn-tail copies of {path} at offset {offset}; {_REFUSAL}")
    write_durably(torn, data[offset:])
    with open(path, "r+b") as f:
        f.truncate(offset)
        f.flush()
        os.fsync(f.fileno())
    return torn
