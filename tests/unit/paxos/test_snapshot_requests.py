"""When the Paxos core asks its driver for a state-machine snapshot, and asks again."""

from __future__ import annotations

import random

from tests.unit.snapshot_asks import propose_and_drain, snapshot_asks
from triumvir.consensus.paxos.config import PaxosConfig
from triumvir.consensus.paxos.core import PaxosCore
from triumvir.consensus.raft.types import ConfState, Snapshot


def _leading_alone(threshold: int) -> PaxosCore:
    core = PaxosCore(
        PaxosConfig(node_id=1, snapshot_threshold_entries=threshold),
        random.Random(1),
        conf=ConfState(voters=frozenset({1})),
    )
    core.campaign()
    snapshot_asks(core)
    return core


def test_asked_once_until_the_driver_compacts_or_gives_up() -> None:
    core = _leading_alone(threshold=5)
    assert propose_and_drain(core, 5).count(True) == 1
    assert True not in propose_and_drain(core, 3)  # asked already; waits for the driver
    core.forget_snapshot_request()  # the driver could not write it
    assert propose_and_drain(core, 1).count(True) == 1


def test_not_asked_again_when_a_snapshot_covers_the_log() -> None:
    core = _leading_alone(threshold=5)
    assert propose_and_drain(core, 5).count(True) == 1
    core.compact(Snapshot(core.snapshot_meta_for(core.applied_index), b"state"))
    core.forget_snapshot_request()
    assert True not in propose_and_drain(core, 1)
