"""When the Paxos core asks its driver for a state-machine snapshot, and asks again."""

from __future__ import annotations

import random

from triumvir.consensus.paxos.config import PaxosConfig
from triumvir.consensus.paxos.core import PaxosCore
from triumvir.consensus.raft.types import ConfState, Snapshot


def _single(threshold: int) -> PaxosCore:
    core = PaxosCore(
        PaxosConfig(node_id=1, snapshot_threshold_entries=threshold),
        random.Random(1),
        conf=ConfState(voters=frozenset({1})),
    )
    core.campaign()
    _drain(core)
    return core


def _drain(core: PaxosCore) -> list[bool]:
    asks = []
    while core.has_ready():
        ready = core.ready()
        asks.append(ready.snapshot_wanted)
        core.advance(ready)
    return asks


def _fill(core: PaxosCore, count: int) -> list[bool]:
    asks = []
    for i in range(count):
        core.propose(b"%d" % i)
        asks += _drain(core)
    return asks


def test_asked_once_until_the_driver_compacts_or_gives_up() -> None:
    core = _single(threshold=5)
    assert _fill(core, 5).count(True) == 1
    assert True not in _fill(core, 3)  # asked already; waits for the driver
    core.forget_snapshot_request()  # the driver could not write it
    assert _fill(core, 1).count(True) == 1


def test_not_asked_again_when_a_snapshot_covers_the_log() -> None:
    core = _single(threshold=5)
    assert _fill(core, 5).count(True) == 1
    applied = core.applied_index
    core.compact(Snapshot(core.snapshot_meta_for(applied), b"state"))
    core.forget_snapshot_request()
    assert True not in _fill(core, 1)
