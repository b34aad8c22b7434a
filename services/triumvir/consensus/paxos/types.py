"""The Multi-Paxos core's vocabulary: ballots, slot values and peer messages.

The core shares the Raft core's storage-facing types (Entry, HardState, Snapshot, Ready), so
the same storage and driver serve both engines. How Paxos state maps onto them:

- A ballot `(round, node_id)` is one int, `round << 16 | node_id`; ints order ballots by
  round, then node id, so two proposers never share one.
- An accepted slot value is stored as `Entry(term=accepted ballot, index=slot, kind, data)`
  where `data` is `origin ballot (8 bytes) + payload`. The origin is the ballot of the
  proposer that first proposed the value; it travels unchanged when a later leader
  re-proposes the value, so every replica reports a chosen slot with the same term (the
  origin) and a proposer recognises its own value even when it was chosen under a later
  ballot.
- A slot in which nothing was accepted, below the highest accepted one, is stored as a
  placeholder `Entry(term=0, ...)` because storage keeps a log without holes.
- `HardState.term` is the promised ballot, `HardState.commit` the end of the chosen prefix and
  `HardState.vote` the last slot of the accepted log when the hard state was written (see
  core.py for why a restart needs it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from triumvir.consensus.raft.types import Entry, EntryKind, SnapshotMeta

BALLOT_NODE_BITS = 16
MAX_NODE_ID = (1 << BALLOT_NODE_BITS) - 1
NO_BALLOT = 0  # below every real ballot; also marks an empty slot in the stored log
# Ballot of the founding membership entries: round 1 of no node, identical on every founder
# and below every ballot a node campaigns with.
BOOTSTRAP_BALLOT = 1 << BALLOT_NODE_BITS
ORIGIN_BYTES = 8


def make_ballot(round_: int, node_id: int) -> int:
    assert 0 <= node_id <= MAX_NODE_ID, f"node id {node_id} does not fit a ballot"
    assert round_ >= 0, f"negative round {round_}"
    return round_ << BALLOT_NODE_BITS | node_id


def ballot_round(ballot: int) -> int:
    return ballot >> BALLOT_NODE_BITS


def ballot_node(ballot: int) -> int:
    return ballot & MAX_NODE_ID


def tag_value(origin: int, payload: bytes) -> bytes:
    return origin.to_bytes(ORIGIN_BYTES, "big") + payload


def value_origin(data: bytes) -> int:
    return int.from_bytes(data[:ORIGIN_BYTES], "big")


def committed_form(stored: Entry) -> Entry:
    """The chosen value as the state machine sees it: term = origin ballot, bare payload."""
    return Entry(
        term=value_origin(stored.data),
        index=stored.index,
        kind=stored.kind,
        data=stored.data[ORIGIN_BYTES:],
    )


def same_value(a: Entry, b: Entry) -> bool:
    """Whether two stored slot values carry the same proposal (ballots may differ)."""
    return a.kind is b.kind and a.data == b.data


def placeholder(slot: int) -> Entry:
    return Entry(NO_BALLOT, slot, EntryKind.NOOP, b"")


class PaxosMessageType(enum.Enum):
    """Same names and numbers as the wire enum. A plain Enum on purpose: its members never
    compare equal to the Raft message types (an IntEnum's would), so nothing that routes
    Raft messages by type can mistake one for the other."""

    PREPARE = 0
    PROMISE = 1
    ACCEPT = 2
    ACCEPTED = 3
    CHOSEN = 4
    HEARTBEAT = 5
    HEARTBEAT_RESP = 6
    CATCHUP_REQ = 7
    CATCHUP_RESP = 8
    SNAPSHOT = 9
    SNAPSHOT_RESP = 10
    READ_CONFIRM = 11
    READ_CONFIRM_RESP = 12
    NACK = 13


@dataclass(frozen=True, slots=True)
class PaxosMessage:
    """One peer message. `ballot` is always a ballot the sender has promised (so a restart
    must never bring the sender below it). The other fields by type:

    - PREPARE: slot (first slot phase 1 asks about).
    - PROMISE: slot (echoed), values (every accepted value at slot or above), chosen_upto;
      reject = the report is incomplete (values compacted or too many) and must not count.
    - ACCEPT: slot (the leader's first own slot), values (consecutive slots), chosen_upto.
    - ACCEPTED: slot (the acceptor's run of values of this ballot ends here),
      first_unchosen; reject = the batch left a gap and was refused.
    - CHOSEN: slot (leader's first own slot), chosen_upto.
    - HEARTBEAT: slot (leader's first own slot), chosen_upto, context (TRANSFER_CONTEXT asks
      the receiver to campaign). HEARTBEAT_RESP: slot (run end as in ACCEPTED),
      first_unchosen.
    - CATCHUP_REQ: first_unchosen. CATCHUP_RESP: values (chosen), chosen_upto.
    - SNAPSHOT: snapshot_meta (term 0: terms are local to each store), offset, chunk, done.
      SNAPSHOT_RESP: offset (bytes held), reject (rewind to offset), slot (installed at).
    - READ_CONFIRM: context (round tag). READ_CONFIRM_RESP: context echoed.
    - NACK: ballot (the higher ballot the sender promised), slot.
    """

    type: PaxosMessageType
    src: int
    dst: int
    ballot: int = NO_BALLOT
    slot: int = 0
    values: tuple[Entry, ...] = ()
    first_unchosen: int = 0
    chosen_upto: int = 0
    reject: bool = False
    context: bytes = b""
    snapshot_meta: SnapshotMeta | None = None
    offset: int = 0
    chunk: bytes = b""
    done: bool = False
