"""The blocking client against in-process fake members: leader hints, exactly-once
retries, resuming watches, keep-alives and snapshots."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import grpc
import pytest

from tests.unit.client.fakes import (
    NO_BACKOFF,
    WAIT_S,
    FakeServer,
    Member,
    WatchScript,
    created,
    events_response,
    put_event,
)
from triumvir.v1 import common_pb2, kv_pb2, watch_pb2
from triumvir_client import Client, errors
from triumvir_client.routing import RetryPolicy


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as fake:
        yield fake


def test_a_leader_hint_is_followed_in_one_hop() -> None:
    with FakeServer(Member(member_id=1)) as leader, FakeServer(Member(member_id=2)) as follower:
        follower.member.not_leader = (1, leader.address)
        with Client([follower.address], retry=NO_BACKOFF) as client:
            response = client.put("k", "v")
            assert response.header.member_id == 1
            assert len(follower.calls_named("Put")) == 1
            assert len(leader.calls_named("Put")) == 1
            # The leader is remembered: the next write does not visit the follower again.
            client.put("k", "v2")
            assert len(follower.calls_named("Put")) == 1
            assert len(leader.calls_named("Put")) == 2


def test_a_dropped_reply_is_retried_with_the_same_tag_and_applied_once(
    server: FakeServer,
) -> None:
    server.member.replies_to_drop = 1
    with Client([server.address], client_id=7, retry=NO_BACKOFF) as client:
        response = client.put("k", "v")
        assert response.header.revision == 1
        puts = server.calls_named("Put")
        assert len(puts) == 2
        assert puts[0].tag == puts[1].tag == common_pb2.RequestTag(client_id=7, sequence=1)
        assert server.member.applied == 1
        client.put("k", "w")
        assert server.calls_named("Put")[-1].tag.sequence == 2


def test_a_write_that_keeps_timing_out_raises_outcome_unknown(server: FakeServer) -> None:
    server.member.always_time_out = True
    policy = RetryPolicy(attempts_max=3, backoff_ms=0, backoff_ms_max=0)
    with (
        Client([server.address], retry=policy) as client,
        pytest.raises(errors.OutcomeUnknown) as raised,
    ):
        client.put("k", "v")
    assert raised.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    tags = {put.tag.SerializeToString() for put in server.calls_named("Put")}
    assert len(server.calls_named("Put")) == 3
    assert len(tags) == 1


def test_server_errors_surface_with_their_code_and_message(server: FakeServer) -> None:
    with (
        Client([server.address], retry=NO_BACKOFF) as client,
        pytest.raises(errors.NotFound) as raised,
    ):
        client.lease_revoke(12345)
    assert raised.value.code == grpc.StatusCode.NOT_FOUND
    assert raised.value.message == "lease 12345 not found"
    assert str(raised.value) == "NOT_FOUND: lease 12345 not found"
    # A definite refusal is not retried.
    assert server.calls_named("Revoke") == []


def test_an_unreachable_member_is_skipped(server: FakeServer) -> None:
    with FakeServer() as gone:
        dead_address = gone.address
    with Client([dead_address, server.address], retry=NO_BACKOFF) as client:
        assert client.get("missing").count == 0
    assert len(server.calls_named("Range")) == 1


def test_the_watch_resumes_after_a_broken_stream_from_the_next_revision() -> None:
    first = WatchScript(
        streams=[
            [
                created(4),
                events_response(put_event(b"k", 5)),
                events_response(put_event(b"k", 6)),
            ]
        ],
        break_after=[True],
    )
    second = WatchScript(
        streams=[
            [
                created(6),
                # A replayed revision must not reach the caller twice.
                events_response(put_event(b"k", 6)),
                events_response(put_event(b"k", 7), put_event(b"k2", 7)),
                events_response(put_event(b"k", 8)),
            ]
        ]
    )
    with (
        FakeServer(watch=first) as a,
        FakeServer(watch=second) as b,
        Client([a.address, b.address], retry=NO_BACKOFF) as client,
        client.watch("k", prefix=True, start_revision=5) as watch,
    ):
        events = [next(watch) for _ in range(5)]
    seen = [(event.kv.key, event.kv.mod_revision) for event in events]
    assert seen == [(b"k", 5), (b"k", 6), (b"k", 7), (b"k2", 7), (b"k", 8)]
    assert first.creates[0].start_revision == 5
    assert second.creates[0].start_revision == 7
    assert second.creates[0].range_end == b"l"


def test_a_watch_dropped_for_reading_slowly_watches_again_from_the_next_revision() -> None:
    fell_behind = watch_pb2.WatchResponse(canceled=True, cancel_reason="watcher fell behind")
    script = WatchScript(
        streams=[
            [created(4), events_response(put_event(b"k", 5)), fell_behind],
            [created(8), events_response(put_event(b"k", 6))],
        ]
    )
    with (
        FakeServer(watch=script) as server,
        Client([server.address], retry=NO_BACKOFF) as client,
        client.watch("k", start_revision=5) as watch,
    ):
        revisions = [next(watch).kv.mod_revision for _ in range(2)]
    assert revisions == [5, 6]
    assert [create.start_revision for create in script.creates] == [5, 6]


def test_a_watch_from_the_next_write_resumes_after_the_created_revision() -> None:
    script = WatchScript(
        streams=[[created(10)], [created(12), events_response(put_event(b"k", 11))]],
        break_after=[True, False],
    )
    with (
        FakeServer(watch=script) as server,
        Client([server.address], retry=NO_BACKOFF) as client,
        client.watch("k") as watch,
    ):
        event = next(watch)
    assert event.kv.mod_revision == 11
    assert [create.start_revision for create in script.creates] == [0, 11]


def test_a_compacted_start_revision_raises_a_clear_error() -> None:
    canceled = watch_pb2.WatchResponse(watch_id=1, canceled=True, compact_revision=40)
    script = WatchScript(streams=[[created(50), canceled]])
    with (
        FakeServer(watch=script) as server,
        Client([server.address]) as client,
        pytest.raises(errors.WatchCompacted) as raised,
    ):
        next(client.watch("k", start_revision=3))
    assert raised.value.compact_revision == 40
    assert raised.value.code == grpc.StatusCode.OUT_OF_RANGE
    assert "compacted" in raised.value.message


def test_keep_alive_refreshes_until_closed(server: FakeServer) -> None:
    with Client([server.address]) as client:
        lease_id = client.lease_grant(60).id
        with client.keep_alive(lease_id) as keeper:
            assert keeper.wait_refreshed(WAIT_S)
            assert keeper.ttl_s == 60
        assert not keeper.alive
        assert keeper.error is None
    assert server.lease.keepalive_requests[0] == lease_id


def test_keep_alive_reports_a_lease_that_is_gone(server: FakeServer) -> None:
    with Client([server.address]) as client:
        keeper = client.keep_alive(999)
        assert keeper.join(WAIT_S)
        assert isinstance(keeper.error, errors.NotFound)
        keeper.close()


def test_snapshot_is_saved_only_when_its_checksum_matches(tmp_path) -> None:
    chunks = [b"alpha-", b"beta-", b"gamma"]
    with FakeServer(snapshot_chunks=chunks) as server, Client([server.address]) as client:
        info = client.snapshot_save(str(tmp_path / "backup.snap"))
    data = (tmp_path / "backup.snap").read_bytes()
    assert data == b"alpha-beta-gamma"
    assert info.size_bytes == len(data)
    assert info.sha256_hex == hashlib.sha256(data).hexdigest()

    with (
        FakeServer(snapshot_chunks=chunks, corrupt_snapshot=True) as server,
        Client([server.address]) as client,
        pytest.raises(errors.SnapshotCorrupt),
    ):
        client.snapshot_save(str(tmp_path / "bad.snap"))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["backup.snap"]


def test_txn_builders_reach_the_server(server: FakeServer) -> None:
    from triumvir_client import builders

    with Client([server.address]) as client:
        first = client.txn(
            [builders.compare_version("owner", "=", 0)],
            [builders.op_put("owner", "alice")],
            [builders.op_get("owner")],
        )
        second = client.txn(
            [builders.compare_version("owner", "=", 0)],
            [builders.op_put("owner", "bob")],
            [builders.op_get("owner")],
        )
    assert first.succeeded and not second.succeeded
    assert second.responses[0].response_range.kvs[0].value == b"alice"
    request = server.calls_named("Txn")[0]
    assert isinstance(request, kv_pb2.TxnRequest)
    assert request.tag.sequence == 1
