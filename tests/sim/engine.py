"""How the simulator drives one consensus engine: the adapter a second engine plugs into.

The simulator relies only on the core contract every engine shares (tick, step, propose,
read_index, ready, advance, ...). What differs between engines — what a node persists, how
it restarts from storage, how committed log positions and snapshots look — sits behind
`Engine` (one per run) and `Replica` (one per node incarnation). The checkers read replicas
through the engine-neutral `NodeView`, `LogRecord` and `Applied` values.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from tests.checkers.invariants import LogRecord
from triumvir.consensus.paxos.config import ACCEPT_WINDOW_FACTOR, PaxosConfig
from triumvir.consensus.paxos.core import PaxosCore
from triumvir.consensus.paxos.types import PaxosMessage, ballot_node, ballot_round
from triumvir.consensus.raft.config import RaftConfig
from triumvir.consensus.raft.core import RaftCore, Role
from triumvir.consensus.raft.errors import NotLeader, RaftError
from triumvir.consensus.raft.membership import apply_conf_change
from triumvir.consensus.raft.types import (
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryKind,
    Message,
    MessageType,
    Ready,
    Snapshot,
    SnapshotMeta,
)
from triumvir.consensus.storage.memory import MemoryStorage


@dataclass(frozen=True, slots=True)
class SimLimits:
    """Deliberately small core limits so batching, pipelining, compaction and chunked
    snapshot transfer all happen within a short run."""

    election_ticks: int = 10
    heartbeat_ticks: int = 3
    max_append_entries: int = 8
    max_inflight_appends: int = 4
    max_uncommitted_entries: int = 200
    snapshot_threshold_entries: int = 30
    snapshot_chunk_bytes: int = 64
    learner_catchup_entries: int = 10
    thrifty: bool = False  # Raft only: a lone write goes at once only to a quorum


@dataclass(frozen=True, slots=True)
class NodeView:
    """What the checkers and the operator may read of a replica at any moment."""

    node_id: int
    term: int
    vote: int  # whom the node promised its vote in `term` (0: nobody)
    is_leader: bool
    leader_id: int
    commit_index: int
    applied_index: int
    last_index: int
    snapshot_index: int
    voters: frozenset[int]
    learners: frozenset[int]


@dataclass(frozen=True, slots=True)
class Applied:
    """One committed log position, as the state machine sees it."""

    index: int
    term: int
    data: bytes
    is_command: bool  # False for no-ops and membership changes
    is_membership: bool
    payload: bytes  # as in LogRecord: what the state-machine safety checker compares


@dataclass(frozen=True, slots=True)
class MembershipChange:
    """An engine-neutral request to change the group."""

    kind: str  # "add_learner" | "promote" | "remove"
    node_id: int


class SimCore(Protocol):
    """The part of a core's contract the simulator calls directly."""

    def tick(self) -> None: ...
    def step(self, msg: Any) -> None: ...
    def propose(self, data: bytes) -> tuple[int, int]: ...
    def read_index(self, context: bytes) -> None: ...
    def transfer_leader(self, target: int) -> None: ...
    def has_ready(self) -> bool: ...
    def ready(self) -> Any: ...
    def advance(self, ready: Any) -> None: ...


class CrashableStorage(Protocol):
    def crash(self) -> None:
        """Lose everything written since the last sync, as a power cut would."""
        ...


class Replica(Protocol):
    """One incarnation of a node: a core bound to its storage, from start until crash."""

    core: SimCore

    def status(self) -> tuple[int, bool]:
        """(current term, whether this node leads it): read after every input."""
        ...

    def is_leader(self) -> bool: ...

    def persist(self, ready: Any, *, synced_entries: int | None = None) -> None:
        """Step 1 of the ready contract. With `synced_entries=k` only the snapshot and the
        first k entries are made durable; the rest is written but left unsynced (the caller
        is about to crash the node: a torn write)."""
        ...

    def persisted_records(self, ready: Any) -> Sequence[LogRecord]: ...

    def restored_state(self) -> tuple[int, int, bytes] | None:
        """(index, term, data) of the state-machine snapshot the node restarts from."""
        ...

    def ready_snapshot(self, ready: Any) -> tuple[int, int, bytes] | None:
        """(index, term, data) of a snapshot this ready asks the state machine to restore."""
        ...

    def messages(self, ready: Any) -> Sequence[Any]: ...
    def committed(self, ready: Any) -> Sequence[Applied]: ...
    def reads(self, ready: Any) -> Sequence[tuple[bytes, int]]: ...
    def snapshot_wanted(self, ready: Any) -> bool: ...

    def compact(self, index: int, term: int, data: bytes) -> None:
        """Persist a state-machine snapshot taken at applied `index` and compact the log."""
        ...

    def change_membership(self, change: MembershipChange) -> tuple[int, int]: ...
    def view(self) -> NodeView: ...
    def log(self) -> tuple[LogRecord, ...]: ...


class Engine(Protocol):
    name: str
    refusals: tuple[type[Exception], ...]  # every "no" a client or the operator may get

    def new_storage(self) -> CrashableStorage: ...

    def start(
        self,
        node_id: int,
        rng: random.Random,
        storage: Any,
        limits: SimLimits,
        founders: Sequence[int] | None,
    ) -> Replica:
        """A replica from whatever `storage` holds. `founders` is the founding membership
        for a founding member (used when its storage is empty), None for a joining node."""
        ...

    def leader_hint(self, error: Exception) -> int:
        """The leader a refusal points at, 0 if none."""
        ...

    def envelope(self, msg: Any) -> tuple[int, int, int, int]:
        """(src, dst, term floor, vote granted to) of a message about to be sent. The last
        two say what sending it commits the sender to across a crash: a term it must never
        fall below, and the candidate it gave its vote in that term (0 if none)."""
        ...

    def message_summary(self, msg: Any) -> tuple[object, ...]:
        """A cheap deterministic fingerprint of a message for the trace: plain values only."""
        ...

    def message_promise(self, msg: Any) -> tuple[int, int]:
        """What sending `msg` commits its sender to across a crash: (the term it must
        never fall below, the candidate it granted its vote to in that term or 0)."""
        ...


# --- Raft ----------------------------------------------------------------------------------

_CONF_KINDS = {
    "add_learner": ConfChangeKind.ADD_LEARNER,
    "promote": ConfChangeKind.PROMOTE,
    "remove": ConfChangeKind.REMOVE,
}


def _payload(entry: Entry) -> bytes:
    return bytes([int(entry.kind)]) + entry.data


def persist_ready(storage: MemoryStorage, ready: Ready, synced_entries: int | None) -> None:
    """Step 1 of the Ready contract, shared by both engines (see `Replica.persist`)."""
    if ready.snapshot is not None:
        storage.save_snapshot(ready.snapshot)
    entries = ready.entries
    if synced_entries is None:
        if entries:
            storage.append(entries)
        if ready.hard_state is not None:
            storage.set_hard_state(ready.hard_state)
        storage.sync()
        return
    if synced_entries > 0:
        storage.append(entries[:synced_entries])
        storage.sync()
    if entries[synced_entries:]:
        storage.append(entries[synced_entries:])
    if ready.hard_state is not None:
        storage.set_hard_state(ready.hard_state)


class RaftReplica:
    __slots__ = ("_applied_conf", "_restored", "core", "storage")

    def __init__(self, core: RaftCore, storage: MemoryStorage, restored: Snapshot | None) -> None:
        self.core = core
        self.storage = storage
        self._restored = restored
        # membership as of the last applied entry: what a snapshot taken now must carry
        self._applied_conf = restored.meta.conf if restored is not None else ConfState()

    def status(self) -> tuple[int, bool]:
        core = self.core
        return core.term, core.role is Role.LEADER

    def is_leader(self) -> bool:
        return self.core.role is Role.LEADER

    def persist(self, ready: Ready, *, synced_entries: int | None = None) -> None:
        persist_ready(self.storage, ready, synced_entries)

    def persisted_records(self, ready: Ready) -> list[LogRecord]:
        return [LogRecord(e.index, e.term, _payload(e)) for e in ready.entries]

    def restored_state(self) -> tuple[int, int, bytes] | None:
        snapshot = self._restored
        if snapshot is None:
            return None
        return snapshot.meta.index, snapshot.meta.term, snapshot.data

    def ready_snapshot(self, ready: Ready) -> tuple[int, int, bytes] | None:
        snapshot = ready.snapshot
        if snapshot is None:
            return None
        self._applied_conf = snapshot.meta.conf
        return snapshot.meta.index, snapshot.meta.term, snapshot.data

    def messages(self, ready: Ready) -> tuple[Message, ...]:
        return ready.messages

    def committed(self, ready: Ready) -> list[Applied]:
        out: list[Applied] = []
        for entry in ready.committed:
            membership = entry.kind is EntryKind.CONF_CHANGE
            if membership:
                self._applied_conf = apply_conf_change(
                    self._applied_conf, ConfChange.decode(entry.data)
                )
            out.append(
                Applied(
                    entry.index,
                    entry.term,
                    entry.data,
                    entry.kind is EntryKind.NORMAL,
                    membership,
                    _payload(entry),
                )
            )
        return out

    def reads(self, ready: Ready) -> list[tuple[bytes, int]]:
        return [(read.context, read.index) for read in ready.reads]

    def snapshot_wanted(self, ready: Ready) -> bool:
        return ready.snapshot_wanted

    def compact(self, index: int, term: int, data: bytes) -> None:
        meta = self.core.snapshot_meta_for(index)
        # The core derives the membership from its log, the driver from the entries it
        # applied: if the two disagree, a snapshot would hand a follower the wrong group.
        expected = SnapshotMeta(index, term, self._applied_conf)
        assert meta == expected, f"snapshot meta {meta} but the applied entries give {expected}"
        snapshot = Snapshot(meta, data)
        self.storage.save_snapshot(snapshot)
        self.core.compact(snapshot)

    def change_membership(self, change: MembershipChange) -> tuple[int, int]:
        return self.core.propose_conf_change(ConfChange(_CONF_KINDS[change.kind], change.node_id))

    def view(self) -> NodeView:
        core = self.core
        conf = core.conf
        return NodeView(
            node_id=core.node_id,
            term=core.term,
            vote=core.vote,
            is_leader=core.role is Role.LEADER,
            leader_id=core.leader_id,
            commit_index=core.commit_index,
            applied_index=core.applied_index,
            last_index=core.last_index,
            snapshot_index=core.snapshot_meta.index,
            voters=conf.voters,
            learners=conf.learners,
        )

    def log(self) -> tuple[LogRecord, ...]:
        return tuple(LogRecord(e.index, e.term, _payload(e)) for e in self.core.log_entries())


class RaftEngine:
    name = "raft"
    refusals: tuple[type[Exception], ...] = (RaftError,)

    def new_storage(self) -> MemoryStorage:
        return MemoryStorage()

    def start(
        self,
        node_id: int,
        rng: random.Random,
        storage: Any,
        limits: SimLimits,
        founders: Sequence[int] | None,
    ) -> RaftReplica:
        recovered = storage.load()
        config = RaftConfig(
            node_id=node_id,
            election_ticks=limits.election_ticks,
            heartbeat_ticks=limits.heartbeat_ticks,
            max_inflight_appends=limits.max_inflight_appends,
            max_append_entries=limits.max_append_entries,
            max_uncommitted_entries=limits.max_uncommitted_entries,
            snapshot_threshold_entries=limits.snapshot_threshold_entries,
            snapshot_chunk_bytes=limits.snapshot_chunk_bytes,
            learner_catchup_entries=limits.learner_catchup_entries,
            thrifty=limits.thrifty,
        )
        # Founders always pass the founding membership, as a server's "initial cluster"
        # setting does; the core uses it only when its storage is empty.
        conf = ConfState(voters=frozenset(founders)) if founders else None
        core = RaftCore(
            config,
            rng,
            conf=conf,
            hard_state=recovered.hard_state,
            snapshot=recovered.snapshot,
            entries=recovered.entries,
        )
        return RaftReplica(core, storage, recovered.snapshot)

    def leader_hint(self, error: Exception) -> int:
        return error.leader_id if isinstance(error, NotLeader) else 0

    def envelope(self, msg: Message) -> tuple[int, int, int, int]:
        kind = msg.type
        if kind is MessageType.VOTE_RESP and not msg.reject:
            return msg.src, msg.dst, msg.term, msg.dst
        if kind is MessageType.PRE_VOTE or kind is MessageType.PRE_VOTE_RESP:
            return msg.src, msg.dst, 0, 0  # pre-votes speak of a term not yet entered
        return msg.src, msg.dst, msg.term, 0

    def message_summary(self, msg: Message) -> tuple[object, ...]:
        return (
            msg.type._value_,
            msg.src,
            msg.dst,
            msg.term,
            msg.log_term,
            msg.index,
            msg.commit,
            len(msg.entries),
            msg.reject,
            msg.offset,
            msg.context,
        )


# --- Multi-Paxos ---------------------------------------------------------------------------

# Checkers order leaders by "term"; a ballot is round << 16 | node, far too sparse for the
# term-by-term bookkeeping of the safety monitor, so they see a dense rank instead. The
# simulator's node ids stay below 16.
_RANK_NODE_BITS = 4


def ballot_rank(ballot: int) -> int:
    node = ballot_node(ballot)
    assert node < 1 << _RANK_NODE_BITS, f"node id {node} too large for a ballot rank"
    return ballot_round(ballot) << _RANK_NODE_BITS | node


def _paxos_record(entry: Entry) -> LogRecord:
    """A value as the state machine sees it: term = its origin ballot."""
    return LogRecord(entry.index, entry.term, _payload(entry))


class PaxosReplica:
    __slots__ = ("_applied_conf", "_restored", "core", "storage")

    def __init__(self, core: PaxosCore, storage: MemoryStorage, restored: Snapshot | None) -> None:
        self.core = core
        self.storage = storage
        self._restored = restored
        self._applied_conf = restored.meta.conf if restored is not None else ConfState()

    def status(self) -> tuple[int, bool]:
        core = self.core
        return ballot_rank(core.term), core.role is Role.LEADER

    def is_leader(self) -> bool:
        return self.core.role is Role.LEADER

    def persist(self, ready: Ready, *, synced_entries: int | None = None) -> None:
        persist_ready(self.storage, ready, synced_entries)

    def persisted_records(self, ready: Ready) -> list[LogRecord]:
        # Stored form: (slot, accepted ballot) names one proposal, whoever stored it (ballot 0
        # marks an empty slot).
        return [LogRecord(e.index, e.term, _payload(e)) for e in ready.entries]

    def restored_state(self) -> tuple[int, int, bytes] | None:
        snapshot = self._restored
        if snapshot is None:
            return None
        return snapshot.meta.index, snapshot.meta.term, snapshot.data

    def ready_snapshot(self, ready: Ready) -> tuple[int, int, bytes] | None:
        snapshot = ready.snapshot
        if snapshot is None:
            return None
        self._applied_conf = snapshot.meta.conf
        return snapshot.meta.index, snapshot.meta.term, snapshot.data

    def messages(self, ready: Ready) -> tuple[Any, ...]:
        return ready.messages

    def committed(self, ready: Ready) -> list[Applied]:
        out: list[Applied] = []
        for entry in ready.committed:
            membership = entry.kind is EntryKind.CONF_CHANGE
            if membership:
                self._applied_conf = apply_conf_change(
                    self._applied_conf, ConfChange.decode(entry.data)
                )
            out.append(
                Applied(
                    entry.index,
                    entry.term,
                    entry.data,
                    entry.kind is EntryKind.NORMAL,
                    membership,
                    _payload(entry),
                )
            )
        return out

    def reads(self, ready: Ready) -> list[tuple[bytes, int]]:
        return [(read.context, read.index) for read in ready.reads]

    def snapshot_wanted(self, ready: Ready) -> bool:
        return ready.snapshot_wanted

    def compact(self, index: int, term: int, data: bytes) -> None:
        # The snapshot carries the ballot stored at `index` (storage compares it with its own
        # entry there), not the origin the state machine saw: `term` is not used.
        meta = self.core.snapshot_meta_for(index)
        assert meta.conf == self._applied_conf, (
            f"snapshot membership {meta.conf} but the applied values give {self._applied_conf}"
        )
        snapshot = Snapshot(meta, data)
        self.storage.save_snapshot(snapshot)
        self.core.compact(snapshot)

    def change_membership(self, change: MembershipChange) -> tuple[int, int]:
        return self.core.propose_conf_change(ConfChange(_CONF_KINDS[change.kind], change.node_id))

    def view(self) -> NodeView:
        core = self.core
        conf = core.conf
        return NodeView(
            node_id=core.node_id,
            term=ballot_rank(core.term),
            vote=core.vote,
            is_leader=core.role is Role.LEADER,
            leader_id=core.leader_id,
            commit_index=core.commit_index,
            applied_index=core.applied_index,
            last_index=core.last_index,
            snapshot_index=core.snapshot_meta.index,
            voters=conf.voters,
            learners=conf.learners,
        )

    def log(self) -> tuple[LogRecord, ...]:
        return tuple(_paxos_record(e) for e in self.core.assigned_entries())


class PaxosEngine:
    name = "paxos"
    refusals: tuple[type[Exception], ...] = (RaftError,)

    def new_storage(self) -> MemoryStorage:
        return MemoryStorage()

    def start(
        self,
        node_id: int,
        rng: random.Random,
        storage: Any,
        limits: SimLimits,
        founders: Sequence[int] | None,
    ) -> PaxosReplica:
        recovered = storage.load()
        window = limits.max_uncommitted_entries
        config = PaxosConfig(
            node_id=node_id,
            election_ticks=limits.election_ticks,
            heartbeat_ticks=limits.heartbeat_ticks,
            max_inflight_slots=window,
            max_inflight_accepts=limits.max_inflight_appends,
            max_accept_values=limits.max_append_entries,
            max_catchup_values=limits.max_append_entries,
            max_promise_values=(ACCEPT_WINDOW_FACTOR + 1) * window,
            snapshot_threshold_entries=limits.snapshot_threshold_entries,
            snapshot_chunk_bytes=limits.snapshot_chunk_bytes,
            learner_catchup_entries=limits.learner_catchup_entries,
        )
        conf = ConfState(voters=frozenset(founders)) if founders else None
        core = PaxosCore(
            config,
            rng,
            conf=conf,
            hard_state=recovered.hard_state,
            snapshot=recovered.snapshot,
            entries=recovered.entries,
        )
        return PaxosReplica(core, storage, recovered.snapshot)

    def leader_hint(self, error: Exception) -> int:
        return error.leader_id if isinstance(error, NotLeader) else 0

    def message_route(self, msg: PaxosMessage) -> tuple[int, int]:
        return msg.src, msg.dst

    def envelope(self, msg: PaxosMessage) -> tuple[int, int, int, int]:
        # Every Paxos message carries a ballot its sender has promised; there are no votes.
        return msg.src, msg.dst, ballot_rank(msg.ballot), 0

    def message_summary(self, msg: PaxosMessage) -> tuple[object, ...]:
        return (
            msg.type.value,
            msg.src,
            msg.dst,
            msg.ballot,
            msg.slot,
            len(msg.values),
            msg.first_unchosen,
            msg.chosen_upto,
            msg.reject,
            msg.offset,
            msg.context,
        )


ENGINES: dict[str, Callable[[], Engine]] = {"raft": RaftEngine, "paxos": PaxosEngine}
