"""What a consensus core (Raft or Paxos, same contract) asks its driver about snapshots."""

from __future__ import annotations

from typing import Any


def snapshot_asks(core: Any) -> list[bool]:
    """Hand every pending Ready to a driver that does nothing; which ones asked for a snapshot."""
    asks = []
    while core.has_ready():
        ready = core.ready()
        asks.append(ready.snapshot_wanted)
        core.advance(ready)
    return asks


def propose_and_drain(core: Any, count: int) -> list[bool]:
    """Propose `count` values one at a time, handing over each one's Readies; the asks."""
    asks = []
    for i in range(count):
        core.propose(b"%d" % i)
        asks += snapshot_asks(core)
    return asks
