"""A linearizable read whose leadership round never completes is refused after a fixed
time, whatever the length of a tick."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.driver_harness import IndexMachine, leader_of_three
from triumvir.common.errors import Unavailable
from triumvir.consensus import driver as driver_module
from triumvir.consensus.driver import Driver
from triumvir.consensus.storage.memory import MemoryStorage

READ_TIMEOUT_S = 0.3


@pytest.mark.parametrize("tick_s", [0.01, 0.05])
def test_an_unconfirmed_read_is_refused_after_the_read_timeout(
    tick_s: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(driver_module, "READ_TIMEOUT_S", READ_TIMEOUT_S)

    async def main() -> float:
        driver = Driver(
            core=leader_of_three(),  # its peers fall silent
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
