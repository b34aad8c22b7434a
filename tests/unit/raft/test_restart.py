"""Restart: a core built from what storage returned resumes exactly where it was."""

from __future__ import annotations

from tests.unit.raft.harness import Network
from triumvir.consensus.raft.core import Role
from triumvir.consensus.raft.types import ConfChange, ConfChangeKind, HardState


def test_restart_restores_state() -> None:
    net = Network((1, 2, 3), joining=(4,))
    net.elect(1)
    for i in range(4):
        net.propose(1, b"%d" % i)
    net.core(1).propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, 4, b"addr"))
    net.stabilize()
    before = net.core(2)
    state = (before.term, before.vote, before.commit_index, before.log_entries(), before.conf)
    net.crash(2)
    after = net.restart(2)
    assert (after.term, after.vote, after.commit_index, after.log_entries(), after.conf) == state
    assert after.role is Role.FOLLOWER and after.applied_index == 0
    net.stabilize()  # committed entries are handed out again for the state machine
    assert after.applied_index == after.commit_index
    assert net.nodes[2].data == [b"0", b"1", b"2", b"3"]


def test_restart_from_snapshot_replays_only_later_entries() -> None:
    net = Network((1, 2, 3), snapshot_threshold_entries=4)
    net.elect(1)
    for i in range(6):
        net.propose(1, b"%d" % i)
    stored = net.nodes[2].stored
    assert stored.snapshot is not None and stored.snapshot.meta.index > 0
    net.crash(2)
    after = net.restart(2)
    assert after.snapshot_meta == stored.snapshot.meta
    assert after.applied_index == stored.snapshot.meta.index
    assert after.conf.voters == {1, 2, 3}
    net.stabilize()
    net.spread_commit()
    assert net.nodes[2].data == net.nodes[1].data


def test_restart_membership_uses_only_committed_conf_changes() -> None:
    net = Network((1, 2, 3), joining=(4,))
    net.elect(1)
    net.isolate(1)
    net.core(1).propose_conf_change(ConfChange(ConfChangeKind.ADD_LEARNER, 4))
    net.stabilize()
    net.crash(1)
    restarted = net.restart(1)
    assert restarted.last_index > restarted.commit_index  # the change is in the log...
    assert restarted.conf.learners == frozenset()  # ...but not committed, so not in force


def test_restarted_node_keeps_its_vote() -> None:
    net = Network((1, 2, 3), pre_vote=False)
    net.core(1).campaign()
    net.stabilize(keep=lambda m: m.dst == 2)  # node 2 votes for 1; the answer is lost
    assert net.nodes[2].stored.hard_state.vote == 1
    net.crash(2)
    voter = net.restart(2)
    assert voter.vote == 1 and voter.term == 2
    net.core(3).campaign()  # campaigns in the same term 2
    assert net.core(3).term == 2
    net.stabilize(keep=lambda m: m.src == 3 or m.dst == 3)
    assert net.core(3).role is not Role.LEADER  # node 2 will not vote twice in term 2
    assert voter.vote == 1


def test_fresh_node_bootstrap_is_identical_on_every_founder() -> None:
    net = Network((1, 2, 3))
    logs = [net.core(n).log_entries() for n in (1, 2, 3)]
    assert logs[0] == logs[1] == logs[2]
    assert all(net.core(n).commit_index == len(logs[0]) for n in (1, 2, 3))
    ready = net.core(1).ready()
    assert ready.hard_state == HardState(term=1, vote=0, commit=len(logs[0]))
    assert ready.entries == logs[0] and ready.committed == logs[0]
