"""When either engine's core asks its driver for a state-machine snapshot, and asks again."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from tests.unit.snapshot_asks import propose_and_drain
from triumvir.consensus.paxos.config import PaxosConfig
from triumvir.consensus.paxos.core import PaxosCore
from triumvir.consensus.raft.config import RaftConfig
from triumvir.consensus.raft.core import RaftCore
from triumvir.consensus.raft.types import ConfState, Snapshot


def _raft(threshold: int) -> Any:
    config = RaftConfig(node_id=1, snapshot_threshold_entries=threshold)
    return RaftCore(config, random.Random(1), conf=ConfState(voters=frozenset({1})))


def _paxos(threshold: int) -> Any:
    config = PaxosConfig(node_id=1, snapshot_threshold_entries=threshold)
    return PaxosCore(config, random.Random(1), conf=ConfState(voters=frozenset({1})))


@pytest.fixture(params=[_raft, _paxos], ids=["raft", "paxos"])
def core(request: pytest.FixtureRequest) -> Any:
    make: Callable[[int], Any] = request.param
    leading_alone = make(5)
    leading_alone.campaign()
    return leading_alone


def test_asked_once_until_the_driver_compacts_or_gives_up(core: Any) -> None:
    assert propose_and_drain(core, 5).count(True) == 1
    assert True not in propose_and_drain(core, 3)  # asked already; waits for the driver
    core.forget_snapshot_request()  # the driver could not write it
    assert propose_and_drain(core, 1).count(True) == 1


def test_not_asked_again_when_a_snapshot_covers_the_log(core: Any) -> None:
    assert propose_and_drain(core, 5).count(True) == 1
    # The driver was slow: a snapshot at the applied index is compacted before it gives up.
    core.compact(Snapshot(core.snapshot_meta_for(core.applied_index), b"state"))
    core.forget_snapshot_request()
    assert True not in propose_and_drain(core, 1)
