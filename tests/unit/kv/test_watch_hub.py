"""The watch hub hands each watcher the events of its range once, in order, from the
revision it asked for, and tells the replica whether anyone watches at all."""

from __future__ import annotations

from tests.unit.kv.helpers import Log
from triumvir.consensus.watch_hub import WatchHub


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
