"""ReadIndex: linearizable reads confirmed by a heartbeat quorum instead of a log entry."""

from __future__ import annotations

import pytest

from tests.unit.raft.harness import Network
from triumvir.consensus.raft.core import Role
from triumvir.consensus.raft.errors import NotLeader
from triumvir.consensus.raft.types import Message, MessageType, ReadState


def _heartbeats(messages: list[Message]) -> list[Message]:
    return [m for m in messages if m.type is MessageType.HEARTBEAT]


def test_read_index_waits_for_heartbeat_quorum() -> None:
    net = Network((1, 2, 3, 4, 5))
    net.elect(1)
    leader = net.core(1)
    commit = leader.commit_index
    leader.read_index(b"a")
    leader.read_index(b"b")  # queued together: one round serves both
    rounds = _heartbeats(net.process_ready(1))
    assert len(rounds) == 4 and len({m.context for m in rounds}) == 1
    assert rounds[0].context  # tagged with the round
    net.deliver(keep=lambda m: m.dst == 2)
    net.stabilize(keep=lambda m: m.src == 2)
    assert net.nodes[1].reads == []  # the leader and one follower are not 3 of 5
    net.queue = [m for m in rounds if m.dst == 3]
    net.stabilize()
    assert net.nodes[1].reads == [ReadState(b"a", commit), ReadState(b"b", commit)]


def test_read_index_confirmed_by_later_round() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    leader = net.core(1)
    leader.read_index(b"first")
    net.process_ready(1)
    net.queue = []  # the first round is lost entirely
    leader.read_index(b"second")
    net.stabilize()
    assert [r.context for r in net.nodes[1].reads] == [b"first", b"second"]


def test_read_index_retried_by_periodic_heartbeat() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.core(1).read_index(b"r")
    net.process_ready(1)
    net.queue = []
    net.tick_and_stabilize(1)
    assert [r.context for r in net.nodes[1].reads] == [b"r"]


def test_read_index_deferred_until_current_term_commit() -> None:
    net = Network((1, 2, 3))
    net.core(2).campaign()
    net.stabilize(keep=lambda m: m.type is not MessageType.APPEND)
    leader = net.core(2)
    assert leader.role is Role.LEADER
    noop = leader.last_index
    assert leader.commit_index < noop
    leader.read_index(b"r")
    sent = net.process_ready(2)
    assert not any(m.context for m in _heartbeats(sent))  # no round before the no-op commits
    net.queue = []
    net.tick_and_stabilize(2)
    assert net.nodes[2].reads == [ReadState(b"r", noop)]


def test_read_index_from_follower() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    _, index = net.propose(1, b"x")
    follower = net.core(3)
    follower.read_index(b"f")
    asked = net.process_ready(3)
    assert [(m.type, m.dst) for m in asked] == [(MessageType.READ_INDEX, 1)]
    net.stabilize()
    assert net.nodes[3].reads == [ReadState(b"f", index)]
    answers = [m for m in net.delivered if m.type is MessageType.READ_INDEX_RESP]
    assert len(answers) == 1 and answers[0].dst == 3


def test_read_index_without_known_leader_raises_not_leader() -> None:
    net = Network((1, 2, 3))
    with pytest.raises(NotLeader):
        net.core(2).read_index(b"r")


def test_read_index_single_voter_answers_immediately() -> None:
    net = Network((1,))
    net.elect(1)
    leader = net.core(1)
    leader.read_index(b"solo")
    ready = leader.ready()
    assert ready.reads == (ReadState(b"solo", leader.commit_index),)
    assert ready.messages == ()


def test_read_index_dropped_when_leadership_lost() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.core(1).read_index(b"lost")
    net.process_ready(1)
    net.queue = []
    net.core(1).step(Message(MessageType.HEARTBEAT, 2, 1, net.core(1).term + 1))
    assert net.core(1).role is Role.FOLLOWER
    net.stabilize()
    assert net.nodes[1].reads == []


def test_read_index_ignores_learner_acknowledgements() -> None:
    net = Network((1, 2, 3), learners=(4,))
    net.elect(1)
    net.core(1).read_index(b"r")
    net.process_ready(1)
    net.stabilize(keep=lambda m: 4 in (m.src, m.dst))
    assert net.nodes[1].reads == []
    net.tick_and_stabilize(1)
    assert [r.context for r in net.nodes[1].reads] == [b"r"]
