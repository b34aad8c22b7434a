"""Snapshot files: `snap-<term>-<index>.snap` (16 hex digits each) in one directory.

A file is `magic | crc32c (u32 BE) | payload length (u64 BE) | codec-encoded Snapshot`,
published atomically (temp file, fsync, rename, directory fsync). Only the newest
SNAPSHOTS_KEPT are kept.

Loading picks the newest file that verifies. A newer file that does not verify is skipped
and reported in the return value (never silently): the caller decides how loudly to say so.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path

import crc32c

from triumvir.consensus.raft.types import Snapshot
from triumvir.consensus.storage import codec
from triumvir.consensus.storage.fsutil import ensure_dir, remove_temp_files, write_durably
from triumvir.consensus.storage.interface import CorruptSnapshot, DecodeError

SNAPSHOTS_KEPT = 2
MAGIC = b"TVSN"
_HEAD = struct.Struct(">4sIQ")  # magic, crc32c of payload, payload length
_NAME = re.compile(r"^snap-([0-9a-f]{16})-([0-9a-f]{16})\.snap$")


def snapshot_name(term: int, index: int) -> str:
    return f"snap-{term:016x}-{index:016x}.snap"


@dataclass(frozen=True, slots=True)
class SkippedSnapshot:
    path: Path
    reason: str


@dataclass(frozen=True, slots=True)
class LoadedSnapshot:
    snapshot: Snapshot | None  # the newest one that verified, if any
    skipped: tuple[SkippedSnapshot, ...]  # newer files that failed verification


def encode_file(snapshot: Snapshot) -> bytes:
    payload = codec.encode_snapshot(snapshot)
    return _HEAD.pack(MAGIC, crc32c.crc32c(payload), len(payload)) + payload


def decode_file(path: Path, data: bytes) -> Snapshot:
    """Verify and decode one snapshot file's bytes; raises CorruptSnapshot."""
    if len(data) < _HEAD.size:
        raise CorruptSnapshot(f"snapshot {path}: only {len(data)} bytes, header is {_HEAD.size}")
    magic, crc, length = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise CorruptSnapshot(f"snapshot {path}: bad magic {magic!r}")
    payload = memoryview(data)[_HEAD.size :]
    if len(payload) != length:
        raise CorruptSnapshot(
            f"snapshot {path}: header says {length} payload bytes, file has {len(payload)}"
        )
    if crc32c.crc32c(payload) != crc:
        raise CorruptSnapshot(f"snapshot {path}: crc mismatch")
    try:
        snapshot = codec.decode_snapshot(payload)
    except DecodeError as exc:
        raise CorruptSnapshot(f"snapshot {path}: {exc}") from exc
    expected = _NAME.match(path.name)
    meta = snapshot.meta
    if expected is None or (int(expected[1], 16), int(expected[2], 16)) != (meta.term, meta.index):
        raise CorruptSnapshot(
            f"snapshot {path}: holds term {meta.term} index {meta.index}, not what its name says"
        )
    return snapshot


class SnapshotStore:
    def __init__(self, directory: str | Path) -> None:
        self._directory = Path(directory)
        ensure_dir(self._directory)
        remove_temp_files(self._directory)

    def paths(self) -> list[Path]:
        """Snapshot files, newest (highest index, then term) first."""
        found = []
        for child in self._directory.iterdir():
            match = _NAME.match(child.name)
            if match is not None:
                found.append(((int(match[2], 16), int(match[1], 16)), child))
        found.sort(reverse=True)
        return [path for _, path in found]

    def save(self, snapshot: Snapshot) -> Path:
        """Durable on return; then prunes all but the newest SNAPSHOTS_KEPT files."""
        path = self._directory / snapshot_name(snapshot.meta.term, snapshot.meta.index)
        write_durably(path, encode_file(snapshot))
        for old in self.paths()[SNAPSHOTS_KEPT:]:
            old.unlink()
        return path

    def load(self) -> LoadedSnapshot:
        skipped = []
        for path in self.paths():
            try:
                return LoadedSnapshot(decode_file(path, path.read_bytes()), tuple(skipped))
            except CorruptSnapshot as exc:
                skipped.append(SkippedSnapshot(path, str(exc)))
        return LoadedSnapshot(None, tuple(skipped))
