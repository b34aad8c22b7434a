"""Chunked snapshot transfer between Paxos nodes, both ends, for one node.

Any node may stream its snapshot to a peer that asked for slots it compacted, and a node
may be sent the same snapshot by two peers at once (the old leader and the new one), so
both ends keep one stream per peer. Streams are stop-and-wait: the chunk at the offset the
receiver reported is (re)sent until the receiver reports holding more, so a lost,
duplicated or reordered chunk costs one resend, never corruption.
"""

from __future__ import annotations

from dataclasses import dataclass

from triumvir.consensus.raft.snapshot_transfer import SnapshotAssembler, chunk_at
from triumvir.consensus.raft.types import Snapshot, SnapshotMeta

MAX_SNAPSHOT_STREAMS = 16  # per direction; more requests wait for a retry


@dataclass(frozen=True, slots=True)
class Chunk:
    meta: SnapshotMeta  # term 0: a term is local bookkeeping of each node's storage
    offset: int
    data: bytes
    done: bool


@dataclass(slots=True)
class _Outgoing:
    snapshot: Snapshot
    offset: int = 0


class SnapshotStreams:
    __slots__ = ("_chunk_bytes", "_incoming", "_outgoing")

    def __init__(self, chunk_bytes: int) -> None:
        self._chunk_bytes = chunk_bytes
        self._outgoing: dict[int, _Outgoing] = {}
        self._incoming: dict[int, SnapshotAssembler] = {}

    # -- sending -----------------------------------------------------------------------------

    def resume(self, node: int, snapshot: Snapshot) -> Chunk | None:
        """`node` asked for compacted slots: the chunk to (re)send, starting a stream of
        `snapshot` unless one of it (or a newer one) is under way. None when too many
        streams are open."""
        stream = self._outgoing.get(node)
        if stream is None or stream.snapshot.meta.index < snapshot.meta.index:
            if stream is None and len(self._outgoing) >= MAX_SNAPSHOT_STREAMS:
                return None
            stream = self._outgoing[node] = _Outgoing(snapshot)
        return self._chunk(stream)

    def answered(self, node: int, offset: int, *, rewind: bool, installed: bool) -> Chunk | None:
        """The receiver's report: the next chunk to send, if any."""
        stream = self._outgoing.get(node)
        if stream is None:
            return None
        if installed:
            del self._outgoing[node]
            return None
        if rewind or offset > stream.offset:
            stream.offset = offset
            return self._chunk(stream)
        return None  # a late duplicate of an earlier report

    def forget(self, node: int) -> None:
        """`node` no longer needs a snapshot (it asked for slots past it)."""
        self._outgoing.pop(node, None)

    def _chunk(self, stream: _Outgoing) -> Chunk:
        snapshot = stream.snapshot
        data, done = chunk_at(snapshot, stream.offset, self._chunk_bytes)
        meta = SnapshotMeta(snapshot.meta.index, 0, snapshot.meta.conf)
        return Chunk(meta, stream.offset, data, done)

    # -- receiving ---------------------------------------------------------------------------

    def receive(
        self, src: int, meta: SnapshotMeta, offset: int, data: bytes, done: bool
    ) -> tuple[int, bool, Snapshot | None] | None:
        """Take a chunk from `src`: (bytes held, whether `src` must rewind, the snapshot once
        complete), or None when too many streams are open (the sender retries later)."""
        assembler = self._incoming.get(src)
        if assembler is None:
            if len(self._incoming) >= MAX_SNAPSHOT_STREAMS:
                return None
            assembler = self._incoming[src] = SnapshotAssembler()
        held, rewind, snapshot = assembler.receive(meta, offset, data, done)
        if snapshot is not None:
            self._incoming.clear()  # every other stream is now behind us
        return held, rewind, snapshot
