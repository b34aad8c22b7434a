"""Linearizable reads: the leader answers only after a quorum confirmed its ballot, at the
highest slot it has proposed; followers refuse with a hint to the leader."""

from __future__ import annotations

import pytest

from tests.unit.paxos.harness import Group
from triumvir.consensus.paxos.types import PaxosMessageType as T
from triumvir.consensus.raft.core import Role
from triumvir.consensus.raft.errors import NotLeader
from triumvir.consensus.raft.types import ReadState


def test_read_waits_for_a_quorum_to_confirm_the_ballot() -> None:
    group = Group()
    group.elect(1)
    group.propose(1, b"a")
    leader = group.core(1)
    leader.read_index(b"r1")
    group.stabilize(keep=lambda m: m.type is not T.READ_CONFIRM_RESP)
    assert group.nodes[1].reads == []  # no confirmation, no answer
    leader.read_index(b"r2")
    group.stabilize()
    # the confirmation of the later round also vouches for the earlier one
    index = leader.last_index
    assert group.nodes[1].reads == [ReadState(b"r1", index), ReadState(b"r2", index)]


def test_read_index_is_the_highest_slot_proposed_even_before_it_is_chosen() -> None:
    group = Group()
    group.elect(1)
    _, slot = group.core(1).propose(b"pending")
    group.stabilize(keep=lambda m: m.type is not T.ACCEPTED)
    assert group.core(1).commit_index < slot
    group.core(1).read_index(b"r")
    group.stabilize()
    assert group.nodes[1].reads == [ReadState(b"r", slot)]


def test_reads_arriving_together_share_one_confirmation_round() -> None:
    group = Group()
    group.elect(1)
    for n in range(3):
        group.core(1).read_index(b"r%d" % n)
    group.stabilize()
    confirms = [m for m in group.delivered if m.type is T.READ_CONFIRM]
    assert len(confirms) == 2  # one per follower
    assert [r.context for r in group.nodes[1].reads] == [b"r0", b"r1", b"r2"]


def test_follower_read_is_refused_with_the_leader_hint() -> None:
    group = Group()
    group.elect(1)
    group.tick_and_stabilize(1)
    with pytest.raises(NotLeader) as refused:
        group.core(2).read_index(b"r")
    assert refused.value.leader_id == 1


def test_deposed_leader_cannot_confirm_a_read() -> None:
    group = Group()
    group.elect(1)
    group.isolate(1)
    group.elect(2)
    group.core(1).read_index(b"stale")
    group.process_ready(1)
    group.heal()
    group.stabilize()
    assert group.nodes[1].reads == []
    assert group.core(1).role is Role.FOLLOWER


def test_single_voter_answers_reads_at_once() -> None:
    group = Group((1,))
    group.elect(1)
    group.core(1).read_index(b"r")
    group.stabilize()
    assert group.nodes[1].reads == [ReadState(b"r", group.core(1).last_index)]
