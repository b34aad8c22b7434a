"""The snapshot byte format: what it refuses even when its checksum is right."""

from __future__ import annotations

import struct

import crc32c
import pytest

from tests.unit.kv.helpers import Log
from triumvir.consensus.kv.records import KeyRecord
from triumvir.consensus.kv.snapshot import SnapshotError, SnapshotState, decode, encode
from triumvir.v1.command_pb2 import Command
from triumvir.v1.kv_pb2 import PutRequest


def _state(histories: list[tuple[bytes, list[KeyRecord]]]) -> SnapshotState:
    return SnapshotState(
        applied_index=3,
        now_ms=0,
        revision=2,
        compact_revision=0,
        histories=histories,
        leases=[],
        sessions=[],
    )


def _resealed(body: bytes) -> bytes:
    """`body` with a correct checksum, as a faulty writer would have produced it."""
    return body + struct.pack(">I", crc32c.crc32c(body))


def test_versions_survive_the_round_trip() -> None:
    history = [KeyRecord(b"k", b"one", 1, 1, 1, 0, 0), KeyRecord(b"k", b"two", 1, 2, 2, 0, 0)]
    assert decode(encode(_state([(b"k", history)]))).histories == [(b"k", history)]


def test_a_value_longer_than_the_snapshot_is_refused() -> None:
    data = encode(_state([(b"k", [KeyRecord(b"k", b"abc", 1, 1, 1, 0, 0)])]))[:-4]
    overrun = data.replace(b"\x00\x00\x00\x03abc", b"\x00\x00\x01\x00abc")
    assert overrun != data
    with pytest.raises(SnapshotError, match="runs past the end"):
        decode(_resealed(overrun))


def test_a_key_without_versions_is_refused() -> None:
    with pytest.raises(SnapshotError, match="has no versions"):
        decode(encode(_state([(b"k", [])])))


def tagged_put(log: Log, key: bytes, value: bytes, tag: tuple[int, int]) -> None:
    log.apply(Command(put=PutRequest(key=key, value=value)), tag=tag)


def test_a_snapshot_encoded_later_holds_the_state_as_of_the_call() -> None:
    log = Log()
    log.grant(60, lease_id=9)
    for i in range(20):
        tagged_put(log, b"k%d" % (i % 4), b"%d" % i, (1, i + 1))
    log.put(b"leased", b"x", lease=9)
    log.delete(b"k3")
    expected = log.machine.snapshot()
    later = log.machine.snapshot_later()
    # Everything that changes afterwards: new versions, new keys, deletes, compaction that
    # empties and trims version lists, leases and client sessions.
    tagged_put(log, b"k0", b"newer", (1, 21))
    tagged_put(log, b"new-key", b"1", (2, 1))
    log.delete(b"k1")
    log.compact(log.machine.revision)
    log.revoke(9)
    assert later() == expected
