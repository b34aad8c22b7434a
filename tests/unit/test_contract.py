"""The public Protobuf contract: service and RPC names, streaming kinds, and the mirror
between the peer messages and the Raft core's types.

Names are part of the product (users script them with grpcurl), so a rename here must be
a deliberate, visible change.
"""

from __future__ import annotations

import dataclasses

import pytest
from google.protobuf.descriptor import FileDescriptor, ServiceDescriptor

from triumvir.consensus.raft import types
from triumvir.v1 import (
    cluster_pb2,
    command_pb2,
    common_pb2,
    kv_pb2,
    lease_pb2,
    maintenance_pb2,
    paxos_pb2,
    raft_pb2,
    watch_pb2,
)

PACKAGE = "triumvir.v1"

UNARY = (False, False)
SERVER_STREAM = (False, True)
CLIENT_STREAM = (True, False)
BIDI = (True, True)

# (file, service) -> {rpc name: (client_streaming, server_streaming)}
EXPECTED_SERVICES: dict[tuple[FileDescriptor, str], dict[str, tuple[bool, bool]]] = {
    (kv_pb2.DESCRIPTOR, "KV"): {
        "Put": UNARY,
        "Range": UNARY,
        "DeleteRange": UNARY,
        "Txn": UNARY,
        "Compact": UNARY,
    },
    (watch_pb2.DESCRIPTOR, "Watch"): {"Watch": BIDI},
    (lease_pb2.DESCRIPTOR, "Lease"): {
        "Grant": UNARY,
        "Revoke": UNARY,
        "KeepAlive": BIDI,
        "TimeToLive": UNARY,
        "Leases": UNARY,
    },
    (cluster_pb2.DESCRIPTOR, "Cluster"): {
        "Status": UNARY,
        "MemberList": UNARY,
        "MemberAdd": UNARY,
        "MemberPromote": UNARY,
        "MemberRemove": UNARY,
        "TransferLeader": UNARY,
    },
    (maintenance_pb2.DESCRIPTOR, "Maintenance"): {"Snapshot": SERVER_STREAM, "Hash": UNARY},
    (raft_pb2.DESCRIPTOR, "Raft"): {"Stream": CLIENT_STREAM, "Send": UNARY},
    (paxos_pb2.DESCRIPTOR, "Paxos"): {"Stream": CLIENT_STREAM},
}

# Files that define messages only.
SERVICELESS_FILES = (common_pb2.DESCRIPTOR, command_pb2.DESCRIPTOR)


def _service(file: FileDescriptor, name: str) -> ServiceDescriptor:
    assert name in file.services_by_name, f"{file.name} lacks service {name}"
    return file.services_by_name[name]


@pytest.mark.parametrize(
    ("file", "service_name"),
    list(EXPECTED_SERVICES),
    ids=[name for _, name in EXPECTED_SERVICES],
)
def test_service_has_exactly_the_listed_rpcs(file: FileDescriptor, service_name: str) -> None:
    expected = EXPECTED_SERVICES[(file, service_name)]
    service = _service(file, service_name)
    assert service.full_name == f"{PACKAGE}.{service_name}"
    actual = {
        name: (method.client_streaming, method.server_streaming)
        for name, method in service.methods_by_name.items()
    }
    assert actual == expected


def test_each_file_defines_only_its_listed_service() -> None:
    for file, service_name in EXPECTED_SERVICES:
        assert set(file.services_by_name) == {service_name}, file.name
    for file in SERVICELESS_FILES:
        assert not file.services_by_name, file.name


def test_every_file_is_in_the_package() -> None:
    files = [file for file, _ in EXPECTED_SERVICES] + list(SERVICELESS_FILES)
    for file in files:
        assert file.package == PACKAGE
        assert file.name.startswith("triumvir/v1/")


def test_every_response_of_a_client_rpc_carries_a_header() -> None:
    peer_services = {"Raft", "Paxos"}
    for (file, service_name), _ in EXPECTED_SERVICES.items():
        if service_name in peer_services:
            continue
        for method in _service(file, service_name).methods_by_name.values():
            header = method.output_type.fields_by_name.get("header")
            assert header is not None, method.full_name
            assert header.message_type.full_name == f"{PACKAGE}.ResponseHeader"


def test_raft_message_type_mirrors_core_message_type() -> None:
    proto_values = {
        value.name: value.number for value in raft_pb2.RaftMessage.Type.DESCRIPTOR.values
    }
    core_values = {member.name: member.value for member in types.MessageType}
    assert proto_values == core_values


def test_entry_kind_mirrors_core_entry_kind() -> None:
    proto_values = {value.name: value.number for value in raft_pb2.Entry.Kind.DESCRIPTOR.values}
    assert proto_values == {member.name: member.value for member in types.EntryKind}


def test_raft_message_fields_mirror_core_message() -> None:
    proto_fields = set(raft_pb2.RaftMessage.DESCRIPTOR.fields_by_name)
    core_fields = {f.name for f in dataclasses.fields(types.Message)}
    # cluster_id is transport-only: it keeps members of different groups apart.
    assert proto_fields == core_fields | {"cluster_id"}
    assert set(raft_pb2.Entry.DESCRIPTOR.fields_by_name) == {
        f.name for f in dataclasses.fields(types.Entry)
    }


def test_snapshot_meta_presence_is_tracked() -> None:
    message = raft_pb2.RaftMessage(type=raft_pb2.RaftMessage.SNAPSHOT)
    assert not message.HasField("snapshot_meta")
    message.snapshot_meta.SetInParent()
    decoded = raft_pb2.RaftMessage.FromString(message.SerializeToString())
    # An all-default meta must still be told apart from "no meta" after the wire.
    assert decoded.HasField("snapshot_meta")
    assert decoded.snapshot_meta.index == 0


def _populated_raft_message() -> raft_pb2.RaftMessage:
    return raft_pb2.RaftMessage(
        cluster_id=0xC0FFEE,
        type=raft_pb2.RaftMessage.SNAPSHOT,
        src=1,
        dst=3,
        term=7,
        log_term=6,
        index=41,
        entries=[
            raft_pb2.Entry(term=6, index=41, kind=raft_pb2.Entry.NOOP),
            raft_pb2.Entry(term=7, index=42, kind=raft_pb2.Entry.NORMAL, data=b"\x00put"),
            raft_pb2.Entry(term=7, index=43, kind=raft_pb2.Entry.CONF_CHANGE, data=b"\x01cc"),
        ],
        commit=40,
        reject=True,
        reject_hint=39,
        conflict_term=5,
        context=b"transfer",
        snapshot_meta=raft_pb2.SnapshotMeta(
            index=100,
            term=6,
            conf=raft_pb2.ConfState(
                voters=[1, 2, 3],
                learners=[4],
                contexts=[
                    raft_pb2.MemberContext(id=1, context=b"10.0.0.1:2380"),
                    raft_pb2.MemberContext(id=4, context=b"10.0.0.4:2380"),
                ],
            ),
        ),
        offset=65536,
        chunk=bytes(range(256)),
        done=True,
    )


def test_populated_raft_message_round_trips() -> None:
    original = _populated_raft_message()
    wire = original.SerializeToString()
    decoded = raft_pb2.RaftMessage.FromString(wire)
    assert decoded == original
    # Spot-check fields that defaults would hide if a field were silently dropped.
    assert decoded.cluster_id == 0xC0FFEE
    assert decoded.type == types.MessageType.SNAPSHOT
    assert [e.kind for e in decoded.entries] == [
        types.EntryKind.NOOP,
        types.EntryKind.NORMAL,
        types.EntryKind.CONF_CHANGE,
    ]
    assert decoded.entries[1].data == b"\x00put"
    assert list(decoded.snapshot_meta.conf.voters) == [1, 2, 3]
    assert decoded.snapshot_meta.conf.contexts[1].context == b"10.0.0.4:2380"
    assert decoded.chunk == bytes(range(256))
    assert decoded.done and decoded.reject
    # Every field was set to a non-default value, so every one must be on the wire.
    assert {field.name for field, _ in decoded.ListFields()} == set(
        raft_pb2.RaftMessage.DESCRIPTOR.fields_by_name
    )


def test_paxos_message_round_trips() -> None:
    original = paxos_pb2.PaxosMessage(
        cluster_id=9,
        type=paxos_pb2.PaxosMessage.PROMISE,
        src=2,
        dst=1,
        ballot=paxos_pb2.Ballot(round=5, node_id=1),
        slot=17,
        values=[
            paxos_pb2.SlotValue(
                slot=17,
                accepted_ballot=paxos_pb2.Ballot(round=4, node_id=3),
                value=b"cmd",
                kind=paxos_pb2.SlotValue.NOOP,
            )
        ],
        first_unchosen=17,
        chosen_upto=16,
    )
    decoded = paxos_pb2.PaxosMessage.FromString(original.SerializeToString())
    assert decoded == original
    assert decoded.values[0].accepted_ballot.round == 4


def test_command_carries_exactly_once_tag_and_result() -> None:
    command = command_pb2.Command(
        tag=common_pb2.RequestTag(client_id=77, sequence=3),
        leader_time_ms=1_700_000_000_000,
        put=kv_pb2.PutRequest(key=b"k", value=b"v"),
    )
    decoded = command_pb2.Command.FromString(command.SerializeToString())
    assert decoded.WhichOneof("op") == "put"
    assert (decoded.tag.client_id, decoded.tag.sequence) == (77, 3)

    result = command_pb2.CommandResult(error=command_pb2.CommandResult.Status(code=5))
    assert result.WhichOneof("result") == "error"
    assert command_pb2.CommandResult.FromString(result.SerializeToString()).error.code == 5
