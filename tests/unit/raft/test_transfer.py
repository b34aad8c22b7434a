"""Leadership transfer: catch the target up, then TimeoutNow; abort after a timeout."""

from __future__ import annotations

import pytest

from tests.unit.raft.harness import Network
from triumvir.consensus.raft.core import Role
from triumvir.consensus.raft.errors import NotLeader, ProposalDropped, TransferRejected
from triumvir.consensus.raft.types import MessageType


def test_leadership_transfer_catches_up_then_timeout_now() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    term = net.core(1).term
    net.isolate(3)
    for i in range(5):
        net.core(1).propose(b"%d" % i)
    net.stabilize()
    net.heal()
    leader = net.core(1)
    leader.transfer_leader(3)
    with pytest.raises(ProposalDropped):
        leader.propose(b"refused while transferring")
    sent = net.process_ready(1)
    assert not any(m.type is MessageType.TIMEOUT_NOW for m in sent)  # 3 is behind
    net.stabilize()
    timeout_now = [m for m in net.delivered if m.type is MessageType.TIMEOUT_NOW]
    assert len(timeout_now) == 1 and timeout_now[0].dst == 3
    # It went out only once the target held the leader's whole log.
    last_ack = max(
        (m for m in net.delivered if m.type is MessageType.APPEND_RESP and m.src == 3),
        key=lambda m: net.delivered.index(m),
    )
    assert last_ack.index == leader.last_index - 1  # before the new leader's no-op
    assert net.leader() == 3 and net.core(3).term == term + 1
    assert net.core(1).role is Role.FOLLOWER
    assert net.nodes[3].data[-5:] == [b"0", b"1", b"2", b"3", b"4"]


def test_leadership_transfer_overrides_leader_lease() -> None:
    net = Network((1, 2, 3))  # check_quorum: followers are inside their lease
    net.elect(1)
    before = len(net.delivered)
    net.core(1).transfer_leader(2)
    net.stabilize()
    assert net.leader() == 2
    votes = [m for m in net.delivered[before:] if m.type is MessageType.VOTE]
    assert votes and all(m.context == b"transfer" for m in votes)
    assert not any(m.type is MessageType.PRE_VOTE for m in net.delivered[before:])


def test_leadership_transfer_aborts_after_election_timeout() -> None:
    net = Network((1, 2, 3), election_ticks=10)
    net.elect(1)
    net.isolate(3)
    net.core(1).propose(b"x")
    net.stabilize()
    net.core(1).transfer_leader(3)
    with pytest.raises(ProposalDropped):
        net.core(1).propose(b"y")
    for _ in range(9):
        net.tick([1, 2])
        net.stabilize()
    with pytest.raises(ProposalDropped):
        net.core(1).propose(b"y")
    net.tick([1, 2])
    net.stabilize()
    net.core(1).propose(b"y")  # the transfer was abandoned
    assert net.leader() == 1


def test_transfer_to_self_learner_or_stranger_is_refused_sensibly() -> None:
    net = Network((1, 2, 3), learners=(4,))
    net.elect(1)
    leader = net.core(1)
    leader.transfer_leader(1)  # already the leader: nothing to do
    leader.propose(b"still accepted")
    with pytest.raises(TransferRejected):
        leader.transfer_leader(4)
    with pytest.raises(TransferRejected):
        leader.transfer_leader(9)
    with pytest.raises(NotLeader) as not_leader:
        net.core(2).transfer_leader(3)
    assert not_leader.value.leader_id == 1
