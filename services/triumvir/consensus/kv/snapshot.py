"""The byte format of a state-machine snapshot.

Layout: MAGIC, a format version, the body, and a CRC-32C of everything before it. Integers
are fixed-width big-endian; byte strings are length-prefixed. Every collection is written
in a defined order (keys and lease ids sorted, client sessions in last-seen order), so two
replicas with the same state produce the same bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Collection
from dataclasses import dataclass

import crc32c
from google.protobuf.message import DecodeError

from triumvir.consensus.kv.leases import LeaseState
from triumvir.consensus.kv.records import KeyRecord
from triumvir.consensus.kv.sessions import ClientSession
from triumvir.v1.command_pb2 import CommandResult

MAGIC = b"TVKV"
FORMAT_VERSION = 1

_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_HEADER = struct.Struct(">4sH")
# mod_revision, sub, create_revision, version, lease, then the value's length and bytes
_RECORD_AND_LENGTH = struct.Struct(">qqqqqI")


class SnapshotError(ValueError):
    """The bytes are not a snapshot this code can read (corrupt, truncated or too new)."""


@dataclass(frozen=True, slots=True)
class SnapshotState:
    applied_index: int
    now_ms: int
    revision: int
    compact_revision: int
    histories: Collection[tuple[bytes, list[KeyRecord]]]
    leases: list[LeaseState]
    sessions: list[tuple[int, ClientSession]]


def encode(state: SnapshotState) -> bytes:
    # Pieces joined once at the end: a large store has hundreds of thousands of records,
    # and one struct call per record (fields and value length together) keeps this fast.
    parts: list[bytes] = [_HEADER.pack(MAGIC, FORMAT_VERSION)]
    parts += [
        _I64.pack(number)
        for number in (state.applied_index, state.now_ms, state.revision, state.compact_revision)
    ]
    parts.append(_U32.pack(len(state.histories)))
    pack_record = _RECORD_AND_LENGTH.pack
    for key, history in state.histories:
        parts += (_U32.pack(len(key)), key, _U32.pack(len(history)))
        for r in history:
            parts.append(
                pack_record(
                    r.mod_revision, r.sub, r.create_revision, r.version, r.lease, len(r.value)
                )
            )
            parts.append(r.value)
    parts.append(_U32.pack(len(state.leases)))
    for lease in state.leases:
        parts.append(_I64.pack(lease.id) + _I64.pack(lease.ttl_s) + _I64.pack(lease.expiry_ms))
    parts.append(_U32.pack(len(state.sessions)))
    for client_id, session in state.sessions:
        result = session.result.SerializeToString(deterministic=True)
        parts.append(_U64.pack(client_id) + _U64.pack(session.sequence))
        parts.append(_I64.pack(session.last_seen_ms) + _U32.pack(len(result)))
        parts.append(result)
    body = b"".join(parts)
    return body + _U32.pack(crc32c.crc32c(body))


def decode(data: bytes) -> SnapshotState:
    if len(data) < _HEADER.size + _U32.size:
        raise SnapshotError(f"snapshot too short: {len(data)} bytes")
    body, (checksum,) = data[: -_U32.size], _U32.unpack(data[-_U32.size :])
    if crc32c.crc32c(body) != checksum:
        raise SnapshotError("snapshot checksum mismatch")
    magic, version = _HEADER.unpack_from(body, 0)
    if magic != MAGIC:
        raise SnapshotError("not a key-value snapshot (bad magic)")
    if version != FORMAT_VERSION:
        raise SnapshotError(f"unsupported snapshot format version {version}")
    reader = _Reader(body, _HEADER.size)
    try:
        state = _decode_body(reader)
    except (struct.error, ValueError, DecodeError) as error:
        raise SnapshotError(f"malformed snapshot: {error}") from error
    if reader.offset != len(body):
        raise SnapshotError("trailing bytes after snapshot body")
    return state


def _decode_body(reader: _Reader) -> SnapshotState:
    applied_index, now_ms, revision, compact_revision = (reader.unpack(_I64) for _ in range(4))
    histories: list[tuple[bytes, list[KeyRecord]]] = []
    data, size = reader.data, len(reader.data)
    unpack_record = _RECORD_AND_LENGTH.unpack_from
    for _ in range(reader.unpack(_U32)):
        key = reader.take_bytes()
        count = reader.unpack(_U32)
        if count == 0:
            raise ValueError(f"key {key!r} has no versions")
        history: list[KeyRecord] = []
        offset = reader.offset
        for _ in range(count):
            mod_revision, sub, create_revision, version, lease, length = unpack_record(data, offset)
            offset += _RECORD_AND_LENGTH.size
            end = offset + length
            if end > size:
                raise ValueError("length runs past the end of the snapshot")
            value = data[offset:end]
            history.append(
                KeyRecord(key, value, create_revision, mod_revision, version, lease, sub)
            )
            offset = end
        reader.offset = offset
        histories.append((key, history))
    leases = [
        LeaseState(reader.unpack(_I64), reader.unpack(_I64), reader.unpack(_I64))
        for _ in range(reader.unpack(_U32))
    ]
    sessions: list[tuple[int, ClientSession]] = []
    for _ in range(reader.unpack(_U32)):
        client_id, sequence = reader.unpack(_U64), reader.unpack(_U64)
        last_seen_ms = reader.unpack(_I64)
        result = CommandResult.FromString(reader.take_bytes())
        sessions.append((client_id, ClientSession(sequence, result, last_seen_ms)))
    return SnapshotState(
        applied_index, now_ms, revision, compact_revision, histories, leases, sessions
    )


class _Reader:
    def __init__(self, data: bytes, offset: int) -> None:
        self.data = data
        self.offset = offset

    def unpack(self, shape: struct.Struct) -> int:
        (number,) = shape.unpack_from(self.data, self.offset)
        self.offset += shape.size
        return int(number)

    def take_bytes(self) -> bytes:
        length = self.unpack(_U32)
        end = self.offset + length
        if end > len(self.data):
            raise ValueError("length runs past the end of the snapshot")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk
