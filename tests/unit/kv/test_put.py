"""Put options: prev_kv, ignore_value, ignore_lease and lease checks."""

from __future__ import annotations

from tests.unit.kv.helpers import Log, failed, ok
from triumvir.v1.common_pb2 import Event


def test_put_with_prev_kv_returns_the_replaced_version() -> None:
    log = Log()
    log.put(b"k", b"old")
    response = ok(log.put(b"k", b"new", prev_kv=True)).put
    assert (response.prev_kv.value, response.prev_kv.mod_revision) == (b"old", 1)
    first = ok(log.put(b"fresh", b"v", prev_kv=True)).put
    assert not first.HasField("prev_kv")


def test_put_event_carries_new_and_previous_versions() -> None:
    log = Log()
    log.put(b"k", b"old")
    (event,) = log.put(b"k", b"new").events
    assert event.type == Event.PUT
    assert (event.kv.value, event.kv.version) == (b"new", 2)
    assert event.prev_kv.value == b"old"


def test_ignore_value_keeps_value_and_bumps_version() -> None:
    log = Log()
    lease = ok(log.grant(60)).lease_grant.id
    log.put(b"k", b"keep")
    ok(log.put(b"k", lease=lease, ignore_value=True))
    (kv,) = log.get(b"k").kvs
    assert (kv.value, kv.lease, kv.version) == (b"keep", lease, 2)


def test_ignore_lease_keeps_lease() -> None:
    log = Log()
    lease = ok(log.grant(60)).lease_grant.id
    log.put(b"k", b"v1", lease=lease)
    ok(log.put(b"k", b"v2", ignore_lease=True))
    (kv,) = log.get(b"k").kvs
    assert (kv.value, kv.lease) == (b"v2", lease)


def test_ignore_flags_need_an_existing_key_and_no_conflicting_field() -> None:
    log = Log()
    assert failed(log.put(b"k", ignore_value=True)).code == "INVALID_ARGUMENT"
    log.put(b"k", b"v")
    assert failed(log.put(b"k", b"x", ignore_value=True)).code == "INVALID_ARGUMENT"
    assert failed(log.put(b"k", lease=5, ignore_lease=True)).code == "INVALID_ARGUMENT"
    assert log.machine.revision == 1


def test_put_with_unknown_lease_is_not_found_and_changes_nothing() -> None:
    log = Log()
    error = failed(log.put(b"k", b"v", lease=123))
    assert (error.code, error.message) == ("NOT_FOUND", "lease 123 not found")
    assert log.machine.revision == 0
    assert log.get(b"k").count == 0
