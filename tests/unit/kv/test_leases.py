"""Leases: grant, attach, revoke, leader-decided expiry, keep-alive winning a race with
expiry, a new leader's refresh, TimeToLive and Leases."""

from __future__ import annotations

import pytest

from tests.unit.kv.helpers import Log, failed, keys_of, ok
from triumvir.consensus.kv import machine as machine_module
from triumvir.consensus.kv.leases import LeaseTable
from triumvir.v1.common_pb2 import Event
from triumvir.v1.lease_pb2 import LeaseTimeToLiveRequest

TTL_S = 10


def test_grant_with_id_zero_picks_an_id_from_the_log_index() -> None:
    log = Log()
    log.put(b"x")
    response = ok(log.grant(TTL_S)).lease_grant
    assert (response.id, response.ttl) == (2, TTL_S)
    # Index 3 is taken by an explicit grant, so the next automatic id skips past it.
    ok(log.grant(TTL_S, lease_id=4))
    assert ok(log.grant(TTL_S)).lease_grant.id == 5


def test_grant_rejects_bad_ttl_and_duplicate_id() -> None:
    log = Log()
    assert failed(log.grant(0)).code == "INVALID_ARGUMENT"
    assert failed(log.grant(-5)).code == "INVALID_ARGUMENT"
    ok(log.grant(TTL_S, lease_id=7))
    assert failed(log.grant(TTL_S, lease_id=7)).code == "ALREADY_EXISTS"
    assert [s.id for s in log.machine.leases().leases] == [7]


def test_revoke_deletes_attached_keys_in_one_revision() -> None:
    log = Log()
    lease = ok(log.grant(TTL_S)).lease_grant.id
    for key in (b"c", b"a", b"b"):
        log.put(key, lease=lease)
    log.put(b"free")
    applied = log.revoke(lease)
    assert applied.revision == 5
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in applied.events] == [
        (Event.DELETE, b"a", 5),
        (Event.DELETE, b"b", 5),
        (Event.DELETE, b"c", 5),
    ]
    assert keys_of(log.get(b"\0", b"\0")) == [b"free"]
    assert failed(log.revoke(lease)).code == "NOT_FOUND"


def test_detached_key_survives_revoke() -> None:
    log = Log()
    lease = ok(log.grant(TTL_S)).lease_grant.id
    log.put(b"k", lease=lease)
    log.put(b"k", b"no lease now")
    ok(log.revoke(lease))
    assert log.get(b"k").kvs[0].value == b"no lease now"


def test_deleted_key_is_no_longer_listed_on_its_lease() -> None:
    log = Log()
    lease = ok(log.grant(TTL_S)).lease_grant.id
    log.put(b"a", lease=lease)
    log.put(b"b", lease=lease)
    log.delete(b"a")
    ttl = log.machine.lease_time_to_live(LeaseTimeToLiveRequest(id=lease, keys=True), 0)
    assert list(ttl.keys) == [b"b"]


def test_expiry_is_decided_in_leader_time_and_deletes_keys() -> None:
    log = Log()
    lease = ok(log.grant(TTL_S)).lease_grant.id
    log.put(b"k", lease=lease)
    granted_at_ms = log.time_ms
    assert log.machine.expired(granted_at_ms + TTL_S * 1000 - 1) == []
    assert log.machine.expired(granted_at_ms + TTL_S * 1000) == [lease]
    log.advance(TTL_S * 1000)
    applied = log.expire(lease)
    assert [e.type for e in applied.events] == [Event.DELETE]
    assert log.get(b"k").count == 0
    assert log.machine.leases().leases == []


def test_keep_alive_applied_before_expiry_wins_the_race() -> None:
    log = Log()
    lease = ok(log.grant(TTL_S)).lease_grant.id
    log.put(b"k", lease=lease)
    log.advance(TTL_S * 1000)
    # The leader saw the lease expired and proposed its expiry, but a keep-alive proposed
    # at the same leader time was ordered first in the log.
    assert log.machine.expired(log.time_ms) == [lease]
    renewed = ok(log.keep_alive(lease)).lease_keep_alive
    assert (renewed.id, renewed.ttl) == (lease, TTL_S)
    applied = log.expire(lease)
    assert applied.events == []
    assert log.get(b"k").count == 1
    assert log.machine.expired(log.time_ms) == []


def test_keep_alive_of_unknown_lease_answers_ttl_zero() -> None:
    log = Log()
    response = ok(log.keep_alive(42)).lease_keep_alive
    assert (response.id, response.ttl) == (42, 0)


def test_expire_of_a_lease_not_yet_expired_does_nothing() -> None:
    log = Log()
    lease = ok(log.grant(TTL_S)).lease_grant.id
    log.advance(TTL_S * 1000 - 1)
    ok(log.expire(lease, 999))
    assert [s.id for s in log.machine.leases().leases] == [lease]


def test_refresh_gives_every_lease_its_whole_ttl_again() -> None:
    log = Log()
    short = ok(log.grant(TTL_S)).lease_grant.id
    long = ok(log.grant(10 * TTL_S)).lease_grant.id
    log.put(b"k", lease=short)
    log.advance(TTL_S * 1000 - 1)  # the short lease is a millisecond from expiring
    revision = log.machine.revision
    applied = log.refresh_leases()
    assert applied.changes == [] and applied.revision == revision  # no key is touched
    refreshed_at = log.time_ms
    assert log.machine.expired(refreshed_at + TTL_S * 1000 - 1) == []
    assert log.machine.expired(refreshed_at + TTL_S * 1000) == [short]
    assert log.machine.expired(refreshed_at + 10 * TTL_S * 1000) == [short, long]
    assert keys_of(log.get(b"k")) == [b"k"]


def test_refresh_of_more_leases_than_one_apply_may_rewrite_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(machine_module, "MAX_LEASES_PER_REFRESH", 1)
    log = Log()
    first = ok(log.grant(TTL_S)).lease_grant.id
    granted_at = log.time_ms
    ok(log.grant(TTL_S))
    log.advance(TTL_S * 1000 - 1)
    ok(log.refresh_leases())
    assert log.machine.expired(granted_at + TTL_S * 1000) == [first, first + 1]


def test_refresh_shortens_no_lease() -> None:
    table = LeaseTable()
    table.grant(1, TTL_S, now_ms=50_000)
    table.refresh(now_ms=10_000)  # a clock behind the one the lease was granted by
    assert table.expired(50_000 + TTL_S * 1000 - 1) == []
    assert table.expired(50_000 + TTL_S * 1000) == [1]


def test_time_to_live_counts_down_against_the_given_clock() -> None:
    log = Log()
    lease = ok(log.grant(TTL_S)).lease_grant.id
    log.put(b"k2", lease=lease)
    log.put(b"k1", lease=lease)
    now_ms = log.time_ms + 3_500
    response = log.machine.lease_time_to_live(LeaseTimeToLiveRequest(id=lease, keys=True), now_ms)
    assert (response.ttl, response.granted_ttl, list(response.keys)) == (6, TTL_S, [b"k1", b"k2"])
    missing = log.machine.lease_time_to_live(LeaseTimeToLiveRequest(id=999), now_ms)
    assert missing.ttl == -1


def test_leases_lists_live_leases_in_id_order() -> None:
    log = Log()
    for lease_id in (30, 10, 20):
        ok(log.grant(TTL_S, lease_id=lease_id))
    ok(log.revoke(20))
    assert [s.id for s in log.machine.leases().leases] == [10, 30]
