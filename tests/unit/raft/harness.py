"""A hand-driven network of Raft cores for unit tests.

Nothing moves unless a test says so: `process_ready` persists, queues messages and applies
for one node; `deliver` hands queued messages over (optionally through a filter);
`stabilize` repeats both until the cluster is quiet. Storage is a plain record per node that
survives `crash`/`restart`, and every applied entry is recorded so tests can check that no
two nodes ever applied different entries at one index.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from triumvir.consensus.raft.config import RaftConfig
from triumvir.consensus.raft.core import RaftCore, Role
from triumvir.consensus.raft.types import (
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Message,
    ReadState,
    Snapshot,
    SnapshotMeta,
)

MAX_STABILIZE_ROUNDS = 500
# True = deliver, False = drop, a Message = deliver this (edited) message instead
MessageFilter = Callable[[Message], bool | Message]


@dataclass
class Stored:
    """What one node's disk holds."""

    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None
    entries: list[Entry] = field(default_factory=list)

    def write_entries(self, entries: Iterable[Entry]) -> None:
        for entry in entries:
            base = self.snapshot.meta.index if self.snapshot else 0
            position = entry.index - base - 1
            del self.entries[position:]
            self.entries.append(entry)

    def write_snapshot(self, snapshot: Snapshot, *, replaces_log: bool) -> None:
        self.snapshot = snapshot
        index = snapshot.meta.index
        if replaces_log:
            self.entries = []
        else:
            self.entries = [entry for entry in self.entries if entry.index > index]


@dataclass
class Node:
    core: RaftCore | None
    config: RaftConfig
    stored: Stored = field(default_factory=Stored)
    applied: list[Entry] = field(default_factory=list)  # since the last snapshot restore
    data: list[bytes] = field(default_factory=list)  # the state machine: applied commands
    reads: list[ReadState] = field(default_factory=list)


def encode_state(data: list[bytes]) -> bytes:
    return b"".join(len(item).to_bytes(4, "big") + item for item in data)


def decode_state(blob: bytes) -> list[bytes]:
    items: list[bytes] = []
    position = 0
    while position < len(blob):
        size = int.from_bytes(blob[position : position + 4], "big")
        items.append(blob[position + 4 : position + 4 + size])
        position += 4 + size
    return items


class Network:
    def __init__(
        self,
        voters: Iterable[int] = (1, 2, 3),
        *,
        learners: Iterable[int] = (),
        joining: Iterable[int] = (),
        seed: int = 0,
        core_class: type[RaftCore] = RaftCore,
        **config: object,
    ) -> None:
        self.rng = random.Random(seed)
        self.core_class = core_class
        self.config_overrides = config
        conf = ConfState(voters=frozenset(voters), learners=frozenset(learners))
        self.nodes: dict[int, Node] = {}
        for node_id in sorted(conf.members()):
            self.nodes[node_id] = self._new_node(node_id, conf)
        for node_id in joining:
            self.nodes[node_id] = self._new_node(node_id, None)
        self.queue: list[Message] = []
        self.cut_links: set[tuple[int, int]] = set()
        self.delivered: list[Message] = []
        # index -> (term, data) of every entry any node ever applied
        self.applied_at: dict[int, tuple[int, bytes]] = {}
        self.apply_conflicts: list[str] = []

    def _config(self, node_id: int) -> RaftConfig:
        return RaftConfig(node_id=node_id, **self.config_overrides)  # type: ignore[arg-type]

    def _new_node(self, node_id: int, conf: ConfState | None) -> Node:
        config = self._config(node_id)
        core = self.core_class(config, random.Random(self.rng.random()), conf=conf)
        return Node(core, config)

    def add_node(self, node_id: int) -> RaftCore:
        """A brand-new node that waits to be added (no membership of its own)."""
        self.nodes[node_id] = self._new_node(node_id, None)
        return self.core(node_id)

    @classmethod
    def from_logs(
        cls,
        logs: dict[int, list[int]],
        *,
        terms: dict[int, int] | None = None,
        commit: int = 0,
        core_class: type[RaftCore] = RaftCore,
        **config: object,
    ) -> Network:
        """Nodes restarted from given logs (a list of entry terms per node, index 1 on)."""
        net = cls((), core_class=core_class, **config)
        conf = ConfState(voters=frozenset(logs))
        for node_id, log_terms in sorted(logs.items()):
            entries = [
                Entry(term, index, EntryKind.NORMAL, f"{node_id}:{index}".encode())
                for index, term in enumerate(log_terms, start=1)
            ]
            term = (terms or {}).get(node_id, max(log_terms, default=0))
            stored = Stored(
                hard_state=HardState(term=term, commit=commit),
                snapshot=Snapshot(SnapshotMeta(0, 0, conf), b""),
                entries=entries,
            )
            node = Node(None, net._config(node_id), stored)
            net.nodes[node_id] = node
            net.restart(node_id)
        return net

    # -- access ----------------------------------------------------------------------------

    def core(self, node_id: int) -> RaftCore:
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

    # -- the driver loop -------------------------------------------------------------------

    def process_ready(self, node_id: int) -> list[Message]:
        node = self.nodes[node_id]
        core = self.core(node_id)
        if not core.has_ready():
            return []
        ready = core.ready()
        stored = node.stored
        if ready.snapshot is not None:
            stored.write_snapshot(ready.snapshot, replaces_log=True)
        stored.write_entries(ready.entries)
        if ready.hard_state is not None:
            stored.hard_state = ready.hard_state
        self.queue.extend(ready.messages)
        if ready.snapshot is not None:
            node.data = decode_state(ready.snapshot.data)
        for entry in ready.committed:
            self._apply(node_id, entry)
        node.reads.extend(ready.reads)
        if ready.snapshot_wanted:
            index = node.applied[-1].index if node.applied else core.applied_index
            meta = core.snapshot_meta_for(index)
            snapshot = Snapshot(meta, encode_state(node.data))
            core.compact(snapshot)
            stored.write_snapshot(replace(snapshot, meta=core.snapshot_meta), replaces_log=False)
        core.advance(ready)
        return list(ready.messages)

    def _apply(self, node_id: int, entry: Entry) -> None:
        node = self.nodes[node_id]
        node.applied.append(entry)
        if entry.kind is EntryKind.NORMAL:
            node.data.append(entry.data)
        seen = self.applied_at.setdefault(entry.index, (entry.term, entry.data))
        if seen != (entry.term, entry.data):
            self.apply_conflicts.append(
                f"node {node_id} applied {(entry.term, entry.data)} at {entry.index}, "
                f"another node applied {seen}"
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
                if isinstance(verdict, Message):
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
        raise AssertionError("cluster did not stabilize")

    def tick(self, node_ids: Iterable[int] | None = None, times: int = 1) -> None:
        for _ in range(times):
            for node_id in self.live() if node_ids is None else node_ids:
                self.core(node_id).tick()

    def spread_commit(self) -> None:
        """Tick only the leaders: a commit index not yet carried by an APPEND with entries
        reaches the followers once it has waited a whole tick, so within two ticks."""
        self.stabilize()
        for _ in range(2):
            self.tick(self.leaders())
            self.stabilize()

    def tick_and_stabilize(self, times: int, keep: MessageFilter | None = None) -> None:
        for _ in range(times):
            self.tick()
            self.stabilize(keep)

    # -- helpers for scenarios -------------------------------------------------------------

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
        self.nodes[node_id].core = None
        self.queue = [m for m in self.queue if m.src != node_id]

    def restart(self, node_id: int) -> RaftCore:
        node = self.nodes[node_id]
        stored = node.stored
        node.core = self.core_class(
            node.config,
            random.Random(self.rng.random()),
            hard_state=stored.hard_state,
            snapshot=stored.snapshot,
            entries=tuple(stored.entries),
        )
        node.applied = []
        node.data = decode_state(stored.snapshot.data) if stored.snapshot else []
        return node.core

    def log_terms(self, node_id: int) -> list[int]:
        return [entry.term for entry in self.core(node_id).log_entries()]
