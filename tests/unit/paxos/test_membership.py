"""Membership: one single-server change at a time, learners that never count, and every slot
still gets at most one chosen value while the group changes."""

from __future__ import annotations

import pytest

from tests.unit.paxos.harness import Group
from triumvir.consensus.paxos.types import PaxosMessage
from triumvir.consensus.paxos.types import PaxosMessageType as T
from triumvir.consensus.raft.core import Role
from triumvir.consensus.raft.errors import ConfChangeRejected, ProposalDropped
from triumvir.consensus.raft.types import ConfChange, ConfChangeKind

ADD = ConfChangeKind.ADD_LEARNER
PROMOTE = ConfChangeKind.PROMOTE
REMOVE = ConfChangeKind.REMOVE


def _change(group: Group, leader: int, kind: ConfChangeKind, node: int) -> None:
    group.core(leader).propose_conf_change(ConfChange(kind, node))
    group.stabilize()
    group.tick_and_stabilize(2)


def test_learners_do_not_count_toward_the_quorum() -> None:
    group = Group((1, 2, 3), learners=(4, 5))
    group.elect(1)
    group.cut_links |= {(1, 2), (2, 1), (1, 3), (3, 1)}
    _, slot = group.core(1).propose(b"v")
    group.stabilize()
    assert group.core(4).last_index >= slot  # the learners accepted it...
    assert group.core(1).commit_index < slot  # ...which is not a quorum of voters


def test_learner_never_campaigns() -> None:
    group = Group((1, 2, 3), learners=(4,))
    group.isolate(4)
    group.tick([4], times=100)
    assert group.core(4).role is Role.FOLLOWER
    assert all(m.type is not T.PREPARE for m in group.queue if m.src == 4)


def test_add_promote_remove_keep_one_chosen_value_per_slot() -> None:
    group = Group((1, 2, 3), joining=(4,))
    group.elect(1)
    for n in range(5):
        group.propose(1, b"a%d" % n)
    _change(group, 1, ADD, 4)
    assert group.core(4).conf.learners == frozenset({4})
    _change(group, 1, PROMOTE, 4)
    _change(group, 1, REMOVE, 2)
    for n in range(5):
        group.propose(1, b"b%d" % n)
    group.tick_and_stabilize(2)
    assert group.core(1).conf.voters == frozenset({1, 3, 4})
    assert group.conflicts == []
    assert group.applied_data(4) == group.applied_data(1) == group.applied_data(3)
    # the new group chooses without the removed node
    group.crash(2)
    group.propose(1, b"chosen by 1, 3, 4")
    group.spread_chosen()
    assert group.applied_data(4)[-1] == b"chosen by 1, 3, 4"


def test_promote_requires_the_new_group_to_be_covered_by_promises() -> None:
    group = Group((1, 2, 3), joining=(4,))
    no_promise_from_3_or_4 = lambda m: not (m.type is T.PROMISE and m.src in (3, 4))  # noqa: E731
    group.elect(1, keep=no_promise_from_3_or_4)
    group.core(1).propose_conf_change(ConfChange(ADD, 4))
    group.stabilize(keep=no_promise_from_3_or_4)
    # promises from 1 and 2 are a quorum of {1, 2, 3} but not of {1, 2, 3, 4}
    with pytest.raises(ConfChangeRejected, match="promised"):
        group.core(1).propose_conf_change(ConfChange(PROMOTE, 4))
    group.tick_and_stabilize(1)  # the leader asks again and now hears them
    group.core(1).propose_conf_change(ConfChange(PROMOTE, 4))


def test_one_change_at_a_time_and_no_slot_after_an_unchosen_change() -> None:
    group = Group((1, 2, 3), joining=(4, 5))
    group.elect(1)
    group.core(1).propose_conf_change(ConfChange(ADD, 4))
    with pytest.raises(ConfChangeRejected, match="not chosen yet"):
        group.core(1).propose_conf_change(ConfChange(ADD, 5))
    with pytest.raises(ProposalDropped, match="not chosen yet"):
        group.core(1).propose(b"after the change")
    group.stabilize()
    group.core(1).propose(b"after the change")


def test_changes_that_leave_no_voters_are_rejected() -> None:
    group = Group((1,))
    group.elect(1)
    with pytest.raises(ConfChangeRejected, match="no voters"):
        group.core(1).propose_conf_change(ConfChange(REMOVE, 1))


def test_removed_leader_steps_down_once_its_removal_is_chosen() -> None:
    group = Group((1, 2, 3))
    group.elect(1)
    group.core(1).propose_conf_change(ConfChange(REMOVE, 1))
    assert group.core(1).role is Role.LEADER  # still needed to get the change chosen
    group.stabilize()
    assert group.core(1).role is Role.FOLLOWER
    assert group.core(2).conf.voters == frozenset({2, 3})
    group.tick_and_stabilize(60)
    assert len([n for n in group.leaders() if n != 1]) == 1


def test_removed_node_cannot_depose_the_leader() -> None:
    group = Group((1, 2, 3))
    group.elect(1)
    _change(group, 1, REMOVE, 3)
    before = group.core(1).ballot
    stale = PaxosMessage(T.PREPARE, 3, 2, ballot=before + (10 << 16), slot=1)
    group.core(2).step(stale)
    group.stabilize()
    assert group.core(1).role is Role.LEADER and group.core(1).ballot == before
    assert group.core(2).term == before
