"""Pieces for driver tests: a state machine that answers each entry with its log index and
keeps no state, so a test sees only what the driver does, and a leader whose peers speak
only when the test makes them."""

from __future__ import annotations

import random
from collections.abc import Callable

from triumvir.consensus.raft.config import RaftConfig
from triumvir.consensus.raft.core import RaftCore, Role
from triumvir.consensus.raft.types import ConfState, Message, MessageType


class IndexMachine:
    def apply(self, index: int, data: bytes) -> int:
        return index

    def skip(self, index: int) -> None:
        pass

    def snapshot_later(self) -> Callable[[], bytes]:
        return lambda: b""

    def restore(self, data: bytes) -> None:
        pass


def leader_of_three() -> RaftCore:
    """Leader of a group of three whose peers voted for it once and since say only what the
    test delivers for them."""
    config = RaftConfig(node_id=1, election_ticks=10_000, pre_vote=False, check_quorum=False)
    core = RaftCore(config, random.Random(1), conf=ConfState(voters=frozenset({1, 2, 3})))
    core.campaign()
    core.step(Message(MessageType.VOTE_RESP, src=2, dst=1, term=core.term))
    assert core.role is Role.LEADER
    return core
