"""Seeded chaos on the hand-driven network: loss, duplication, reordering, partitions,
crash-restarts, membership changes, transfers and snapshots. Safety must hold throughout,
and once the faults stop the group must elect a leader and commit again."""

from __future__ import annotations

import random

import pytest

from tests.unit.raft.harness import Network
from triumvir.consensus.raft.core import Role
from triumvir.consensus.raft.errors import RaftError
from triumvir.consensus.raft.types import ConfChange, ConfChangeKind, Message

FAULT_TICKS = 300
HEAL_TICKS_MAX = 300


def _deliver_chaotically(net: Network, rng: random.Random, loss: float) -> None:
    batch, net.queue = net.queue, []
    rng.shuffle(batch)
    for msg in batch:
        roll = rng.random()
        if roll < loss or (msg.src, msg.dst) in net.cut_links:
            continue
        if roll < loss + 0.1:
            net.queue.append(msg)  # delayed to a later round
            continue
        _step(net, msg)
        if roll > 0.95:
            _step(net, msg)  # duplicated


def _step(net: Network, msg: Message) -> None:
    node = net.nodes.get(msg.dst)
    if node is not None and node.core is not None:
        node.core.step(msg)


def _record_leaders(net: Network, leaders_by_term: dict[int, int]) -> None:
    for node_id in net.leaders():
        term = net.core(node_id).term
        assert leaders_by_term.setdefault(term, node_id) == node_id, f"two leaders in {term}"


def _check_log_matching(net: Network) -> None:
    logs = {n: {e.index: e for e in net.core(n).log_entries()} for n in net.live()}
    for a in logs:
        for b in logs:
            if a >= b:
                continue
            common = logs[a].keys() & logs[b].keys()
            same = [i for i in common if logs[a][i].term == logs[b][i].term]
            if same:
                top = max(same)
                for i in common:
                    if i <= top:
                        assert logs[a][i] == logs[b][i], f"logs of {a} and {b} differ at {i}"


def _random_action(net: Network, rng: random.Random, spare: list[int]) -> None:
    live = net.live()
    roll = rng.random()
    try:
        if roll < 0.30:
            for node_id in live:
                if net.core(node_id).role is Role.LEADER:
                    net.core(node_id).propose(b"w%d" % rng.randrange(10**9))
        elif roll < 0.33:
            net.core(rng.choice(live)).read_index(b"r%d" % rng.randrange(10**9))
        elif roll < 0.36 and len(live) > 2:
            net.crash(rng.choice(live))
        elif roll < 0.40:
            down = [n for n in net.nodes if net.nodes[n].core is None]
            if down:
                net.restart(rng.choice(down))
        elif roll < 0.42:
            net.isolate(rng.choice(list(net.nodes)))
        elif roll < 0.46:
            net.heal()
        elif roll < 0.48 and net.leaders():
            leader = net.core(net.leaders()[0])
            leader.transfer_leader(rng.choice(sorted(leader.conf.voters)))
        elif roll < 0.50 and net.leaders():
            leader = net.core(net.leaders()[0])
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
def test_random_faults_preserve_safety_and_recover(seed: int) -> None:
    rng = random.Random(seed)
    members = (1, 2, 3) if seed % 2 == 0 else (1, 2, 3, 4, 5)
    spare = [11, 12]
    net = Network(
        members,
        joining=spare,
        seed=seed,
        max_append_entries=4,
        max_inflight_appends=4,
        snapshot_threshold_entries=12,
        snapshot_chunk_bytes=24,
        learner_catchup_entries=4,
    )
    leaders_by_term: dict[int, int] = {}
    loss = rng.choice([0.0, 0.1, 0.3])
    for _ in range(FAULT_TICKS):
        _random_action(net, rng, spare)
        for node_id in net.live():
            if rng.random() < 0.9:
                net.core(node_id).tick()
        for _ in range(3):
            for node_id in net.live():
                net.process_ready(node_id)
            _deliver_chaotically(net, rng, loss)
        _record_leaders(net, leaders_by_term)
        assert net.apply_conflicts == []
    _check_log_matching(net)

    # Heal: everyone up, no loss. A leader must emerge and commit a new entry.
    net.heal()
    for node_id in list(net.nodes):
        if net.nodes[node_id].core is None:
            net.restart(node_id)
    committed = False
    marker = b"after-heal-%d" % seed
    for _ in range(HEAL_TICKS_MAX):
        net.tick()
        net.stabilize()
        _record_leaders(net, leaders_by_term)
        leaders = [n for n in net.leaders() if n in net.core(n).conf.voters]
        if leaders and not committed:
            try:
                net.core(leaders[0]).propose(marker)
            except RaftError:
                continue
            net.stabilize()
        if any(marker in net.nodes[n].data for n in net.live()):
            committed = True
            break
    assert committed, f"seed {seed}: no progress after heal"
    net.tick_and_stabilize(5)
    assert net.apply_conflicts == []
    _check_log_matching(net)
    voters = net.core(net.leaders()[0]).conf.voters
    in_sync = [n for n in voters if marker in net.nodes[n].data]
    assert len(in_sync) == len(voters), f"seed {seed}: voters lag after heal"
