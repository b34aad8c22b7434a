"""The Raft core's vocabulary: entries, hard state, messages, snapshots and the Ready batch.

Everything here is a frozen value. The core consumes and produces these; the driver and
the simulator translate them to and from storage records and peer RPCs. Nothing here does
I/O, and nothing here imports anything beyond the standard library.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

NO_NODE = 0
"""Node ids are positive integers; 0 means "nobody" (no vote, no known leader)."""


class EntryKind(enum.IntEnum):
    NORMAL = 0  # an opaque command for the state machine
    NOOP = 1  # proposed by a new leader so it can commit entries of its own term
    CONF_CHANGE = 2  # data is an encoded ConfChange


class ConfChangeKind(enum.IntEnum):
    ADD_LEARNER = 0  # join as a non-voting member that receives the log
    PROMOTE = 1  # a caught-up learner becomes a voter
    REMOVE = 2  # a voter or learner leaves the group (may be the leader)


@dataclass(frozen=True, slots=True)
class ConfChange:
    kind: ConfChangeKind
    node_id: int
    context: bytes = b""  # opaque to the core (the driver puts the peer address here)

    def encode(self) -> bytes:
        return bytes([int(self.kind)]) + self.node_id.to_bytes(8, "big") + self.context

    @staticmethod
    def decode(data: bytes) -> ConfChange:
        if len(data) < 9:
            raise ValueError(f"conf change record too short: {len(data)} bytes")
        return ConfChange(ConfChangeKind(data[0]), int.from_bytes(data[1:9], "big"), data[9:])


@dataclass(frozen=True, slots=True)
class Entry:
    term: int
    index: int
    kind: EntryKind = EntryKind.NORMAL
    data: bytes = b""

    def size_bytes(self) -> int:
        return len(self.data) + 24


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be durable before any message that depends on it leaves the node."""

    term: int = 0
    vote: int = NO_NODE
    commit: int = 0


@dataclass(frozen=True, slots=True)
class ConfState:
    voters: frozenset[int] = frozenset()
    learners: frozenset[int] = frozenset()
    # opaque per-member context from the ConfChange that added it (peer addresses)
    contexts: tuple[tuple[int, bytes], ...] = ()
    # ids of members that were removed: never members again, so a new replica can never
    # inherit a removed one's votes, log position or messages still in flight
    retired: frozenset[int] = frozenset()

    def members(self) -> frozenset[int]:
        return self.voters | self.learners


@dataclass(frozen=True, slots=True)
class SnapshotMeta:
    index: int = 0
    term: int = 0
    conf: ConfState = field(default_factory=ConfState)


@dataclass(frozen=True, slots=True)
class Snapshot:
    meta: SnapshotMeta
    data: bytes


class MessageType(enum.IntEnum):
    PRE_VOTE = 0
    PRE_VOTE_RESP = 1
    VOTE = 2
    VOTE_RESP = 3
    APPEND = 4
    APPEND_RESP = 5
    HEARTBEAT = 6
    HEARTBEAT_RESP = 7
    SNAPSHOT = 8  # one chunk of an InstallSnapshot
    SNAPSHOT_RESP = 9
    READ_INDEX = 10  # follower asks the leader for a read index
    READ_INDEX_RESP = 11
    TIMEOUT_NOW = 12  # leadership transfer: campaign now
    PROPOSE = 13  # follower forwards a proposal to the leader


@dataclass(frozen=True, slots=True)
class Message:
    """One peer message. Which fields mean something depends on `type`:

    - PRE_VOTE / VOTE: term (the term campaigned for), log_term + index (candidate's last
      entry), context=b"transfer" when the campaign was started by TimeoutNow.
    - *_VOTE_RESP: reject.
    - APPEND: log_term + index (the entry preceding `entries`), entries, commit.
    - APPEND_RESP: index (last index matched on success), reject, reject_hint (follower's
      suggested next index), conflict_term (term of the conflicting entry, 0 if none).
    - HEARTBEAT: commit, context (read-index round tag). HEARTBEAT_RESP: context echoed.
    - SNAPSHOT: snapshot_meta, offset, chunk, done. SNAPSHOT_RESP: offset (bytes accepted
      so far), reject, index (snapshot index once installed).
    - READ_INDEX: context. READ_INDEX_RESP: context, index, reject.
    - PROPOSE: entries (term/index 0; filled in by the leader).
    """

    type: MessageType
    src: int
    dst: int
    term: int
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    reject: bool = False
    reject_hint: int = 0
    conflict_term: int = 0
    context: bytes = b""
    snapshot_meta: SnapshotMeta | None = None
    offset: int = 0
    chunk: bytes = b""
    done: bool = False


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read may be answered once the state machine has applied `index`."""

    context: bytes
    index: int


@dataclass(frozen=True, slots=True)
class Ready:
    """Everything the driver must do after the core changed, in this order:

    1. persist `snapshot` (if any), then `entries` (an entry at index i replaces the stored
       entry at i and everything after it), then `hard_state` (if any) — and fsync;
    2. only then send `messages`;
    3. restore the state machine from `snapshot` (if any), then apply `committed` in order;
    4. answer each of `reads` once applied >= its index;
    5. if `snapshot_wanted`, take a state-machine snapshot at the applied index and hand it
       to `core.compact(...)`;
    6. call `core.advance(ready)`.
    """

    hard_state: HardState | None = None
    entries: tuple[Entry, ...] = ()
    snapshot: Snapshot | None = None
    messages: tuple[Message, ...] = ()
    committed: tuple[Entry, ...] = ()
    reads: tuple[ReadState, ...] = ()
    snapshot_wanted: bool = False

    def is_empty(self) -> bool:
        return not (
            self.hard_state
            or self.entries
            or self.snapshot
            or self.messages
            or self.committed
            or self.reads
            or self.snapshot_wanted
        )
