"""DeleteRange: one revision for all keys deleted, prev_kv on request, DELETE events."""

from __future__ import annotations

from tests.unit.kv.helpers import Log, failed, keys_of, ok
from triumvir.v1.common_pb2 import Event


def test_delete_range_with_prev_kv_returns_deleted_keys() -> None:
    log = Log()
    for key in (b"a", b"b1", b"b2", b"c"):
        log.put(key, key + b"-value")
    applied = log.delete(b"b", b"c", prev_kv=True)
    response = ok(applied).delete_range
    assert response.deleted == 2
    assert [(kv.key, kv.value) for kv in response.prev_kvs] == [
        (b"b1", b"b1-value"),
        (b"b2", b"b2-value"),
    ]
    assert applied.revision == 5
    assert response.header.revision == 5
    assert keys_of(log.get(b"a", b"\0")) == [b"a", b"c"]


def test_delete_without_prev_kv_returns_only_the_count() -> None:
    log = Log()
    log.put(b"a")
    response = ok(log.delete(b"a")).delete_range
    assert response.deleted == 1
    assert len(response.prev_kvs) == 0


def test_delete_events_carry_key_revision_and_previous_value() -> None:
    log = Log()
    log.put(b"a", b"old")
    (event,) = log.delete(b"a").events
    assert event.type == Event.DELETE
    assert (event.kv.key, event.kv.mod_revision, event.kv.version) == (b"a", 2, 0)
    assert event.prev_kv.value == b"old"


def test_delete_with_empty_key_is_invalid_argument() -> None:
    log = Log()
    assert failed(log.delete(b"")).code == "INVALID_ARGUMENT"
