"""Small builders shared by the storage tests."""

from __future__ import annotations

from triumvir.consensus.raft.types import ConfState, Entry, Snapshot, SnapshotMeta


def entries(first: int, last: int, term: int = 1) -> list[Entry]:
    """Entries first..last (inclusive) of one term, each carrying its own index as data."""
    return [
        Entry(term=term, index=i, data=f"cmd-{term}-{i}".encode()) for i in range(first, last + 1)
    ]


def snapshot(index: int, term: int, data: bytes = b"state") -> Snapshot:
    conf = ConfState(voters=frozenset({1, 2, 3}), contexts=((1, b"a:1"), (2, b"b:2")))
    return Snapshot(meta=SnapshotMeta(index=index, term=term, conf=conf), data=data)
