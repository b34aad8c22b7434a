"""A simulated group of replicas: cores, in-memory storage, state machines and a network.

Each node processes its Ready exactly in the documented order (persist and sync, send,
restore/apply, answer reads, snapshot when asked, advance), and can be crashed at any point
of that sequence, including between writing and syncing, when the storage loses what was
not yet durable. Every observation the checkers need is fed to the `SafetyMonitor` as it
happens; every event goes into the trace.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.checkers.invariants import SafetyMonitor, check_durable_promises
from tests.sim.engine import Engine, MembershipChange, NodeView, Replica, SimLimits
from tests.sim.kvmodel import KvModel
from tests.sim.network import Network, NetworkFaults
from tests.sim.trace import Trace
from tests.sim.workload import Workload

MAX_READY_ROUNDS_PER_TICK = 4  # a node drains its Ready at most this often per tick
TICK_RATE_UNIT = 4  # tick rates are in quarters: 3 = 0.75x, 5 = 1.25x
MAX_NODES = 9  # founders plus the learners a run may add
RETIRE_DELAY_TICKS = 3  # a removed node lingers this long to pass on its last messages

# Where in the Ready sequence a crash strikes.
CRASH_IDLE = "idle"  # between two Readies
CRASH_BEFORE_PERSIST = "before-persist"
CRASH_TORN_WRITE = "torn-write"  # some entries synced, the rest written but not synced
CRASH_BEFORE_SYNC = "before-sync"  # everything written, nothing synced
CRASH_AFTER_PERSIST = "after-persist"  # durable, but nothing sent
CRASH_AFTER_SEND = "after-send"  # sent, but not applied
CRASH_AFTER_APPLY = "after-apply"  # applied, but advance() never called
CRASH_POINTS = (
    CRASH_IDLE,
    CRASH_BEFORE_PERSIST,
    CRASH_TORN_WRITE,
    CRASH_BEFORE_SYNC,
    CRASH_AFTER_PERSIST,
    CRASH_AFTER_SEND,
    CRASH_AFTER_APPLY,
)
CRASH_FALLBACK_TICKS = 5  # a node with no Ready for this long crashes while idle


@dataclass(slots=True)
class SimNode:
    node_id: int
    storage: Any
    founders: tuple[int, ...] | None  # None: this node joined later
    tick_rate: int  # in TICK_RATE_UNITs per global tick
    replica: Replica | None = None
    kv: KvModel | None = None
    applied_term: int = 0
    tick_credit: int = 0
    crash_point: str | None = None
    crash_armed_at: int = 0
    was_member: bool = False
    retire_at: int | None = None
    retired: bool = False
    # what earlier incarnations told other nodes, which a restart must not take back
    promised_term: int = 0
    vote_promise: tuple[int, int] | None = None

    @property
    def up(self) -> bool:
        return self.replica is not None


@dataclass(slots=True)
class Stats:
    crashes: int = 0
    restarts: int = 0
    partitions: int = 0
    delivered: int = 0
    dropped: int = 0
    snapshots_taken: int = 0
    snapshots_installed: int = 0
    membership_proposed: int = 0
    membership_applied: int = 0
    transfers: int = 0
    leaders: int = 0
    retired: int = 0
    crash_points: dict[str, int] = field(default_factory=dict)


class Cluster:
    def __init__(
        self,
        engine: Engine,
        rng: random.Random,
        limits: SimLimits,
        members: int,
        faults: NetworkFaults,
        trace: Trace,
        monitor: SafetyMonitor,
        workload: Workload,
        tick_rates: Sequence[int],
    ) -> None:
        self.engine = engine
        self.rng = rng
        self.limits = limits
        self.trace = trace
        self.monitor = monitor
        self.workload = workload
        self.stats = Stats()
        self.now = 0
        self.network: Network[Any] = Network(rng, faults, self._on_drop)
        self.nodes: dict[int, SimNode] = {}
        self._next_id = members + 1
        self._joiner: int | None = None  # added node whose ADD_LEARNER may not have landed
        founders = tuple(range(1, members + 1))
        for node_id in founders:
            self._create(node_id, founders, tick_rates[node_id - 1])

    # -- nodes -----------------------------------------------------------------------------

    def _create(self, node_id: int, founders: tuple[int, ...] | None, rate: int) -> SimNode:
        assert len(self.nodes) < MAX_NODES, "too many nodes"
        node = SimNode(node_id, self.engine.new_storage(), founders, rate)
        self.nodes[node_id] = node
        self._start(node)
        return node

    def _start(self, node: SimNode) -> None:
        core_rng = random.Random(self.rng.getrandbits(64))
        replica = self.engine.start(
            node.node_id, core_rng, node.storage, self.limits, node.founders
        )
        kv = KvModel()
        restored = replica.restored_state()
        node.applied_term = 0
        if restored is not None:
            index, term, data = restored
            kv.restore(data)
            assert kv.applied_index == index, (
                f"snapshot at {index} holds state at {kv.applied_index}"
            )
            node.applied_term = term
            self.monitor.observe_state(node.node_id, index, kv.chain, "restarting from")
        view = replica.view()
        self.monitor.report(
            check_durable_promises(
                node.node_id, view.term, view.vote, node.promised_term, node.vote_promise
            )
        )
        node.replica = replica
        node.kv = kv
        node.crash_point = None
        node.tick_credit = 0
        self.trace.record(f"start {self.now} {node.node_id} {restored[0] if restored else 0}")

    def live(self) -> list[int]:
        return [n for n, node in self.nodes.items() if node.replica is not None]

    def replica(self, node_id: int) -> Replica:
        replica = self.nodes[node_id].replica
        assert replica is not None, f"node {node_id} is down"
        return replica

    def down(self) -> list[int]:
        return [n for n, node in self.nodes.items() if node.replica is None and not node.retired]

    def leader(self) -> int | None:
        """The live node that leads the highest term, if any."""
        best: tuple[int, int] | None = None
        for node_id, node in self.nodes.items():
            replica = node.replica
            if replica is not None and replica.is_leader():
                candidate = (replica.status()[0], node_id)
                if best is None or candidate > best:
                    best = candidate
        return best[1] if best is not None else None

    def view(self, node_id: int) -> NodeView:
        return self.replica(node_id).view()

    # -- time ------------------------------------------------------------------------------

    def tick(self, *, issuing: bool) -> None:
        """One global tick: deliver due messages, tick every node at its own rate, let
        clients act, then drain every node's Ready."""
        self.now += 1
        now = self.now
        record = self.trace.record
        summary = self.engine.message_summary
        monitor = self.monitor
        record(("t", now))
        delivered = 0
        for src, dst, msg in self.network.deliverable(now):
            node = self.nodes.get(dst)
            replica = node.replica if node is not None else None
            if replica is None:
                self._on_drop("down", src, dst, msg)
                continue
            delivered += 1
            record(summary(msg))
            replica.core.step(msg)
            term, leads = replica.status()
            if leads or term > monitor.max_term:
                self._observe(dst, replica, term, leads)
        self.stats.delivered += delivered
        for node in self.nodes.values():
            replica = node.replica
            if replica is None:
                continue
            node.tick_credit += node.tick_rate
            while node.tick_credit >= TICK_RATE_UNIT:
                node.tick_credit -= TICK_RATE_UNIT
                replica.core.tick()
                term, leads = replica.status()
                if leads or term > monitor.max_term:
                    self._observe(node.node_id, replica, term, leads)
        if issuing:
            self.workload.issue(now, self.live(), self.replica)
        for node in self.nodes.values():
            if node.replica is not None:
                self._drain(node)
            if node.retire_at is not None and node.retire_at <= now and not node.retired:
                self._retire(node)
        self.workload.expire(now)

    def _observe(self, node_id: int, replica: Replica, term: int, leads: bool) -> None:
        """Feed the monitor a node's term (read after every input, before the node can
        apply anything) and, if it leads, the leadership sighting."""
        monitor = self.monitor
        if term > monitor.max_term:
            monitor.observe_term(term)
        if not leads:
            return
        first, _ = monitor.observe_leader(node_id, term)
        if first:
            self.stats.leaders += 1
            self.trace.record(f"leader {self.now} {node_id} {term}")
            snapshot_index = replica.view().snapshot_index
            monitor.check_new_leader(node_id, term, snapshot_index, replica.log())

    def _on_drop(self, reason: str, src: int, dst: int, msg: Any) -> None:
        self.stats.dropped += 1
        self.trace.record((reason, self.engine.message_summary(msg)))

    # -- the Ready sequence ----------------------------------------------------------------

    def _drain(self, node: SimNode) -> None:
        for _ in range(MAX_READY_ROUNDS_PER_TICK):
            replica = node.replica
            if replica is None:
                return
            if not replica.core.has_ready():
                if (
                    node.crash_point is not None
                    and self.now - node.crash_armed_at >= CRASH_FALLBACK_TICKS
                ):
                    self._crash(node, CRASH_IDLE)
                return
            self._process(node, replica, replica.core.ready())

    def _process(self, node: SimNode, replica: Replica, ready: Any) -> None:
        point = node.crash_point
        node_id = node.node_id
        kv = node.kv
        assert kv is not None
        if point == CRASH_BEFORE_PERSIST:
            self._crash(node, point)
            return
        if point in (CRASH_TORN_WRITE, CRASH_BEFORE_SYNC):
            written = len(replica.persisted_records(ready))
            synced = self.rng.randint(0, written) if point == CRASH_TORN_WRITE else 0
            replica.persist(ready, synced_entries=synced)
            self._crash(node, point)
            return
        replica.persist(ready)
        self.monitor.observe_persisted(node_id, replica.persisted_records(ready))
        if point == CRASH_AFTER_PERSIST:
            self._crash(node, point)
            return
        envelope = self.engine.envelope
        send = self.network.send
        now = self.now
        for msg in replica.messages(ready):
            src, dst, term, granted = envelope(msg)
            if term > node.promised_term:
                node.promised_term = term
            if granted:
                node.vote_promise = (term, granted)
            send(src, dst, msg, now)
        if point == CRASH_AFTER_SEND:
            self._crash(node, point)
            return
        restored = replica.ready_snapshot(ready)
        if restored is not None:
            index, term, data = restored
            kv.restore(data)
            assert kv.applied_index == index, (
                f"snapshot at {index} holds state at {kv.applied_index}"
            )
            node.applied_term = term
            self.stats.snapshots_installed += 1
            self.trace.record(f"install {self.now} {node_id} {index} {term}")
            self.monitor.observe_state(node_id, index, kv.chain, "installing a snapshot at")
            self.workload.on_snapshot(node_id, index, self.now)
        membership = restored is not None
        for applied in replica.committed(ready):
            result = kv.apply(
                applied.index, applied.term, applied.data, is_command=applied.is_command
            )
            node.applied_term = applied.term
            self.monitor.observe_apply(
                node_id, applied.index, applied.term, applied.payload, kv.chain
            )
            self.trace.record(("a", node_id, applied.index, applied.term, result))
            self.workload.on_apply(node_id, applied, result, self.now)
            if applied.is_membership:
                membership = True
                self.stats.membership_applied += 1
        for context, index in replica.reads(ready):
            self.workload.on_read_state(node_id, context, index)
        self.workload.serve_reads(node_id, kv, self.now)
        if point == CRASH_AFTER_APPLY:
            self._crash(node, point)
            return
        if replica.snapshot_wanted(ready):
            replica.compact(kv.applied_index, node.applied_term, kv.snapshot())
            self.stats.snapshots_taken += 1
            self.trace.record(f"snap {self.now} {node_id} {kv.applied_index}")
            self.monitor.observe_state(node_id, kv.applied_index, kv.chain, "snapshotting")
        replica.core.advance(ready)
        if membership:
            self._check_membership(node, replica)

    def _check_membership(self, node: SimNode, replica: Replica) -> None:
        """A node that sees itself removed shuts down shortly after, as a server would."""
        view = replica.view()
        if node.node_id in view.voters or node.node_id in view.learners:
            node.was_member = True
        elif node.was_member and node.retire_at is None:
            node.retire_at = self.now + RETIRE_DELAY_TICKS

    # -- faults ----------------------------------------------------------------------------

    def arm_crash(self, node_id: int, point: str) -> None:
        node = self.nodes[node_id]
        if node.replica is None or node.crash_point is not None:
            return
        if point == CRASH_IDLE:
            self._crash(node, point)
            return
        node.crash_point = point
        node.crash_armed_at = self.now

    def _crash(self, node: SimNode, point: str) -> None:
        node.storage.crash()
        node.replica = None
        node.kv = None
        node.crash_point = None
        self.stats.crashes += 1
        self.stats.crash_points[point] = self.stats.crash_points.get(point, 0) + 1
        self.trace.record(f"crash {self.now} {node.node_id} {point}")
        self.workload.on_crash(node.node_id, self.now)

    def restart(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.replica is not None or node.retired:
            return
        self.stats.restarts += 1
        self._start(node)

    def _retire(self, node: SimNode) -> None:
        """Shut a node down for good (it was removed from the group)."""
        if node.replica is not None:
            node.replica = None
            node.kv = None
            self.workload.on_crash(node.node_id, self.now)
        node.retired = True
        node.crash_point = None
        self.stats.retired += 1
        self.trace.record(f"retire {self.now} {node.node_id}")

    def disarm_crashes(self) -> None:
        for node in self.nodes.values():
            node.crash_point = None

    def retire_non_members(self) -> None:
        """Heal phase: nodes outside the latest committed membership stop for good, as an
        operator shuts down a server removed while it was cut off (it may never learn of
        its removal: the group stops talking to it). The leader knows the membership best;
        without one, the node with the highest commit index does."""
        live = self.live()
        if not live:
            return
        source = self.leader()
        if source is None:
            source = max(live, key=lambda n: (self.view(n).commit_index, n))
        view = self.view(source)
        members = view.voters | view.learners
        for node_id, node in self.nodes.items():
            if node_id not in members and not node.retired:
                self._retire(node)

    def partition_halves(self) -> None:
        live = sorted(self.nodes)
        self.rng.shuffle(live)
        cut = self.rng.randint(1, len(live) - 1)
        side_a, side_b = sorted(live[:cut]), sorted(live[cut:])
        self.network.split(side_a, side_b)
        self._partitioned(f"halves {side_a} {side_b}")

    def isolate_leader(self) -> None:
        leader = self.leader()
        if leader is None:
            return
        self.network.split([leader], [n for n in self.nodes if n != leader])
        self._partitioned(f"isolate {leader}")

    def one_way(self) -> None:
        ids = sorted(self.nodes)
        a, b = self.rng.sample(ids, 2)
        self.network.block(a, b)
        if self.rng.random() < 0.5:
            # the leader cannot hear one follower, which still hears it
            leader = self.leader()
            if leader is not None:
                others = [n for n in ids if n != leader]
                follower = self.rng.choice(others)
                self.network.block(follower, leader)
                self._partitioned(f"one-way {a}>{b} {follower}>{leader}")
                return
        self._partitioned(f"one-way {a}>{b}")

    def _partitioned(self, what: str) -> None:
        self.stats.partitions += 1
        self.trace.record(f"partition {self.now} {what}")

    def heal(self) -> None:
        self.network.heal()
        self.trace.record(f"heal {self.now}")

    # -- operator actions ------------------------------------------------------------------

    def _operate(self, leader: int, change: MembershipChange) -> bool:
        try:
            term, index = self.replica(leader).change_membership(change)
        except self.engine.refusals as refusal:
            self.trace.record(f"op {self.now} {change.kind} {change.node_id} refused {refusal}")
            return False
        self.stats.membership_proposed += 1
        self.trace.record(f"op {self.now} {change.kind} {change.node_id} at {term}/{index}")
        return True

    def add_learner(self, rate: int) -> None:
        leader = self.leader()
        if leader is None:
            return
        node_id = self._joiner
        if node_id is None or self.nodes[node_id].retired or self.nodes[node_id].was_member:
            if len(self.nodes) >= MAX_NODES:
                return
            node_id = self._next_id
            self._next_id += 1
            self._create(node_id, None, rate)
            self._joiner = node_id
        self._operate(leader, MembershipChange("add_learner", node_id))

    def promote(self) -> None:
        leader = self.leader()
        if leader is None:
            return
        learners = sorted(self.view(leader).learners)
        if learners:
            self._operate(leader, MembershipChange("promote", self.rng.choice(learners)))

    def remove(self, min_voters: int) -> None:
        leader = self.leader()
        if leader is None:
            return
        voters = sorted(self.view(leader).voters)
        if len(voters) > min_voters:
            self._operate(leader, MembershipChange("remove", self.rng.choice(voters)))

    def transfer(self) -> None:
        leader = self.leader()
        if leader is None:
            return
        targets = sorted(self.view(leader).voters - {leader})
        if not targets:
            return
        target = self.rng.choice(targets)
        try:
            self.replica(leader).core.transfer_leader(target)
        except self.engine.refusals as refusal:
            self.trace.record(f"transfer {self.now} {leader}>{target} refused {refusal}")
            return
        self.stats.transfers += 1
        self.trace.record(f"transfer {self.now} {leader}>{target}")
