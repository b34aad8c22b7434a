"""Seeded chaos on the hand-driven group: loss, duplication, reordering, partitions,
crash-restarts (including torn writes), membership changes, transfers and snapshots. No slot
may ever get two chosen values, and once the faults stop the group must choose again."""

from __future__ import annotations

import random

import pytest

from tests.unit.paxos.harness import Group
from triumvir.consensus.paxos.types import PaxosMessage
from triumvir.consensus.raft.errors import RaftError
from triumvir.consensus.raft.types import ConfChange, ConfChangeKind

FAULT_TICKS = 300
HEAL_TICKS_MAX = 300


def _deliver_chaotically(group: Group, rng: random.Random, loss: float) -> None:
    batch, group.queue = group.queue, []
    rng.shuffle(batch)
    for msg in batch:
        roll = rng.random()
        if roll < loss or (msg.src, msg.dst) in group.cut_links:
            continue
        if roll < loss + 0.1:
            group.queue.append(msg)  # delayed to a later round
            continue
        _step(group, msg)
        if roll > 0.95:
            _step(group, msg)  # duplicated


def _step(group: Group, msg: PaxosMessage) -> None:
    node = group.nodes.get(msg.dst)
    if node is not None and node.core is not None:
        node.core.step(msg)


def _record_leaders(group: Group, leaders_by_ballot: dict[int, int]) -> None:
    for node_id in group.leaders():
        ballot = group.core(node_id).ballot
        assert leaders_by_ballot.setdefault(ballot, node_id) == node_id, f"two leaders of {ballot}"


def _random_action(group: Group, rng: random.Random, spare: list[int]) -> None:
    live = group.live()
    roll = rng.random()
    try:
        if roll < 0.30:
            for node_id in group.leaders():
                group.core(node_id).propose(b"w%d" % rng.randrange(10**9))
        elif roll < 0.33:
            group.core(rng.choice(live)).read_index(b"r%d" % rng.randrange(10**9))
        elif roll < 0.35 and len(live) > 2:
            group.crash(rng.choice(live))
        elif roll < 0.36 and len(live) > 2:
            # a crash in the middle of persisting: only part of the Ready is synced
            node_id = rng.choice(live)
            if group.core(node_id).has_ready():
                group.process_ready(node_id, torn_after=rng.randrange(4))
        elif roll < 0.40:
            down = [n for n in group.nodes if group.nodes[n].core is None]
            if down:
                group.restart(rng.choice(down))
        elif roll < 0.42:
            group.isolate(rng.choice(list(group.nodes)))
        elif roll < 0.46:
            group.heal()
        elif roll < 0.48 and group.leaders():
            leader = group.core(group.leaders()[0])
            leader.transfer_leader(rng.choice(sorted(leader.conf.voters)))
        elif roll < 0.50 and group.leaders():
            leader = group.core(group.leaders()[0])
            conf = leader.conf
            if conf.learners and rng.random() < 0.5:
                change = ConfChange(ConfChangeKind.PROMOTE, min(conf.learners))
            elif spare and rng.random() < 0.5:
                change = ConfChange(ConfChangeKind.ADD_LEARNER, spare[0])
            else:
                change = ConfChange(ConfChangeKind.REMOVE, rng.choice(sorted(conf.members())))
            leader.propose_conf_change(change)
            if change.kind is ConfChangeKind.ADD_LEARNER:
                spare.pop(0)
    except RaftError:
        pass


@pytest.mark.parametrize("seed", range(24))
def test_random_faults_keep_one_chosen_value_per_slot_and_recover(seed: int) -> None:
    rng = random.Random(seed)
    members = (1, 2, 3) if seed % 2 == 0 else (1, 2, 3, 4, 5)
    spare = [11, 12]
    group = Group(
        members,
        joining=spare,
        seed=seed,
        max_accept_values=4,
        max_inflight_accepts=4,
        max_inflight_slots=16,
        max_catchup_values=4,
        max_promise_values=64,
        snapshot_threshold_entries=12,
        snapshot_chunk_bytes=24,
        learner_catchup_entries=4,
    )
    leaders_by_ballot: dict[int, int] = {}
    loss = rng.choice([0.0, 0.1, 0.3])
    for _ in range(FAULT_TICKS):
        _random_action(group, rng, spare)
        for node_id in group.live():
            if rng.random() < 0.9:
                group.core(node_id).tick()
        for _ in range(3):
            for node_id in group.live():
                group.process_ready(node_id)
            _deliver_chaotically(group, rng, loss)
        _record_leaders(group, leaders_by_ballot)
        assert group.conflicts == []

    # Heal: everyone up, no loss. A leader must emerge and choose a new value.
    group.heal()
    for node_id in list(group.nodes):
        if group.nodes[node_id].core is None:
            group.restart(node_id)
    chosen = False
    marker = b"after-heal-%d" % seed
    for _ in range(HEAL_TICKS_MAX):
        group.tick()
        group.stabilize()
        _record_leaders(group, leaders_by_ballot)
        leaders = [n for n in group.leaders() if n in group.core(n).conf.voters]
        if leaders and not chosen:
            try:
                group.core(leaders[0]).propose(marker)
            except RaftError:
                continue
            group.stabilize()
        if any(marker in group.applied_data(n) for n in group.live()):
            chosen = True
            break
    assert chosen, f"seed {seed}: nothing chosen after heal"
    # A node with a stale view of the group may still depose the leader once; within a
    # bounded time one leader remains and every voter it knows has the new value.
    for _ in range(HEAL_TICKS_MAX):
        group.tick()
        group.stabilize()
        _record_leaders(group, leaders_by_ballot)
        if len(group.leaders()) == 1 and _voters_in_sync(group, marker):
            break
    assert group.conflicts == []
    assert len(group.leaders()) == 1, f"seed {seed}: no single leader after heal"
    assert _voters_in_sync(group, marker), f"seed {seed}: voters lag after heal"


def _voters_in_sync(group: Group, marker: bytes) -> bool:
    leader = group.core(group.leaders()[0])
    voters = leader.conf.voters
    return all(n in group.live() and marker in group.applied_data(n) for n in voters)
