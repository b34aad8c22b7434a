"""Membership: one change at a time, learners first, effective once committed."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.unit.raft.harness import Network
from triumvir.consensus.raft.core import Role
from triumvir.consensus.raft.errors import ConfChangeRejected, NotLeader
from triumvir.consensus.raft.membership import apply_conf_change
from triumvir.consensus.raft.types import ConfChange, ConfChangeKind, Message, MessageType


def _change(kind: ConfChangeKind, node: int, context: bytes = b"") -> ConfChange:
    return ConfChange(kind, node, context)


def test_learner_does_not_vote_or_count_toward_quorum() -> None:
    net = Network((1, 2), learners=(3,))
    net.elect(1)
    assert all(m.dst != 3 for m in net.delivered if m.type is MessageType.PRE_VOTE)
    assert all(m.dst != 3 for m in net.delivered if m.type is MessageType.VOTE)
    net.isolate(2)
    _, index = net.core(1).propose(b"x")
    net.stabilize()
    assert net.core(3).last_index == index  # the learner has the entry
    assert net.core(1).commit_index < index  # but 1 + learner is not a quorum of {1, 2}
    net.heal()
    net.tick_and_stabilize(2)
    assert net.core(1).commit_index >= index
    assert net.nodes[3].data == [b"x"]  # learners apply what commits


def test_learner_vote_is_not_counted_by_candidate() -> None:
    net = Network((1, 2, 3), learners=(4,), pre_vote=False)
    candidate = net.core(1)
    candidate.campaign()
    net.process_ready(1)
    net.queue = []
    candidate.step(Message(MessageType.VOTE_RESP, 4, 1, candidate.term))
    assert candidate.role is Role.CANDIDATE  # 1 + learner is not 2 of {1, 2, 3}
    candidate.step(Message(MessageType.VOTE_RESP, 2, 1, candidate.term))
    assert candidate.role is Role.LEADER


def test_joining_node_learns_membership_from_log() -> None:
    net = Network((1, 2, 3), joining=(4,))
    net.elect(1)
    net.core(1).propose_conf_change(_change(ConfChangeKind.ADD_LEARNER, 4, b"host4:7000"))
    net.tick_and_stabilize(2)
    for node in (1, 2, 3, 4):
        conf = net.core(node).conf
        assert conf.voters == {1, 2, 3} and conf.learners == {4}
        assert dict(conf.contexts)[4] == b"host4:7000"
    assert net.core(4).log_entries() == net.core(1).log_entries()


def test_learner_promoted_only_when_caught_up() -> None:
    net = Network((1, 2, 3), joining=(4,), learner_catchup_entries=3)
    net.elect(1)
    leader = net.core(1)
    leader.propose_conf_change(_change(ConfChangeKind.ADD_LEARNER, 4))
    net.stabilize()
    net.isolate(4)
    for i in range(10):
        leader.propose(b"%d" % i)
    net.stabilize()
    with pytest.raises(ConfChangeRejected, match="not caught up"):
        leader.propose_conf_change(_change(ConfChangeKind.PROMOTE, 4))
    net.heal()
    net.tick_and_stabilize(2)
    leader.propose_conf_change(_change(ConfChangeKind.PROMOTE, 4))
    net.tick_and_stabilize(1)
    net.spread_commit()
    assert all(net.core(n).conf.voters == {1, 2, 3, 4} for n in (1, 2, 3, 4))
    assert not net.core(4).conf.learners


def test_conf_change_takes_effect_only_when_committed() -> None:
    net = Network((1, 2, 3), joining=(4,))
    net.elect(1)
    net.isolate(1)
    net.core(1).propose_conf_change(_change(ConfChangeKind.ADD_LEARNER, 4))
    net.stabilize()
    assert net.core(1).conf.learners == frozenset()  # in the log, not committed
    net.heal()
    net.tick_and_stabilize(2)
    assert net.core(1).conf.learners == {4}


def test_conf_change_rejected_while_another_is_pending() -> None:
    net = Network((1, 2, 3), joining=(4, 5))
    net.elect(1)
    leader = net.core(1)
    leader.propose_conf_change(_change(ConfChangeKind.ADD_LEARNER, 4))
    with pytest.raises(ConfChangeRejected, match="not committed"):
        leader.propose_conf_change(_change(ConfChangeKind.ADD_LEARNER, 5))
    net.stabilize()
    leader.propose_conf_change(_change(ConfChangeKind.ADD_LEARNER, 5))


def test_conf_change_rejected_before_leader_commits_in_its_term() -> None:
    net = Network((1, 2, 3))
    net.core(1).campaign()
    net.stabilize(keep=lambda m: m.type is not MessageType.APPEND)
    assert net.core(1).role is Role.LEADER
    with pytest.raises(ConfChangeRejected, match="of its term"):
        net.core(1).propose_conf_change(_change(ConfChangeKind.REMOVE, 3))


def test_conf_change_rejections_for_meaningless_changes() -> None:
    net = Network((1,), learners=(2,))
    net.elect(1)
    leader = net.core(1)
    with pytest.raises(ConfChangeRejected, match="no voters"):
        leader.propose_conf_change(_change(ConfChangeKind.REMOVE, 1))
    with pytest.raises(ConfChangeRejected, match="already a member"):
        leader.propose_conf_change(_change(ConfChangeKind.ADD_LEARNER, 2))
    with pytest.raises(ConfChangeRejected, match="not a member"):
        leader.propose_conf_change(_change(ConfChangeKind.REMOVE, 9))
    with pytest.raises(ConfChangeRejected, match="already a voter"):
        leader.propose_conf_change(_change(ConfChangeKind.PROMOTE, 1))
    with pytest.raises(NotLeader):
        net.core(2).propose_conf_change(_change(ConfChangeKind.REMOVE, 2))


def test_remove_leader_steps_down() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    before = len(net.delivered)
    net.core(1).propose_conf_change(_change(ConfChangeKind.REMOVE, 1))
    net.stabilize()
    old = net.core(1)
    assert old.role is Role.FOLLOWER
    assert all(net.core(n).conf.voters == {2, 3} for n in (1, 2, 3))
    net.tick_and_stabilize(40)
    assert len(net.leaders()) == 1 and net.leader() in (2, 3)
    assert old.role is Role.FOLLOWER  # a removed node never campaigns
    campaigns = (MessageType.PRE_VOTE, MessageType.VOTE)
    assert not any(m.src == 1 and m.type in campaigns for m in net.delivered[before:])
    _, index = net.propose(net.leader(), b"after")
    net.spread_commit()
    assert net.core(2).commit_index == net.core(3).commit_index == index


def test_removed_voter_shrinks_quorum() -> None:
    net = Network((1, 2, 3, 4))
    net.elect(1)
    net.core(1).propose_conf_change(_change(ConfChangeKind.REMOVE, 4))
    net.stabilize()
    net.crash(4)
    net.isolate(3)
    _, index = net.propose(1, b"x")
    assert net.core(1).commit_index == index  # {1, 2} is a quorum of {1, 2, 3}


def test_removed_leader_commit_reaches_remaining_voter_through_vote_answers() -> None:
    net = Network((1, 2), max_append_entries=1)
    net.elect(2)
    net.core(2).propose_conf_change(_change(ConfChangeKind.REMOVE, 2))
    net.core(2).propose(b"extra")  # makes the departing leader's log the longer one

    def commit_news_lost(msg: Message) -> bool | Message:
        if msg.src != 2:
            return True
        if any(e.data == b"extra" for e in msg.entries):
            return False
        return replace(msg, commit=0)

    net.stabilize(keep=commit_news_lost)
    assert net.core(2).role is Role.FOLLOWER and net.core(2).conf.voters == {1}
    assert net.core(1).conf.voters == {1, 2}  # it never heard that the removal committed
    assert net.core(2).last_index > net.core(1).last_index  # so 2 refuses to vote for 1
    net.tick_and_stabilize(40)
    assert net.leaders() == [1]
    assert net.core(1).conf.voters == {1}


def test_removed_member_id_is_never_reused() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    leader = net.core(1)
    leader.propose_conf_change(_change(ConfChangeKind.REMOVE, 3))
    net.spread_commit()
    assert all(net.core(n).conf.retired == {3} for n in (1, 2))
    with pytest.raises(ConfChangeRejected, match="never reused"):
        leader.propose_conf_change(_change(ConfChangeKind.ADD_LEARNER, 3))
    # Even a change that reached the log some other way adds nobody, on every replica.
    after = apply_conf_change(leader.conf, _change(ConfChangeKind.ADD_LEARNER, 3))
    assert after == leader.conf
