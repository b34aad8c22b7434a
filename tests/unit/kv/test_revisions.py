"""Every write that changes something advances the one global revision; each key tracks
create_revision, mod_revision and version."""

from __future__ import annotations

from tests.unit.kv.helpers import Log, ok
from triumvir.v1.kv_pb2 import PutRequest, RequestOp, TxnRequest


def test_each_put_advances_revision_by_one_and_reports_it() -> None:
    log = Log()
    assert log.machine.revision == 0
    first = log.put(b"a", b"1")
    second = log.put(b"b", b"2")
    assert (first.revision, second.revision) == (1, 2)
    assert ok(second).put.header.revision == 2


def test_key_metadata_tracks_create_mod_and_version() -> None:
    log = Log()
    log.put(b"k", b"v1")
    log.put(b"other", b"x")
    log.put(b"k", b"v2")
    (kv,) = log.get(b"k").kvs
    assert (kv.create_revision, kv.mod_revision, kv.version, kv.value) == (1, 3, 2, b"v2")


def test_delete_then_recreate_starts_a_new_generation() -> None:
    log = Log()
    log.put(b"k", b"v1")
    log.put(b"k", b"v2")
    log.delete(b"k")
    log.put(b"k", b"v3")
    (kv,) = log.get(b"k").kvs
    assert (kv.create_revision, kv.mod_revision, kv.version) == (4, 4, 1)


def test_delete_of_nothing_does_not_advance_revision() -> None:
    log = Log()
    log.put(b"a")
    applied = log.delete(b"missing")
    assert ok(applied).delete_range.deleted == 0
    assert applied.revision == 1
    assert applied.events == []


def test_txn_writes_share_one_revision_and_emit_events_in_op_order() -> None:
    log = Log()
    ops = [RequestOp(request_put=PutRequest(key=k, value=b"v")) for k in (b"z", b"a", b"m")]
    applied = log.txn(TxnRequest(success=ops))
    assert applied.revision == 1
    assert [e.kv.key for e in applied.events] == [b"z", b"a", b"m"]
    assert {e.kv.mod_revision for e in applied.events} == {1}


def test_read_only_txn_does_not_advance_revision() -> None:
    log = Log()
    log.put(b"a")
    applied = log.txn(TxnRequest())
    assert applied.revision == 1
    assert ok(applied).txn.succeeded
