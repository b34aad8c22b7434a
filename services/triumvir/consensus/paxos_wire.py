"""Translation between the Multi-Paxos core's message values and the `triumvir.v1.Paxos` wire
form.

Kept outside the core package so the core never touches protobuf. A slot value's bytes on
the wire are exactly the stored `Entry.data` (origin ballot + payload), and a ballot int is
split into its (round, node_id) pair. Snapshot terms are local storage bookkeeping and do not
travel: the core sends them as 0.
"""

from __future__ import annotations

from triumvir.consensus.paxos.types import (
    MAX_NODE_ID,
    PaxosMessage,
    PaxosMessageType,
    ballot_node,
    ballot_round,
    make_ballot,
)
from triumvir.consensus.raft.types import Entry, EntryKind, SnapshotMeta
from triumvir.consensus.raft_wire import conf_from_proto, conf_to_proto
from triumvir.v1 import paxos_pb2

_MESSAGE_TYPES = {kind.value: kind for kind in PaxosMessageType}
_ENTRY_KINDS = tuple(EntryKind)


def _ballot_to_proto(ballot: int, out: paxos_pb2.Ballot) -> None:
    out.round = ballot_round(ballot)
    out.node_id = ballot_node(ballot)


def _ballot_from_proto(wire: paxos_pb2.Ballot) -> int:
    if wire.node_id > MAX_NODE_ID:
        raise ValueError(f"ballot node id {wire.node_id} is out of range")
    return make_ballot(wire.round, wire.node_id)


def message_to_proto(message: PaxosMessage, cluster_id: int) -> paxos_pb2.PaxosMessage:
    out = paxos_pb2.PaxosMessage(
        cluster_id=cluster_id,
        type=message.type.value,
        src=message.src,
        dst=message.dst,
        slot=message.slot,
        first_unchosen=message.first_unchosen,
        chosen_upto=message.chosen_upto,
        reject=message.reject,
        context=message.context,
        offset=message.offset,
        chunk=message.chunk,
        done=message.done,
    )
    _ballot_to_proto(message.ballot, out.ballot)
    if message.values:
        add = out.values.add
        for value in message.values:
            wire = add(slot=value.index, value=value.data, kind=int(value.kind))
            _ballot_to_proto(value.term, wire.accepted_ballot)
    meta = message.snapshot_meta
    if meta is not None:
        out.snapshot_meta.slot = meta.index
        conf_to_proto(meta.conf, out.snapshot_meta.conf)
    return out


def message_from_proto(wire: paxos_pb2.PaxosMessage) -> PaxosMessage:
    """Raises ValueError for a message type or value kind this build does not know."""
    kind = _MESSAGE_TYPES.get(wire.type)
    if kind is None:
        raise ValueError(f"unknown Paxos message type {wire.type}")
    values: list[Entry] = []
    for value in wire.values:
        if value.kind >= len(_ENTRY_KINDS):
            raise ValueError(f"unknown slot value kind {value.kind}")
        values.append(
            Entry(
                term=_ballot_from_proto(value.accepted_ballot),
                index=value.slot,
                kind=_ENTRY_KINDS[value.kind],
                data=value.value,
            )
        )
    meta = None
    if wire.HasField("snapshot_meta"):
        meta = SnapshotMeta(
            index=wire.snapshot_meta.slot, term=0, conf=conf_from_proto(wire.snapshot_meta.conf)
        )
    return PaxosMessage(
        type=kind,
        src=wire.src,
        dst=wire.dst,
        ballot=_ballot_from_proto(wire.ballot),
        slot=wire.slot,
        values=tuple(values),
        first_unchosen=wire.first_unchosen,
        chosen_upto=wire.chosen_upto,
        reject=wire.reject,
        context=wire.context,
        snapshot_meta=meta,
        offset=wire.offset,
        chunk=wire.chunk,
        done=wire.done,
    )
