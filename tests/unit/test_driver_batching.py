"""The driver gathers concurrent writes into shared batches (one fsync each), keeps doing so
while a load lasts even when writes reach it one at a time, ends a window as soon as the
writers it waits for are in, and never holds a lone writer or the followers' answers."""

from __future__ import annotations

import asyncio
import random

import pytest

from tests.unit.driver_harness import IndexMachine, leader_of_three
from triumvir.consensus import driver as driver_module
from triumvir.consensus.driver import BATCH_WINDOW_WAITERS_MIN, Driver
from triumvir.consensus.raft.config import RaftConfig
from triumvir.consensus.raft.core import RaftCore
from triumvir.consensus.raft.types import ConfState, Message, MessageType
from triumvir.consensus.storage.memory import MemoryStorage

WINDOW_S = 0.2  # long, so that a test's few milliseconds of scheduling never decide it


async def _single_member_leader() -> tuple[Driver, MemoryStorage]:
    core = RaftCore(RaftConfig(node_id=1), random.Random(1), conf=ConfState(voters=frozenset({1})))
    core.campaign()  # a group of one elects itself at once; no tick is needed
    storage = MemoryStorage()
    driver = Driver(
        core=core,
        storage=storage,
        machine=IndexMachine(),
        send=lambda message: None,
        tick_s=60.0,  # no tick may wake the driver during a test
        address_of=lambda member: "",
    )
    driver.start()
    await driver.propose(b"first")
    return driver, storage


async def _one_at_a_time(driver: Driver, count: int, gap_s: float) -> None:
    writes = []
    for _ in range(count):
        writes.append(asyncio.ensure_future(driver.propose(b"w")))
        await asyncio.sleep(gap_s)
    await asyncio.gather(*writes)


def _crowd(driver: Driver) -> asyncio.Future[list[object]]:
    """As many writes at once as make the driver gather."""
    return asyncio.gather(*(driver.propose(b"b") for _ in range(BATCH_WINDOW_WAITERS_MIN)))


@pytest.fixture
def long_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver_module, "BATCH_WINDOW_S", WINDOW_S)
    monkeypatch.setattr(driver_module, "BATCH_QUIET_GAP_S", WINDOW_S / 4)


@pytest.mark.usefixtures("long_window")
def test_writes_arriving_one_at_a_time_after_a_burst_share_one_fsync() -> None:
    async def main() -> int:
        driver, storage = await _single_member_leader()
        try:
            await _crowd(driver)
            before = storage.sync_count
            await _one_at_a_time(driver, count=4, gap_s=0.005)
            return storage.sync_count - before
        finally:
            await driver.stop()

    assert asyncio.run(main()) == 1


@pytest.mark.usefixtures("long_window")
def test_a_lone_writer_is_not_held_for_a_window() -> None:
    async def main() -> tuple[float, int]:
        driver, storage = await _single_member_leader()
        try:
            loop = asyncio.get_running_loop()
            before, started = storage.sync_count, loop.time()
            await _one_at_a_time(driver, count=3, gap_s=0.0)
            return loop.time() - started, storage.sync_count - before
        finally:
            await driver.stop()

    elapsed, syncs = asyncio.run(main())
    assert elapsed < WINDOW_S
    assert syncs == 3


@pytest.mark.usefixtures("long_window")
def test_gathering_stops_once_the_load_has_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver_module, "BATCH_MODE_LINGER_S", 0.05)

    async def main() -> float:
        driver, _ = await _single_member_leader()
        try:
            await _crowd(driver)
            await asyncio.sleep(0.1)
            loop = asyncio.get_running_loop()
            started = loop.time()
            await driver.propose(b"lone")
            return loop.time() - started
        finally:
            await driver.stop()

    assert asyncio.run(main()) < WINDOW_S


@pytest.mark.usefixtures("long_window")
def test_a_window_ends_once_no_more_writes_come(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every writer of a crowd waits for its answer, so nothing more can arrive: the window
    # closes once they are all in instead of holding the batch for all of it.
    monkeypatch.setattr(driver_module, "BATCH_MODE_LINGER_S", 10 * WINDOW_S)

    async def main() -> float:
        driver, _ = await _single_member_leader()
        try:
            await _crowd(driver)  # from here on the driver gathers
            loop = asyncio.get_running_loop()
            started = loop.time()
            await _crowd(driver)
            return loop.time() - started
        finally:
            await driver.stop()

    assert asyncio.run(main()) < WINDOW_S / 2


@pytest.mark.usefixtures("long_window")
def test_a_window_ends_once_every_answered_writer_has_written_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Writers who write again as soon as they have their answers are all back when as many
    # writes have come as were answered: nothing more is worth a quiet gap's wait.
    monkeypatch.setattr(driver_module, "BATCH_QUIET_GAP_S", WINDOW_S)
    monkeypatch.setattr(driver_module, "BATCH_MODE_LINGER_S", 10 * WINDOW_S)

    async def main() -> tuple[float, int]:
        driver, storage = await _single_member_leader()
        try:
            # A crowd answered, from here on the driver gathers; its writers come back
            # one by one while the window is open.
            await _crowd(driver)
            loop = asyncio.get_running_loop()
            before, started = storage.sync_count, loop.time()
            await _one_at_a_time(driver, count=BATCH_WINDOW_WAITERS_MIN, gap_s=0.005)
            return loop.time() - started, storage.sync_count - before
        finally:
            await driver.stop()

    elapsed, syncs = asyncio.run(main())
    assert elapsed < WINDOW_S / 2
    assert syncs == 1  # and they still shared one batch


@pytest.mark.usefixtures("long_window")
def test_writers_who_do_not_write_again_are_forgotten_after_a_quiet_gap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A crowd answered and gone: the first write after it waits out one quiet gap for them,
    # and the writes after that no longer wait for anyone.
    monkeypatch.setattr(driver_module, "BATCH_QUIET_GAP_S", WINDOW_S / 2)
    monkeypatch.setattr(driver_module, "BATCH_MODE_LINGER_S", 10 * WINDOW_S)

    async def main() -> float:
        driver, _ = await _single_member_leader()
        try:
            await _crowd(driver)
            loop = asyncio.get_running_loop()
            started = loop.time()
            for _ in range(3):
                await driver.propose(b"lone")
            return loop.time() - started
        finally:
            await driver.stop()

    assert asyncio.run(main()) < WINDOW_S


def _take_appends(sent: list[Message]) -> list[Message]:
    """Every APPEND sent so far that carries entries; `sent` is emptied."""
    appends = [m for m in sent if m.type is MessageType.APPEND and m.entries]
    sent.clear()
    return appends


async def _appends(sent: list[Message]) -> list[Message]:
    """Wait until the leader has sent entries, and take them."""
    async with asyncio.timeout(5):
        while not (appends := _take_appends(sent)):
            await asyncio.sleep(0.001)
    return appends


def _accept(driver: Driver, appends: list[Message]) -> None:
    """Answer for the followers: every entry of `appends` is stored."""
    for append in appends:
        last = append.entries[-1].index
        driver.deliver(
            Message(MessageType.APPEND_RESP, src=append.dst, dst=1, term=append.term, index=last)
        )


@pytest.mark.usefixtures("long_window")
def test_followers_answers_alone_are_not_held_for_a_window(monkeypatch: pytest.MonkeyPatch) -> None:
    # The answers commit writes whose callers wait; holding them back only delays the next
    # writes, which the window is there to gather.
    monkeypatch.setattr(driver_module, "BATCH_QUIET_GAP_S", WINDOW_S)
    monkeypatch.setattr(driver_module, "BATCH_MODE_LINGER_S", 10 * WINDOW_S)

    async def main() -> float:
        sent: list[Message] = []
        driver = Driver(
            core=leader_of_three(),
            storage=MemoryStorage(),
            machine=IndexMachine(),
            send=sent.append,
            tick_s=60.0,
            address_of=lambda member: "",
        )
        driver.start()
        loop = asyncio.get_running_loop()
        try:
            first = _crowd(driver)  # puts the driver in its gathering mode
            async with asyncio.timeout(5):
                while not first.done():
                    _accept(driver, _take_appends(sent))
                    await asyncio.sleep(0.001)
            # Two batches in flight; once the first is answered its writers are away, and
            # the second one's answers come while no new write waits.
            second = _crowd(driver)
            second_batch = await _appends(sent)
            third = _crowd(driver)
            third_batch = await _appends(sent)
            _accept(driver, second_batch)
            await second
            answered = loop.time()
            _accept(driver, third_batch)
            await third
            return loop.time() - answered
        finally:
            await driver.stop()

    assert asyncio.run(main()) < WINDOW_S / 2
