"""A hand-driven group of Multi-Paxos cores for unit tests.

Nothing moves unless a test says so: `process_ready` persists (into the same in-memory
storage the simulator uses, so a crash loses exactly what was not synced), queues messages
and applies for one node; `deliver` hands queued messages over (optionally through a filter);
`stabilize` repeats both until the group is quiet. Every applied value is recorded per slot
across all nodes and incarnations, so tests can check that no slot ever had two chosen values.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tests.unit.raft.harness import decode_state, encode_state
from triumvir.consensus.paxos.config import PaxosConfig
from triumvir.consensus.paxos.core import PaxosCore
from triumvir.consensus.paxos.types import PaxosMessage
from triumvir.consensus.raft.core import Role
from triumvir.consensus.raft.types import ConfState, Entry, EntryKind, ReadState, Snapshot
from triumvir.consensus.storage.memory import MemoryStorage

MAX_STABILIZE_ROUNDS = 500
# True = deliver, False = drop, a message = deliver this (edited) message instead
MessageFilter = Callable[[PaxosMessage], bool | PaxosMessage]


@dataclass
class Node:
    core: PaxosCore | None
    config: PaxosConfig
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    data: list[bytes] = field(default_factory=list)  # the state machine: applied commands
    applied: list[Entry] = field(default_factory=list)  # since the last restore
    reads: list[ReadState] = field(default_factory=list)


class Group:
    def __init__(
        self,
        voters: Iterable[int] = (1, 2, 3),
        *,
        learners: Iterable[int] = (),
        joining: Iterable[int] = (),
        seed: int = 0,
        **config: object,
    ) -> None:
        self.rng = random.Random(seed)
        self.config_overrides = config
        conf = ConfState(voters=frozenset(voters), learners=frozenset(learners))
        self.nodes: dict[int, Node] = {}
        for node_id in sorted(conf.members()):
            self._add(node_id, conf)
        for node_id in joining:
            self._add(node_id, None)
        self.queue: list[PaxosMessage] = []
        self.cut_links: set[tuple[int, int]] = set()
        self.delivered: list[PaxosMessage] = []
        # slot -> (term, kind, data) of every value any node ever applied
        self.chosen_at: dict[int, tuple[int, EntryKind, bytes]] = {}
        self.conflicts: list[str] = []

    def _add(self, node_id: int, conf: ConfState | None) -> None:
        config = PaxosConfig(node_id=node_id, **self.config_overrides)  # type: ignore[arg-type]
        core = PaxosCore(config, random.Random(self.rng.random()), conf=conf)
        self.nodes[node_id] = Node(core, config)

    # -- access ----------------------------------------------------------------------------

    def core(self, node_id: int) -> PaxosCore:
        core = self.nodes[node_id].core
        assert core is not None, f"node {node_id} is down"
        return core

    def live(self) -> list[int]:
        return [node_id for node_id, node in sorted(self.nodes.items()) if node.core]

    def leaders(self) -> list[int]:
        return [n for n in self.live() if self.core(n).role is Role.LEADER]

    def leader(self) -> int:
        leaders = self.leaders()
        assert len(leaders) == 1, f"expected one leader, got {leaders}"
        return leaders[0]

    def applied_data(self, node_id: int) -> list[bytes]:
        return self.nodes[node_id].data

    # -- the driver loop -------------------------------------------------------------------

    def process_ready(self, node_id: int, *, torn_after: int | None = None) -> list[PaxosMessage]:
        """Run one Ready through the contract. With `torn_after=k` the node crashes while
        persisting: the snapshot and the first k entries are synced, the rest is lost."""
        node = self.nodes[node_id]
        core = self.core(node_id)
        if not core.has_ready():
            return []
        ready = core.ready()
        storage = node.storage
        if ready.snapshot is not None:
            storage.save_snapshot(ready.snapshot)
        if torn_after is not None:
            if ready.entries[:torn_after]:
                storage.append(ready.entries[:torn_after])
                storage.sync()
            if ready.entries[torn_after:]:
                storage.append(ready.entries[torn_after:])
            if ready.hard_state is not None:
                storage.set_hard_state(ready.hard_state)
            self.crash(node_id)
            return []
        if ready.entries:
            storage.append(ready.entries)
        if ready.hard_state is not None:
            storage.set_hard_state(ready.hard_state)
        storage.sync()
        messages = [m for m in ready.messages if isinstance(m, PaxosMessage)]
        self.queue.extend(messages)
        if ready.snapshot is not None:
            node.data = decode_state(ready.snapshot.data)
        for entry in ready.committed:
            self._apply(node_id, entry)
        node.reads.extend(ready.reads)
        if ready.snapshot_wanted:
            index = node.applied[-1].index if node.applied else core.applied_index
            snapshot = Snapshot(core.snapshot_meta_for(index), encode_state(node.data))
            storage.save_snapshot(snapshot)
            core.compact(snapshot)
        core.advance(ready)
        return messages

    def _apply(self, node_id: int, entry: Entry) -> None:
        node = self.nodes[node_id]
        node.applied.append(entry)
        if entry.kind is EntryKind.NORMAL:
            node.data.append(entry.data)
        value = (entry.term, entry.kind, entry.data)
        seen = self.chosen_at.setdefault(entry.index, value)
        if seen != value:
            self.conflicts.append(
                f"node {node_id} applied {value} at slot {entry.index}, another node {seen}"
            )

    def deliver(self, keep: MessageFilter | None = None) -> int:
        """Hand every queued message to its destination once; returns how many arrived.
        Messages produced meanwhile stay queued for the next call."""
        batch, self.queue = self.queue, []
        arrived = 0
        for msg in batch:
            if (msg.src, msg.dst) in self.cut_links:
                continue
            if keep is not None:
                verdict = keep(msg)
                if verdict is False:
                    continue
                if isinstance(verdict, PaxosMessage):
                    msg = verdict
            target = self.nodes.get(msg.dst)
            if target is None or target.core is None:
                continue
            self.delivered.append(msg)
            target.core.step(msg)
            arrived += 1
        return arrived

    def stabilize(self, keep: MessageFilter | None = None) -> None:
        for _ in range(MAX_STABILIZE_ROUNDS):
            for node_id in self.live():
                self.process_ready(node_id)
            if not self.queue:
                if not any(self.core(n).has_ready() for n in self.live()):
                    return
                continue
            self.deliver(keep)
        raise AssertionError("group did not stabilize")

    def tick(self, node_ids: Iterable[int] | None = None, times: int = 1) -> None:
        for _ in range(times):
            for node_id in self.live() if node_ids is None else node_ids:
                self.core(node_id).tick()

    def spread_chosen(self) -> None:
        """Tick only the leaders: a grown chosen prefix not yet carried by an ACCEPT reaches
        the acceptors once it has waited a whole tick, so within two ticks."""
        self.stabilize()
        for _ in range(2):
            self.tick(self.leaders())
            self.stabilize()

    def tick_and_stabilize(self, times: int, keep: MessageFilter | None = None) -> None:
        for _ in range(times):
            self.tick()
            self.stabilize(keep)

    # -- scenario helpers ------------------------------------------------------------------

    def elect(self, node_id: int, keep: MessageFilter | None = None) -> None:
        self.core(node_id).campaign()
        self.stabilize(keep)
        assert self.core(node_id).role is Role.LEADER, f"node {node_id} did not win"

    def propose(self, node_id: int, data: bytes) -> tuple[int, int]:
        result = self.core(node_id).propose(data)
        self.stabilize()
        return result

    def isolate(self, node_id: int) -> None:
        for other in self.nodes:
            if other != node_id:
                self.cut_links |= {(node_id, other), (other, node_id)}

    def heal(self) -> None:
        self.cut_links.clear()

    def crash(self, node_id: int) -> None:
        node = self.nodes[node_id]
        node.storage.crash()
        node.core = None
        self.queue = [m for m in self.queue if m.src != node_id]

    def restart(self, node_id: int) -> PaxosCore:
        node = self.nodes[node_id]
        recovered = node.storage.load()
        node.core = PaxosCore(
            node.config,
            random.Random(self.rng.random()),
            hard_state=recovered.hard_state,
            snapshot=recovered.snapshot,
            entries=recovered.entries,
        )
        node.applied = []
        node.data = decode_state(recovered.snapshot.data) if recovered.snapshot else []
        return node.core
