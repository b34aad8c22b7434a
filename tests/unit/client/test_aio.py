"""The asyncio client keeps the blocking client's guarantees."""

from __future__ import annotations

import asyncio

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
from triumvir.v1 import common_pb2, watch_pb2
from triumvir_client import AsyncClient, errors


def test_a_leader_hint_is_followed_in_one_hop() -> None:
    async def scenario(follower: str) -> int:
        async with AsyncClient([follower], retry=NO_BACKOFF) as client:
            await client.put("k", "v")
            response = await client.put("k", "v2")
            return response.header.member_id

    with FakeServer(Member(member_id=1)) as leader, FakeServer(Member(member_id=2)) as follower:
        follower.member.not_leader = (1, leader.address)
        assert asyncio.run(scenario(follower.address)) == 1
        assert len(follower.calls_named("Put")) == 1
        assert len(leader.calls_named("Put")) == 2


def test_a_dropped_reply_is_retried_with_the_same_tag() -> None:
    async def scenario(address: str) -> None:
        async with AsyncClient([address], client_id=11, retry=NO_BACKOFF) as client:
            await client.delete("k")

    with FakeServer() as server:
        server.member.replies_to_drop = 1
        asyncio.run(scenario(server.address))
        deletes = server.calls_named("DeleteRange")
    assert len(deletes) == 2
    assert deletes[0].tag == deletes[1].tag == common_pb2.RequestTag(client_id=11, sequence=1)
    assert server.member.applied == 1


def test_outcome_unknown_after_the_attempts_run_out() -> None:
    async def scenario(address: str) -> None:
        async with AsyncClient([address], retry=NO_BACKOFF) as client:
            await client.lease_grant(10)

    with FakeServer() as server:
        server.member.always_time_out = True
        with pytest.raises(errors.OutcomeUnknown):
            asyncio.run(scenario(server.address))
        assert len(server.calls_named("Grant")) == NO_BACKOFF.attempts_max


def test_the_watch_resumes_after_a_broken_stream() -> None:
    first = WatchScript(
        streams=[[created(1), events_response(put_event(b"k", 2))]], break_after=[True]
    )
    second = WatchScript(streams=[[created(2), events_response(put_event(b"k", 3))]])

    async def scenario(addresses: list[str]) -> list[int]:
        async with (
            AsyncClient(addresses, retry=NO_BACKOFF) as client,
            client.watch("k", start_revision=2) as watch,
        ):
            return [(await anext(watch)).kv.mod_revision for _ in range(2)]

    with FakeServer(watch=first) as a, FakeServer(watch=second) as b:
        assert asyncio.run(scenario([a.address, b.address])) == [2, 3]
    assert second.creates[0].start_revision == 3


def test_a_watch_dropped_for_reading_slowly_watches_again() -> None:
    fell_behind = watch_pb2.WatchResponse(canceled=True, cancel_reason="watcher fell behind")
    script = WatchScript(
        streams=[
            [created(1), events_response(put_event(b"k", 2)), fell_behind],
            [created(5), events_response(put_event(b"k", 3))],
        ]
    )

    async def scenario(address: str) -> list[int]:
        async with (
            AsyncClient([address], retry=NO_BACKOFF) as client,
            client.watch("k", start_revision=2) as watch,
        ):
            return [(await anext(watch)).kv.mod_revision for _ in range(2)]

    with FakeServer(watch=script) as server:
        assert asyncio.run(scenario(server.address)) == [2, 3]
    assert [create.start_revision for create in script.creates] == [2, 3]


def test_keep_alive_task_refreshes_and_reports_a_missing_lease() -> None:
    async def scenario(address: str) -> tuple[int | None, bool, errors.ClientError | None]:
        async with AsyncClient([address]) as client:
            lease_id = (await client.lease_grant(45)).id
            async with client.keep_alive(lease_id) as keeper:
                assert await keeper.wait_refreshed(WAIT_S)
                ttl = keeper.ttl_s
            missing = client.keep_alive(4242)
            ended = await missing.join(WAIT_S)
            await missing.close()
            return ttl, ended, missing.error

    with FakeServer() as server:
        ttl, ended, error = asyncio.run(scenario(server.address))
    assert ttl == 45
    assert ended
    assert isinstance(error, errors.NotFound)
