"""Watch support: retained events replay in revision order with no gaps, and the events
apply returns match what a later replay yields."""

from __future__ import annotations

import pytest

from tests.unit.kv.helpers import Log
from triumvir.common.errors import Compacted, InvalidArgument
from triumvir.v1.common_pb2 import Event
from triumvir.v1.kv_pb2 import PutRequest, RequestOp, TxnRequest


def build() -> tuple[Log, list[Event]]:
    log = Log()
    live: list[Event] = []
    live += log.put(b"a", b"1").events  # 1
    live += log.put(b"b", b"1").events  # 2
    live += log.put(b"a", b"2").events  # 3
    ops = [RequestOp(request_put=PutRequest(key=k, value=b"t")) for k in (b"c", b"a")]
    live += log.txn(TxnRequest(success=ops)).events  # 4 (two events)
    live += log.delete(b"b").events  # 5
    return log, live


def test_replay_from_revision_one_equals_live_events() -> None:
    log, live = build()
    replay = log.machine.events_since(1, b"\0", b"\0", prev_kv=True)
    assert replay == live
    assert [e.kv.mod_revision for e in replay] == [1, 2, 3, 4, 4, 5]


def test_replay_filters_by_key_and_starts_at_the_revision() -> None:
    log, _ = build()
    events = log.machine.events_since(3, b"a")
    assert [(e.type, e.kv.mod_revision, e.kv.value) for e in events] == [
        (Event.PUT, 3, b"2"),
        (Event.PUT, 4, b"t"),
    ]
    assert not events[0].HasField("prev_kv")


def test_replay_in_pages_has_no_gaps_or_duplicates() -> None:
    log, live = build()
    pages: list[Event] = []
    start = 1
    for _ in range(10):
        page = log.machine.events_since(start, b"\0", b"\0", prev_kv=True, max_events=1)
        if not page:
            break
        pages += page
        start = page[-1].kv.mod_revision + 1
    assert pages == live


def test_page_never_splits_a_revision() -> None:
    log, _ = build()
    page = log.machine.events_since(4, b"\0", b"\0", max_events=1)
    assert [e.kv.key for e in page] == [b"c", b"a"]


def test_replay_from_compacted_revision_is_compacted_error() -> None:
    log, _ = build()
    log.compact(3)
    with pytest.raises(Compacted):
        log.machine.events_since(3, b"a")
    assert [e.kv.mod_revision for e in log.machine.events_since(4, b"\0", b"\0")] == [4, 4, 5]


def test_replay_from_the_future_is_empty_and_nonpositive_start_is_invalid() -> None:
    log, _ = build()
    assert log.machine.events_since(6, b"\0", b"\0") == []
    with pytest.raises(InvalidArgument):
        log.machine.events_since(0, b"a")
