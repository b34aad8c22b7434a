"""How one WAL record sits on disk: `length (u32 BE) | crc32c of payload (u32 BE) | payload`,
where the payload is a record type byte followed by the codec-encoded body.

This module frames and unframes single records and can tell whether any intact record
starts after a damaged one, which is what separates a torn tail (safe to cut) from
corruption in the middle of the log (never safe to skip).
"""

from __future__ import annotations

import enum
import struct

import crc32c

from triumvir.consensus.raft.types import Entry, HardState, SnapshotMeta
from triumvir.consensus.storage import codec
from triumvir.consensus.storage.interface import DecodeError

FRAME_HEAD = struct.Struct(">II")  # payload length, crc32c of payload

MAX_RECORD_BYTES = 16 * 1024 * 1024
"""Upper bound on one record's payload. A length field above it is damage, never data."""

Record = Entry | HardState | SnapshotMeta


class RecordType(enum.IntEnum):
    ENTRY = 1
    HARD_STATE = 2
    SNAPSHOT = 3  # the log now starts after this snapshot


def frame(payload: bytes) -> bytes:
    if not 0 < len(payload) <= MAX_RECORD_BYTES:
        raise ValueError(f"WAL record payload of {len(payload)} bytes is out of range")
    return FRAME_HEAD.pack(len(payload), crc32c.crc32c(payload)) + payload


def encode_record(record: Record) -> bytes:
    """The framed bytes of one record."""
    if isinstance(record, Entry):
        body = bytes((RecordType.ENTRY,)) + codec.encode_entry(record)
    elif isinstance(record, HardState):
        body = bytes((RecordType.HARD_STATE,)) + codec.encode_hard_state(record)
    else:
        body = bytes((RecordType.SNAPSHOT,)) + codec.encode_snapshot_meta(record)
    return frame(body)


def decode_payload(payload: memoryview) -> Record:
    kind = payload[0]
    body = payload[1:]
    if kind == RecordType.ENTRY:
        return codec.decode_entry(body)
    if kind == RecordType.HARD_STATE:
        return codec.decode_hard_state(body)
    if kind == RecordType.SNAPSHOT:
        return codec.decode_snapshot_meta(body)
    raise DecodeError(f"unknown WAL record type {kind}")


def read_frame(buf: memoryview, pos: int) -> tuple[memoryview | None, str]:
    """The payload of the record at `pos`, or (None, why it is not an intact record)."""
    left = len(buf) - pos
    if left < FRAME_HEAD.size:
        return None, f"partial record header ({left} of {FRAME_HEAD.size} bytes)"
    length, crc = FRAME_HEAD.unpack_from(buf, pos)
    if length == 0 or length > MAX_RECORD_BYTES:
        return None, f"impossible record length {length}"
    start = pos + FRAME_HEAD.size
    if start + length > len(buf):
        return None, f"partial record ({len(buf) - start} of {length} payload bytes)"
    payload = buf[start : start + length]
    if crc32c.crc32c(payload) != crc:
        return None, "crc mismatch"
    return payload, ""


def intact_record_after(buf: memoryview, pos: int, starts_before: int | None = None) -> int | None:
    """Offset of the first intact record starting after `pos` (and before `starts_before`,
    where only zeros follow), if any.

    A torn write leaves at most one damaged record at the very end, so finding an intact
    record beyond the damage proves the damage is not a torn tail. The likeliest place is
    where the damaged record's own length says the next one begins, so try that first.
    """
    if len(buf) - pos >= FRAME_HEAD.size:
        (length,) = struct.unpack_from(">I", buf, pos)
        candidate = pos + FRAME_HEAD.size + length
        if length > 0 and read_frame(buf, candidate)[0] is not None:
            return candidate
    # bounded by the bytes after the damage; each try is O(1) unless its length fits
    last_start = len(buf) - FRAME_HEAD.size + 1
    if starts_before is not None:
        last_start = min(last_start, starts_before)
    for candidate in range(pos + 1, last_start):
        if read_frame(buf, candidate)[0] is not None:
            return candidate
    return None
