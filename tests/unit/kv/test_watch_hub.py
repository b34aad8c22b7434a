"""The watch hub hands each watcher the events of its range once, in order, from the
revision it asked for, and tells the replica whether anyone watches at all."""

from __future__ import annotations

import pytest

from tests.unit.kv.helpers import Log
from triumvir.common.errors import Compacted
from triumvir.consensus import watch_hub
from triumvir.consensus.watch_hub import (
    CATCH_UP_PAGE_EVENTS,
    WATCHER_QUEUE_EVENTS_MAX,
    WatcherOverflow,
    WatchHub,
)
from triumvir.v1.kv_pb2 import PutRequest, RequestOp, TxnRequest


def drain(queue) -> list[tuple[bytes, int]]:
    events = []
    while not queue.empty():
        event = queue.get_nowait()
        events.append((event.kv.key, event.kv.mod_revision))
    return events


def test_watching_only_while_a_subscription_is_open() -> None:
    log = Log()
    hub = WatchHub(log.machine)
    assert not hub.watching
    subscription = hub.subscribe(b"a", b"", 0)
    assert hub.watching
    hub.unsubscribe(subscription)
    assert not hub.watching


def test_catch_up_then_live_events_without_gap_or_duplicate() -> None:
    log = Log()
    log.put(b"a", b"1")  # 1
    log.put(b"b", b"1")  # 2
    hub = WatchHub(log.machine)
    subscription = hub.subscribe(b"a", b"c", 1)
    hub.publish(log.put(b"a", b"2").events)  # 3
    hub.publish(log.put(b"z", b"1").events)  # 4: outside the range
    hub.publish(log.put(b"b", b"2").events)  # 5
    assert drain(subscription.queue) == [(b"a", 1), (b"b", 2), (b"a", 3), (b"b", 5)]


def test_apply_result_builds_events_from_its_changes() -> None:
    log = Log()
    log.put(b"a", b"1")
    applied = log.put(b"a", b"2")
    record, prev = applied.changes[0]
    (event,) = applied.events
    assert (event.kv.key, event.kv.value, event.kv.mod_revision) == (b"a", b"2", 2)
    assert prev is not None and event.prev_kv.value == b"1" == prev.value
    assert record.mod_revision == 2


def drain_all(hub: WatchHub, subscription) -> list[tuple[bytes, int]]:
    """Everything the watcher gets, reading history a page at a time as a pump does."""
    events = drain(subscription.queue)
    while subscription.catching_up:
        hub.catch_up(subscription)
        events += drain(subscription.queue)
    return events


def test_catch_up_longer_than_a_watcher_queue_is_delivered_whole() -> None:
    log = Log()
    for i in range(WATCHER_QUEUE_EVENTS_MAX + 50):
        log.put(b"k", b"%d" % i)
    hub = WatchHub(log.machine)
    subscription = hub.subscribe(b"k", b"", 1)
    assert subscription.queue.qsize() <= CATCH_UP_PAGE_EVENTS  # one page at a time
    hub.publish(log.put(b"k", b"last").events)
    revisions = [revision for _, revision in drain_all(hub, subscription)]
    assert revisions == list(range(1, WATCHER_QUEUE_EVENTS_MAX + 52))


def test_writes_made_while_catching_up_arrive_once_in_order() -> None:
    log = Log()
    for i in range(2 * CATCH_UP_PAGE_EVENTS):
        log.put(b"a" if i % 2 else b"b", b"%d" % i)
    hub = WatchHub(log.machine)
    subscription = hub.subscribe(b"a", b"c", 1)
    seen = drain(subscription.queue)
    while subscription.catching_up:
        hub.publish(log.put(b"a", b"live").events)  # history by the time it gets there
        hub.catch_up(subscription)
        seen += drain(subscription.queue)
    hub.publish(log.put(b"b", b"live").events)
    seen += drain(subscription.queue)
    assert [revision for _, revision in seen] == list(range(1, log.machine.revision + 1))


def test_history_pages_carry_previous_versions_when_asked() -> None:
    log = Log()
    log.put(b"a", b"1")
    log.put(b"a", b"2")
    hub = WatchHub(log.machine)
    subscription = hub.subscribe(b"a", b"", 1, prev_kv=True)
    first, second = subscription.queue.get_nowait(), subscription.queue.get_nowait()
    assert not first.HasField("prev_kv")
    assert second.prev_kv.value == b"1"


def test_history_compacted_while_catching_up_is_reported() -> None:
    log = Log()
    for i in range(3 * CATCH_UP_PAGE_EVENTS):
        log.put(b"k", b"%d" % i)
    hub = WatchHub(log.machine)
    subscription = hub.subscribe(b"k", b"", 1)
    log.compact(2 * CATCH_UP_PAGE_EVENTS)
    drain(subscription.queue)
    with pytest.raises(Compacted):
        hub.catch_up(subscription)


def test_an_overflowing_watcher_gets_whole_revisions_then_the_overflow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A watcher resumes from the revision after its last event, so an overflow that cut a
    # revision in two would lose the events of that revision it never got.
    monkeypatch.setattr(watch_hub, "WATCHER_QUEUE_EVENTS_MAX", 10)
    log = Log()
    hub = WatchHub(log.machine)
    subscription = hub.subscribe(b"t/", b"t0", 0)
    for t in range(3):  # three revisions of four keys: the third does not fit
        puts = [RequestOp(request_put=PutRequest(key=b"t/%d/%d" % (t, j))) for j in range(4)]
        hub.publish(log.txn(TxnRequest(success=puts)).events)
    items = []
    while not subscription.queue.empty():
        items.append(subscription.queue.get_nowait())
    assert isinstance(items[-1], WatcherOverflow)
    assert [event.kv.mod_revision for event in items[:-1]] == [1] * 4 + [2] * 4
    assert not hub.watching  # an overflowed watcher gets nothing more
