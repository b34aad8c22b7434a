from __future__ import annotations

import pytest

from triumvir.consensus.raft.types import (
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Snapshot,
    SnapshotMeta,
)
from triumvir.consensus.storage import codec
from triumvir.consensus.storage.interface import DecodeError, StorageError

U64_MAX = 2**64 - 1

CONF = ConfState(
    voters=frozenset({1, 2, 3}),
    learners=frozenset({9}),
    contexts=((1, b"10.0.0.1:7000"), (9, b""), (2, b"\x00\xff")),
    retired=frozenset({4, 7}),
)


@pytest.mark.parametrize(
    "entry",
    [
        Entry(term=1, index=1),
        Entry(term=7, index=42, kind=EntryKind.NOOP),
        Entry(term=U64_MAX, index=U64_MAX, kind=EntryKind.CONF_CHANGE, data=b"\x00" * 300),
        Entry(term=3, index=5, data=bytes(range(256))),
    ],
)
def test_entry_round_trip(entry: Entry) -> None:
    assert codec.decode_entry(codec.encode_entry(entry)) == entry


@pytest.mark.parametrize(
    "hard_state",
    [HardState(), HardState(term=5, vote=2, commit=99), HardState(U64_MAX, U64_MAX, U64_MAX)],
)
def test_hard_state_round_trip(hard_state: HardState) -> None:
    assert codec.decode_hard_state(codec.encode_hard_state(hard_state)) == hard_state


@pytest.mark.parametrize("meta", [SnapshotMeta(), SnapshotMeta(index=100, term=4, conf=CONF)])
def test_snapshot_meta_round_trip(meta: SnapshotMeta) -> None:
    decoded = codec.decode_snapshot_meta(codec.encode_snapshot_meta(meta))
    assert decoded == meta
    assert decoded.conf.contexts == meta.conf.contexts  # order of contexts is kept


def test_snapshot_round_trip() -> None:
    snap = Snapshot(meta=SnapshotMeta(index=10, term=2, conf=CONF), data=b"kv-state" * 100)
    assert codec.decode_snapshot(codec.encode_snapshot(snap)) == snap


def test_equal_conf_states_encode_identically() -> None:
    a = ConfState(voters=frozenset([3, 1, 2]))
    b = ConfState(voters=frozenset([2, 3, 1]))
    assert codec.encode_snapshot_meta(SnapshotMeta(conf=a)) == codec.encode_snapshot_meta(
        SnapshotMeta(conf=b)
    )


def _every_truncation(data: bytes) -> list[bytes]:
    return [data[:cut] for cut in range(len(data))]


def test_truncated_hard_state_and_meta_raise_decode_error() -> None:
    hard = codec.encode_hard_state(HardState(term=1, vote=2, commit=3))
    meta = codec.encode_snapshot_meta(SnapshotMeta(index=3, term=1, conf=CONF))
    for cut in _every_truncation(hard):
        with pytest.raises(DecodeError, match="hard state"):
            codec.decode_hard_state(cut)
    for cut in _every_truncation(meta):
        with pytest.raises(DecodeError, match="snapshot meta"):
            codec.decode_snapshot_meta(cut)


def test_truncated_entry_header_raises_decode_error() -> None:
    data = codec.encode_entry(Entry(term=1, index=1, data=b"x"))
    for cut in range(18):  # the fixed header: version, term, index, kind
        with pytest.raises(DecodeError, match="entry"):
            codec.decode_entry(data[:cut])


def test_decode_error_is_a_storage_error() -> None:
    assert issubclass(DecodeError, StorageError)


def test_unknown_version_is_named() -> None:
    data = bytearray(codec.encode_hard_state(HardState(term=1)))
    data[0] = 9
    with pytest.raises(DecodeError, match="format version 9"):
        codec.decode_hard_state(bytes(data))


def test_unknown_entry_kind_is_named() -> None:
    data = bytearray(codec.encode_entry(Entry(term=1, index=1)))
    data[17] = 200
    with pytest.raises(DecodeError, match="unknown entry kind 200"):
        codec.decode_entry(bytes(data))


def test_trailing_bytes_are_rejected() -> None:
    with pytest.raises(DecodeError, match="trailing"):
        codec.decode_hard_state(codec.encode_hard_state(HardState()) + b"\x00")


def test_absurd_member_count_is_rejected_without_allocating() -> None:
    # version, index, term, then a voter count of 2**32 - 1
    data = codec.encode_snapshot_meta(SnapshotMeta())[:17] + b"\xff\xff\xff\xff"
    with pytest.raises(DecodeError, match="member count"):
        codec.decode_snapshot_meta(data)


def test_snapshot_meta_length_beyond_data_is_rejected() -> None:
    data = bytearray(codec.encode_snapshot(Snapshot(meta=SnapshotMeta(), data=b"")))
    data[1:5] = (10_000).to_bytes(4, "big")
    with pytest.raises(DecodeError, match="snapshot"):
        codec.decode_snapshot(bytes(data))


def test_snapshot_meta_of_format_1_reads_with_no_retired_ids() -> None:
    # Version 1 metadata: the same layout, ending after the member contexts.
    current = codec.encode_snapshot_meta(SnapshotMeta(index=3, term=1, conf=CONF))
    retired_tail = 4 + 2 * 8  # a count and two ids
    version_1 = b"\x01" + current[1:-retired_tail]
    meta = codec.decode_snapshot_meta(version_1)
    assert meta.conf.retired == frozenset()
    assert (meta.index, meta.term, meta.conf.voters) == (3, 1, CONF.voters)
