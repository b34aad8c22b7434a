"""A watcher's responses hold whole revisions: a client that reconnects resumes from the
revision after its last event, so a response that ended inside a revision would lose the
rest of it."""

from __future__ import annotations

import asyncio

from triumvir.consensus import servicers
from triumvir.consensus.servicers import fragments, take_response
from triumvir.consensus.watch_hub import WatcherOverflow
from triumvir.v1.common_pb2 import Event, KeyValue


def _queue(items: list[object]) -> asyncio.Queue[object]:
    queue: asyncio.Queue[object] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    return queue


def _events(revision: int, count: int, value: bytes = b"") -> list[Event]:
    return [
        Event(kv=KeyValue(key=b"k%d/%d" % (revision, i), value=value, mod_revision=revision))
        for i in range(count)
    ]


def _revisions(items: list[object]) -> list[int]:
    return [item.kv.mod_revision for item in items]  # type: ignore[attr-defined]


def test_a_response_that_reaches_its_bound_inside_a_revision_takes_the_rest_of_it(
    monkeypatch,
) -> None:
    monkeypatch.setattr(servicers, "WATCH_EVENTS_PER_RESPONSE", 4)
    queued = _events(1, 3) + _events(2, 3) + _events(3, 2)
    queue = _queue(queued[1:])
    batch, carry = take_response(queue, queued[:1])
    assert _revisions(batch) == [1, 1, 1, 2, 2, 2]
    assert _revisions(carry) == [3]  # taken while looking for the revision's end
    batch, carry = take_response(queue, carry)
    assert (_revisions(batch), carry) == ([3, 3], [])


def test_a_response_stops_at_about_a_mebibyte_of_whole_revisions() -> None:
    queued = [event for revision in range(1, 9) for event in _events(revision, 1, b"v" * 300_000)]
    batch, carry = take_response(_queue(queued[1:]), queued[:1])
    assert _revisions(batch) == [1, 2, 3, 4]
    assert _revisions(carry) == [5]  # the next response starts with it


def test_an_overflow_ends_a_response_after_the_revisions_before_it() -> None:
    overflow = WatcherOverflow()
    queued = [*_events(1, 2), overflow]
    batch, carry = take_response(_queue(queued[1:]), queued[:1])
    assert batch[:2] == queued[:2] and batch[2] is overflow and carry == []


def test_fragments_cut_a_batch_into_runs_under_the_bound_and_keep_every_event() -> None:
    events = _events(7, 8, b"v" * 300_000)
    pieces = fragments(events, 1024 * 1024)
    assert [len(piece) for piece in pieces] == [3, 3, 2]
    assert [e for piece in pieces for e in piece] == events
    assert all(sum(e.ByteSize() for e in piece) <= 1024 * 1024 for piece in pieces)


def test_an_event_larger_than_the_bound_is_a_fragment_of_its_own() -> None:
    small, large = _events(1, 1, b"s"), _events(1, 1, b"L" * 2000)
    assert fragments([*small, *large, *small], 1000) == [small, large, small]
