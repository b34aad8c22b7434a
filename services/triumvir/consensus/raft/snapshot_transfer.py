"""Chunked InstallSnapshot: cutting a snapshot into chunks and putting it back together.

The leader streams one chunk at a time (stop-and-wait) and the follower reports how many
bytes it holds, so a lost, duplicated or reordered chunk costs one resend, never corruption.
"""

from __future__ import annotations

from triumvir.consensus.raft.types import Snapshot, SnapshotMeta


def chunk_at(snapshot: Snapshot, offset: int, chunk_bytes_max: int) -> tuple[bytes, bool]:
    """The chunk starting at `offset`, and whether it is the last one."""
    end = min(offset + chunk_bytes_max, len(snapshot.data))
    return snapshot.data[offset:end], end >= len(snapshot.data)


class SnapshotAssembler:
    """Follower side: collects the chunks of one snapshot in order."""

    __slots__ = ("_buffer", "_meta")

    def __init__(self) -> None:
        self._meta: SnapshotMeta | None = None
        self._buffer = bytearray()

    def receive(
        self, meta: SnapshotMeta, offset: int, chunk: bytes, done: bool
    ) -> tuple[int, bool, Snapshot | None]:
        """Take one chunk. Returns (bytes held, whether the sender must rewind to that
        offset, the whole snapshot once its last chunk arrived)."""
        if meta != self._meta:
            if offset != 0:
                return 0, True, None  # a chunk of a stream we never saw the start of
            self._meta = meta
            self._buffer = bytearray()
        held = len(self._buffer)
        if offset > held:
            return held, True, None  # a gap: something before this chunk was lost
        end = offset + len(chunk)
        if end > held:
            self._buffer += chunk[held - offset :]
            held = end
        if done and held == end:
            snapshot = Snapshot(meta, bytes(self._buffer))
            self._meta = None
            self._buffer = bytearray()
            return held, False, snapshot
        return held, False, None
