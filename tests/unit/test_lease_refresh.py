"""A replica that takes the lead gives every lease its whole TTL again before it expires
any, unless there are too many leases to rewrite in one apply: they then keep the expiry
times they had. One replica, in this process, restarted on its own data directory."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.cluster import free_ports
from triumvir.consensus import replica as replica_module
from triumvir.consensus.config import ReplicaConfig
from triumvir.consensus.kv import machine as machine_module
from triumvir.consensus.raft.core import Role
from triumvir.consensus.replica import Replica
from triumvir.v1.lease_pb2 import LeaseGrantRequest, LeaseTimeToLiveRequest

TTL_S = 60
LEADERLESS_S = 2.2  # how long no replica leads between the grant and the new leader


async def _lead(config: ReplicaConfig) -> Replica:
    replica = Replica(config)
    await replica.start()
    async with asyncio.timeout(10):
        while replica.core.role is not Role.LEADER:
            await asyncio.sleep(0.01)
    return replica


async def _ttl_left_under_a_new_leader(data_dir: Path) -> int:
    address = f"127.0.0.1:{free_ports(1)[0]}"
    config = ReplicaConfig(node_id=1, listen=address, data_dir=str(data_dir), peers={1: address})
    first = await _lead(config)
    try:
        lease = (await first.lease_grant(LeaseGrantRequest(ttl=TTL_S))).id
    finally:
        await first.stop()
    await asyncio.sleep(LEADERLESS_S)
    second = await _lead(config)
    try:
        await asyncio.sleep(5 * replica_module.LEASE_CHECK_S)  # it has looked at its leases
        return (await second.lease_time_to_live(LeaseTimeToLiveRequest(id=lease))).ttl
    finally:
        await second.stop()


def test_a_new_leader_gives_every_lease_its_whole_ttl_again(tmp_path: Path) -> None:
    assert asyncio.run(_ttl_left_under_a_new_leader(tmp_path)) >= TTL_S - 1


def test_too_many_leases_keep_the_expiry_times_they_had(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(machine_module, "MAX_LEASES_PER_REFRESH", 0)
    assert asyncio.run(_ttl_left_under_a_new_leader(tmp_path)) <= TTL_S - LEADERLESS_S
