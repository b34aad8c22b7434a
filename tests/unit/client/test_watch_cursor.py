"""How far a watch got, so that a new stream neither repeats nor skips events."""

from __future__ import annotations

import pytest

from triumvir.v1 import common_pb2, watch_pb2
from triumvir_client import errors
from triumvir_client.streams import FellBehind, WatchCursor, keepalive_interval_s


def event(key: bytes, revision: int) -> common_pb2.Event:
    return common_pb2.Event(kv=common_pb2.KeyValue(key=key, mod_revision=revision))


def response(*events: common_pb2.Event, **fields: object) -> watch_pb2.WatchResponse:
    return watch_pb2.WatchResponse(events=list(events), **fields)  # type: ignore[arg-type]


def test_a_watch_from_the_next_write_learns_its_start_from_created() -> None:
    cursor = WatchCursor(b"k")
    assert cursor.create_request().create_request.start_revision == 0
    created = response(created=True, header=common_pb2.ResponseHeader(revision=9))
    assert cursor.accept(created) == []
    assert cursor.next_revision == 10
    # A later `created` (after a reconnect) must not move the cursor back.
    cursor.accept(response(event(b"k", 12)))
    cursor.accept(response(created=True, header=common_pb2.ResponseHeader(revision=11)))
    assert cursor.create_request().create_request.start_revision == 13


def test_events_of_one_revision_are_all_delivered_and_replays_are_dropped() -> None:
    cursor = WatchCursor(b"a", b"z", start_revision=5, prev_kv=True)
    request = cursor.create_request().create_request
    assert (request.key, request.range_end, request.prev_kv) == (b"a", b"z", True)
    batch = cursor.accept(response(event(b"a", 5), event(b"b", 5)))
    assert [e.kv.key for e in batch] == [b"a", b"b"]
    replay = cursor.accept(response(event(b"a", 5), event(b"b", 5), event(b"c", 6)))
    assert [(e.kv.key, e.kv.mod_revision) for e in replay] == [(b"c", 6)]
    assert cursor.next_revision == 7


def test_fragments_of_a_batch_are_delivered_together_once_the_last_arrives() -> None:
    cursor = WatchCursor(b"k", start_revision=5)
    assert cursor.create_request().create_request.fragment
    assert cursor.accept(response(event(b"a", 5), event(b"b", 5), fragment=True)) == []
    assert cursor.accept(response(event(b"c", 5), fragment=True)) == []
    assert cursor.next_revision == 5  # nothing delivered yet: a new stream starts at 5
    batch = cursor.accept(response(event(b"d", 5), event(b"e", 6)))
    assert [e.kv.key for e in batch] == [b"a", b"b", b"c", b"d", b"e"]
    assert cursor.next_revision == 7


def test_progress_between_fragments_neither_delivers_them_nor_moves_the_cursor() -> None:
    cursor = WatchCursor(b"k", start_revision=5)
    cursor.accept(response(event(b"a", 5), fragment=True))
    assert cursor.accept(response(header=common_pb2.ResponseHeader(revision=9))) == []
    assert cursor.next_revision == 5
    batch = cursor.accept(response(event(b"b", 5)))
    assert [e.kv.key for e in batch] == [b"a", b"b"]
    assert cursor.next_revision == 6


def test_fragments_from_a_broken_stream_are_dropped_when_a_new_one_starts() -> None:
    cursor = WatchCursor(b"k", start_revision=5)
    cursor.create_request()
    cursor.accept(response(event(b"a", 5), fragment=True))
    assert cursor.create_request().create_request.start_revision == 5
    # The new stream sends the whole batch again.
    assert cursor.accept(response(event(b"a", 5), fragment=True)) == []
    batch = cursor.accept(response(event(b"b", 5)))
    assert [e.kv.key for e in batch] == [b"a", b"b"]


def test_progress_moves_the_resume_point_forward_only() -> None:
    cursor = WatchCursor(b"k", start_revision=20)
    cursor.accept(response(header=common_pb2.ResponseHeader(revision=30)))
    assert cursor.next_revision == 31
    cursor.accept(response(header=common_pb2.ResponseHeader(revision=3)))
    assert cursor.next_revision == 31


def test_a_watch_dropped_for_reading_slowly_resumes_where_it_stopped() -> None:
    cursor = WatchCursor(b"k", start_revision=2)
    cursor.accept(response(event(b"k", 4)))
    with pytest.raises(FellBehind):
        cursor.accept(response(canceled=True, cancel_reason="watcher fell behind; resume"))
    assert cursor.create_request().create_request.start_revision == 5


def test_cancellation_is_an_error_naming_the_compaction() -> None:
    cursor = WatchCursor(b"k", start_revision=2)
    with pytest.raises(errors.WatchCompacted) as raised:
        cursor.accept(response(canceled=True, compact_revision=8))
    assert raised.value.compact_revision == 8
    with pytest.raises(errors.WatchCanceled, match="bad range"):
        cursor.accept(response(canceled=True, cancel_reason="bad range"))
    with pytest.raises(ValueError):
        WatchCursor(b"k", start_revision=-1)


def test_keepalive_refreshes_at_a_third_of_the_ttl_with_a_floor() -> None:
    assert keepalive_interval_s(30) == pytest.approx(10.0)
    assert keepalive_interval_s(0) > 0
