"""Lagging replicas catch up: chosen values in bounded batches from a peer, or the snapshot
in bounded chunks once the peer compacted the slots they need; restarts restore state."""

from __future__ import annotations

from tests.unit.paxos.harness import Group
from triumvir.consensus.paxos.types import PaxosMessageType as T
from triumvir.consensus.raft.types import ConfChange, ConfChangeKind

BATCH = 3
CHUNK = 16


def _lagging_group(**config: object) -> Group:
    group = Group(seed=5, max_catchup_values=BATCH, **config)
    group.elect(1)
    group.isolate(3)
    for n in range(20):
        group.propose(1, b"v%02d" % n)
    assert group.core(3).commit_index < group.core(1).commit_index
    group.heal()
    return group


def test_lagging_replica_catches_up_from_the_leader_in_bounded_batches() -> None:
    group = _lagging_group()
    group.tick_and_stabilize(5)
    assert group.applied_data(3) == group.applied_data(1)
    responses = [m for m in group.delivered if m.type is T.CATCHUP_RESP and m.dst == 3]
    assert responses and all(len(m.values) <= BATCH for m in responses)
    assert group.conflicts == []


def test_replica_behind_the_snapshot_gets_it_in_chunks() -> None:
    group = _lagging_group(snapshot_threshold_entries=8, snapshot_chunk_bytes=CHUNK)
    assert group.core(1).snapshot_meta.index > group.core(3).commit_index
    group.tick_and_stabilize(5)
    chunks = [m for m in group.delivered if m.type is T.SNAPSHOT and m.dst == 3]
    assert len(chunks) > 1 and all(len(m.chunk) <= CHUNK for m in chunks)
    assert group.core(3).snapshot_meta.index >= group.core(1).snapshot_meta.index
    assert group.applied_data(3) == group.applied_data(1)
    group.propose(1, b"after")
    group.spread_chosen()
    assert group.applied_data(3)[-1] == b"after"


def test_snapshot_install_keeps_values_accepted_after_it() -> None:
    group = _lagging_group(snapshot_threshold_entries=8, snapshot_chunk_bytes=CHUNK)
    group.tick_and_stabilize(5)
    group.crash(3)
    restarted = group.restart(3)
    assert restarted.snapshot_meta.index > 0
    assert restarted.last_index == group.core(1).last_index


def test_restart_restores_promise_accepted_values_and_chosen_prefix() -> None:
    group = Group(seed=7)
    group.elect(1)
    for n in range(6):
        group.propose(1, b"v%d" % n)
    group.tick_and_stabilize(2)
    before = group.core(2)
    state = (before.term, before.log_entries(), before.commit_index, before.conf)
    group.crash(2)
    after = group.restart(2)
    assert (after.term, after.log_entries(), after.commit_index, after.conf) == state
    group.stabilize()
    assert group.applied_data(2) == group.applied_data(1)  # re-applied from the log
    group.propose(1, b"after restart")
    group.spread_chosen()
    assert group.applied_data(2)[-1] == b"after restart"


def test_removed_node_learns_it_was_removed_when_it_campaigns() -> None:
    group = Group((1, 2, 3), seed=2)
    group.elect(1)
    group.isolate(3)
    group.core(1).propose_conf_change(ConfChange(ConfChangeKind.REMOVE, 3))
    group.stabilize()
    assert 3 in group.core(3).conf.voters  # it missed the news
    group.heal()
    group.core(3).campaign()
    group.stabilize()
    assert 3 not in group.core(3).conf.voters
