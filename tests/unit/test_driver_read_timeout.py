"""A linearizable read whose leadership round never completes is refused after a fixed
time, whatever the length of a tick."""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.unit.driver_harness import IndexMachine
from triumvir.common.errors import Unavailable
from triumvir.consensus import driver as driver_module
from triumvir.consensus.driver import Driver
from triumvir.consensus.raft.config import RaftConfig
from triumvir.consensus.raft.core import RaftCore, Role
from triumvir.consensus.raft.types import ConfState, Message, MessageType
from triumvir.consensus.storage.memory import MemoryStorage

READ_TIMEOUT_S = 0.3


def _isolated_leader() -> RaftCore:
    """Leader of a group of three whose peers voted for it once and then fell silent."""
    config = RaftConfig(node_id=1, election_ticks=10_000, pre_vote=False, check_quorum=False)
    core = RaftCore(config, random.Random(1), conf=ConfState(voters=frozenset({1, 2, 3})))
    core.campaign()
    core.step(Message(MessageType.VOTE_RESP, src=2, dst=1, term=core.term))
    assert core.role is Role.LEADER
    return core


@pytest.mark.parametrize("tick_s", [0.01, 0.05])
def test_an_unconfirmed_read_is_refused_after_the_read_timeout(
    tick_s: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_module, "READ_TIMEOUT_S", READ_TIMEOUT_S)

    async def main() -> float:
        driver = Driver(
            core=_isolated_leader(),
            storage=MemoryStorage(),
            machine=IndexMachine(),
            send=lambda message: None,  # nothing reaches the peers
            tick_s=tick_s,
            address_of=lambda member: "",
        )
        driver.start()
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            with pytest.raises(Unavailable, match="could not confirm leadership"):
                async with asyncio.timeout(20 * READ_TIMEOUT_S):
                    await driver.read_barrier()
            return loop.time() - started
        finally:
            await driver.stop()

    assert asyncio.run(main()) >= READ_TIMEOUT_S
