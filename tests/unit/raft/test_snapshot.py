"""Snapshots: when the core asks for one, compaction, and chunked InstallSnapshot."""

from __future__ import annotations

import random

import pytest

from tests.unit.raft.harness import Network, decode_state
from tests.unit.snapshot_asks import snapshot_asks
from triumvir.consensus.raft.config import RaftConfig
from triumvir.consensus.raft.core import RaftCore
from triumvir.consensus.raft.types import ConfState, Message, MessageType, Snapshot, SnapshotMeta


def _single(threshold: int) -> RaftCore:
    core = RaftCore(
        RaftConfig(node_id=1, snapshot_threshold_entries=threshold),
        random.Random(1),
        conf=ConfState(voters=frozenset({1})),
    )
    core.campaign()
    return core


def test_snapshot_wanted_once_until_compact() -> None:
    core = _single(threshold=5)
    snapshot_asks(core)
    for i in range(5):
        core.propose(b"%d" % i)
    assert snapshot_asks(core).count(True) == 1
    core.propose(b"more")
    assert True not in snapshot_asks(core)  # asked already; waits for compact()
    applied = core.applied_index
    core.compact(Snapshot(core.snapshot_meta_for(applied), b"state"))
    assert core.snapshot_meta.index == applied
    assert core.log_entries() == ()
    for i in range(5):
        core.propose(b"again %d" % i)
    assert snapshot_asks(core).count(True) == 1


def test_compact_keeps_entries_after_snapshot_and_records_membership() -> None:
    core = _single(threshold=1000)
    for i in range(6):
        core.propose(b"%d" % i)
    snapshot_asks(core)
    target = core.applied_index - 3
    core.compact(Snapshot(SnapshotMeta(target), b"s"))
    assert [e.index for e in core.log_entries()] == [target + 1, target + 2, target + 3]
    meta = core.snapshot_meta
    assert meta.index == target and meta.term == core.term
    assert meta.conf.voters == {1}  # filled in by the core from the committed log
    core.compact(Snapshot(SnapshotMeta(target - 1), b"older"))  # an older one is ignored
    assert core.snapshot_meta.index == target


def test_compact_beyond_applied_is_refused() -> None:
    core = _single(threshold=1000)
    snapshot_asks(core)
    core.propose(b"x")
    with pytest.raises(ValueError):
        core.compact(Snapshot(SnapshotMeta(core.last_index), b""))


def test_snapshot_sent_in_chunks_to_lagging_follower() -> None:
    net = Network(
        (1, 2, 3), snapshot_threshold_entries=5, snapshot_chunk_bytes=16, max_append_entries=4
    )
    net.elect(1)
    net.isolate(3)
    for i in range(12):
        net.core(1).propose(b"value-%02d" % i)
    net.stabilize()
    leader = net.core(1)
    assert leader.snapshot_meta.index > net.core(3).last_index  # 3 needs compacted entries
    net.heal()
    net.tick_and_stabilize(3)
    chunks = [m for m in net.delivered if m.type is MessageType.SNAPSHOT]
    assert len(chunks) > 2 and all(len(m.chunk) <= 16 for m in chunks)
    assert chunks[-1].done and not any(m.done for m in chunks[:-1])
    assert [m.offset for m in chunks] == sorted(m.offset for m in chunks)
    # Stop-and-wait: each chunk after the first answers a SNAPSHOT_RESP for its offset.
    answered = {m.offset for m in net.delivered if m.type is MessageType.SNAPSHOT_RESP}
    assert all(m.offset in answered for m in chunks[1:])
    assert net.nodes[3].data == net.nodes[1].data
    assert net.core(3).commit_index == leader.commit_index
    assert net.core(3).snapshot_meta.conf == leader.conf
    assert net.nodes[3].stored.snapshot is not None
    assert net.apply_conflicts == []


def test_snapshot_chunk_loss_is_resent_on_heartbeat() -> None:
    net = Network((1, 2, 3), snapshot_threshold_entries=4, snapshot_chunk_bytes=8)
    net.elect(1)
    net.isolate(3)
    for i in range(8):
        net.core(1).propose(b"v%d" % i)
    net.stabilize()
    net.heal()
    dropped: list[int] = []

    def lose_second_chunk(msg: Message) -> bool:
        if msg.type is MessageType.SNAPSHOT and msg.offset == 8 and not dropped:
            dropped.append(msg.offset)
            return False
        return True

    net.tick_and_stabilize(1, keep=lose_second_chunk)
    assert dropped and net.core(3).commit_index < net.core(1).commit_index
    net.tick_and_stabilize(2)
    assert net.nodes[3].data == net.nodes[1].data


def test_snapshot_older_than_commit_is_not_installed() -> None:
    net = Network((1, 2, 3), snapshot_threshold_entries=3)
    net.elect(1)
    for i in range(6):
        net.propose(1, b"%d" % i)
    follower = net.core(2)
    meta = net.core(1).snapshot_meta
    assert 0 < meta.index <= follower.commit_index
    follower.step(
        Message(
            MessageType.SNAPSHOT, 1, 2, follower.term, snapshot_meta=meta, chunk=b"x", done=True
        )
    )
    ready = follower.ready()
    assert ready.snapshot is None
    (answer,) = ready.messages
    assert answer.type is MessageType.SNAPSHOT_RESP and answer.index == follower.commit_index


def test_state_machine_snapshot_is_restored_from_ready() -> None:
    net = Network((1, 2), snapshot_threshold_entries=3, snapshot_chunk_bytes=4)
    net.elect(1)
    net.isolate(2)
    for i in range(5):
        net.core(1).propose(b"%d" % i)
    net.stabilize()
    net.heal()
    net.tick_and_stabilize(3)
    stored = net.nodes[2].stored.snapshot
    assert stored is not None
    restored = decode_state(stored.data)
    assert restored and restored == net.nodes[1].data[: len(restored)]
    assert net.nodes[2].data == net.nodes[1].data
