"""Binary encoding of the values a replica persists: entries, hard state, snapshot metadata
and snapshots.

Every encoding starts with a format version byte so a future layout can be told apart from
this one. Integers are big-endian and fixed width; variable-length parts are prefixed by
their length, except a trailing payload (entry data, snapshot data) which runs to the end.
Decoding never trusts a count or length it reads: anything that does not fit the bytes at
hand raises DecodeError naming what was being decoded and where it went wrong.
"""

from __future__ import annotations

import struct

from triumvir.consensus.raft.types import (
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Snapshot,
    SnapshotMeta,
)
from triumvir.consensus.storage.interface import DecodeError

FORMAT_VERSION = 1
# Snapshot metadata went to version 2 when memberships began to remember removed member ids;
# version 1 metadata (none remembered) still reads.
META_FORMAT_VERSION = 2

MEMBERS_MAX = 1024
"""Upper bound on voters, learners or contexts in one ConfState; a larger count read from
disk is corruption, not a cluster."""
RETIRED_MAX = 1 << 20
"""Upper bound on the removed member ids one ConfState remembers: they only accumulate."""

_ENTRY_HEAD = struct.Struct(">BQQB")  # version, term, index, kind
_HARD_STATE = struct.Struct(">BQQQ")  # version, term, vote, commit
_META_HEAD = struct.Struct(">BQQ")  # version, index, term
_SNAPSHOT_HEAD = struct.Struct(">BI")  # version, length of the encoded meta
_COUNT = struct.Struct(">I")
_NODE = struct.Struct(">Q")
_CONTEXT_HEAD = struct.Struct(">QI")  # node id, context length


class _Reader:
    """Walks a byte buffer, turning every short read into a DecodeError."""

    __slots__ = ("_buf", "_pos", "_what")

    def __init__(self, data: bytes | memoryview, what: str) -> None:
        self._buf = memoryview(data)
        self._pos = 0
        self._what = what

    def fail(self, reason: str) -> DecodeError:
        return DecodeError(f"cannot decode {self._what} at byte {self._pos}: {reason}")

    def unpack(self, layout: struct.Struct) -> tuple[int, ...]:
        if self._pos + layout.size > len(self._buf):
            raise self.fail(f"need {layout.size} bytes, only {len(self._buf) - self._pos} left")
        values = layout.unpack_from(self._buf, self._pos)
        self._pos += layout.size
        return values

    def take(self, size: int) -> bytes:
        if self._pos + size > len(self._buf):
            raise self.fail(f"need {size} bytes, only {len(self._buf) - self._pos} left")
        chunk = bytes(self._buf[self._pos : self._pos + size])
        self._pos += size
        return chunk

    def rest(self) -> bytes:
        chunk = bytes(self._buf[self._pos :])
        self._pos = len(self._buf)
        return chunk

    def count(self, bound: int = MEMBERS_MAX) -> int:
        (n,) = self.unpack(_COUNT)
        if n > bound:
            raise self.fail(f"member count {n} exceeds {bound}")
        return n

    def version(self, found: int, known: tuple[int, ...] = (FORMAT_VERSION,)) -> None:
        if found not in known:
            expected = " or ".join(str(v) for v in known)
            raise DecodeError(
                f"cannot decode {self._what}: format version {found} is not {expected}"
            )

    def finish(self) -> None:
        if self._pos != len(self._buf):
            raise self.fail(f"{len(self._buf) - self._pos} unexpected trailing bytes")


def encode_entry(entry: Entry) -> bytes:
    return _ENTRY_HEAD.pack(FORMAT_VERSION, entry.term, entry.index, entry.kind) + entry.data


def decode_entry(data: bytes | memoryview) -> Entry:
    reader = _Reader(data, "entry")
    version, term, index, kind = reader.unpack(_ENTRY_HEAD)
    reader.version(version)
    try:
        entry_kind = EntryKind(kind)
    except ValueError:
        raise reader.fail(f"unknown entry kind {kind}") from None
    return Entry(term=term, index=index, kind=entry_kind, data=reader.rest())


def encode_hard_state(hard_state: HardState) -> bytes:
    return _HARD_STATE.pack(FORMAT_VERSION, hard_state.term, hard_state.vote, hard_state.commit)


def decode_hard_state(data: bytes | memoryview) -> HardState:
    reader = _Reader(data, "hard state")
    version, term, vote, commit = reader.unpack(_HARD_STATE)
    reader.version(version)
    reader.finish()
    return HardState(term=term, vote=vote, commit=commit)


def _encode_nodes(nodes: frozenset[int]) -> bytes:
    # sorted so equal sets always encode to equal bytes
    return _COUNT.pack(len(nodes)) + b"".join(_NODE.pack(n) for n in sorted(nodes))


def _decode_nodes(reader: _Reader, bound: int = MEMBERS_MAX) -> frozenset[int]:
    return frozenset(reader.unpack(_NODE)[0] for _ in range(reader.count(bound)))


def _encode_conf(conf: ConfState) -> bytes:
    parts = [_encode_nodes(conf.voters), _encode_nodes(conf.learners)]
    parts.append(_COUNT.pack(len(conf.contexts)))
    for node_id, context in conf.contexts:
        parts.append(_CONTEXT_HEAD.pack(node_id, len(context)))
        parts.append(context)
    parts.append(_encode_nodes(conf.retired))
    return b"".join(parts)


def _decode_conf(reader: _Reader, version: int) -> ConfState:
    voters = _decode_nodes(reader)
    learners = _decode_nodes(reader)
    contexts = []
    for _ in range(reader.count()):
        node_id, size = reader.unpack(_CONTEXT_HEAD)
        contexts.append((node_id, reader.take(size)))
    retired = _decode_nodes(reader, RETIRED_MAX) if version >= 2 else frozenset()
    return ConfState(voters=voters, learners=learners, contexts=tuple(contexts), retired=retired)


def encode_snapshot_meta(meta: SnapshotMeta) -> bytes:
    return _META_HEAD.pack(META_FORMAT_VERSION, meta.index, meta.term) + _encode_conf(meta.conf)


def decode_snapshot_meta(data: bytes | memoryview) -> SnapshotMeta:
    reader = _Reader(data, "snapshot meta")
    version, index, term = reader.unpack(_META_HEAD)
    reader.version(version, known=(1, META_FORMAT_VERSION))
    conf = _decode_conf(reader, version)
    reader.finish()
    return SnapshotMeta(index=index, term=term, conf=conf)


def encode_snapshot(snapshot: Snapshot) -> bytes:
    meta = encode_snapshot_meta(snapshot.meta)
    return _SNAPSHOT_HEAD.pack(FORMAT_VERSION, len(meta)) + meta + snapshot.data


def decode_snapshot(data: bytes | memoryview) -> Snapshot:
    reader = _Reader(data, "snapshot")
    version, meta_size = reader.unpack(_SNAPSHOT_HEAD)
    reader.version(version)
    meta = decode_snapshot_meta(reader.take(meta_size))
    return Snapshot(meta=meta, data=reader.rest())
