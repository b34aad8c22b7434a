"""Paxos messages survive the trip through the `triumvir.v1.Paxos` wire form unchanged."""

from __future__ import annotations

import pytest

from triumvir.consensus.paxos.types import PaxosMessage, PaxosMessageType, make_ballot, tag_value
from triumvir.consensus.paxos_wire import message_from_proto, message_to_proto
from triumvir.consensus.raft.types import ConfState, Entry, EntryKind, SnapshotMeta
from triumvir.v1 import paxos_pb2

BALLOT = make_ballot(7, 3)


@pytest.mark.parametrize(
    "message",
    [
        PaxosMessage(PaxosMessageType.PREPARE, 3, 1, ballot=BALLOT, slot=12),
        PaxosMessage(
            PaxosMessageType.PROMISE,
            1,
            3,
            ballot=BALLOT,
            slot=12,
            chosen_upto=11,
            values=(
                Entry(make_ballot(5, 2), 12, EntryKind.NORMAL, tag_value(make_ballot(4, 1), b"x")),
                Entry(make_ballot(6, 2), 13, EntryKind.CONF_CHANGE, tag_value(1, b"\x00" * 9)),
            ),
        ),
        PaxosMessage(PaxosMessageType.ACCEPTED, 1, 3, ballot=BALLOT, slot=20, first_unchosen=15),
        PaxosMessage(PaxosMessageType.NACK, 2, 3, ballot=make_ballot(9, 2), slot=4),
        PaxosMessage(PaxosMessageType.READ_CONFIRM_RESP, 2, 3, ballot=BALLOT, context=b"tag"),
        PaxosMessage(
            PaxosMessageType.SNAPSHOT,
            3,
            4,
            ballot=BALLOT,
            snapshot_meta=SnapshotMeta(
                40, 0, ConfState(frozenset({1, 3}), frozenset({4}), ((4, b"addr"),))
            ),
            offset=64,
            chunk=b"abc",
            done=True,
        ),
        PaxosMessage(PaxosMessageType.SNAPSHOT_RESP, 4, 3, reject=True, offset=64),
    ],
)
def test_message_round_trips_through_the_wire(message: PaxosMessage) -> None:
    wire = message_to_proto(message, cluster_id=9)
    assert wire.cluster_id == 9
    decoded = message_from_proto(paxos_pb2.PaxosMessage.FromString(wire.SerializeToString()))
    assert decoded == message


def test_wire_numbers_match_the_proto_enum() -> None:
    for kind in PaxosMessageType:
        assert paxos_pb2.PaxosMessage.Type.Value(kind.name) == kind.value


def test_unknown_message_type_is_refused() -> None:
    wire = paxos_pb2.PaxosMessage(type=99, src=1, dst=2)
    with pytest.raises(ValueError, match="unknown Paxos message type"):
        message_from_proto(wire)


def test_out_of_range_ballot_node_is_refused() -> None:
    wire = paxos_pb2.PaxosMessage(type=0, src=1, dst=2)
    wire.ballot.node_id = 1 << 20
    with pytest.raises(ValueError, match="out of range"):
        message_from_proto(wire)
