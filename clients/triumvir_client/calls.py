"""Every unary call of the client as data: which service, which RPC, what request, and how
safe it is to repeat. The sync and asyncio clients both execute these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import Message

from triumvir.v1 import (
    cluster_pb2,
    cluster_pb2_grpc,
    kv_pb2,
    kv_pb2_grpc,
    lease_pb2,
    lease_pb2_grpc,
    maintenance_pb2,
    maintenance_pb2_grpc,
)
from triumvir_client import builders
from triumvir_client.builders import KeyLike
from triumvir_client.routing import CallKind


@dataclass(frozen=True, slots=True)
class CallSpec:
    stub_type: type[Any]
    method: str
    request: Message
    kind: CallKind
    pinned: str | None = None  # send only to this member, never elsewhere


def put(
    key: KeyLike,
    value: KeyLike,
    *,
    lease: int = 0,
    prev_kv: bool = False,
    ignore_value: bool = False,
    ignore_lease: bool = False,
) -> CallSpec:
    request = builders.put_request(
        key,
        value,
        lease=lease,
        prev_kv=prev_kv,
        ignore_value=ignore_value,
        ignore_lease=ignore_lease,
    )
    return CallSpec(kv_pb2_grpc.KVStub, "Put", request, CallKind.TAGGED_WRITE)


def get(key: KeyLike, **options: Any) -> CallSpec:
    request = builders.range_request(key, **options)
    return CallSpec(kv_pb2_grpc.KVStub, "Range", request, CallKind.READ)


def delete(
    key: KeyLike, *, range_end: KeyLike = b"", prefix: bool = False, prev_kv: bool = False
) -> CallSpec:
    request = builders.delete_request(key, range_end=range_end, prefix=prefix, prev_kv=prev_kv)
    return CallSpec(kv_pb2_grpc.KVStub, "DeleteRange", request, CallKind.TAGGED_WRITE)


def txn(
    compare: Iterable[kv_pb2.Compare],
    success: Iterable[kv_pb2.RequestOp],
    failure: Iterable[kv_pb2.RequestOp],
) -> CallSpec:
    request = builders.txn_request(compare, success, failure)
    return CallSpec(kv_pb2_grpc.KVStub, "Txn", request, CallKind.TAGGED_WRITE)


def compact(revision: int, physical: bool) -> CallSpec:
    request = kv_pb2.CompactionRequest(revision=revision, physical=physical)
    # No tag field: repeating a compaction that did happen yields OUT_OF_RANGE, not harm,
    # but a timed-out one is still reported as an unknown outcome.
    return CallSpec(kv_pb2_grpc.KVStub, "Compact", request, CallKind.UNTAGGED_WRITE)


def lease_grant(ttl: int, lease_id: int) -> CallSpec:
    request = lease_pb2.LeaseGrantRequest(ttl=ttl, id=lease_id)
    return CallSpec(lease_pb2_grpc.LeaseStub, "Grant", request, CallKind.TAGGED_WRITE)


def lease_revoke(lease_id: int) -> CallSpec:
    request = lease_pb2.LeaseRevokeRequest(id=lease_id)
    return CallSpec(lease_pb2_grpc.LeaseStub, "Revoke", request, CallKind.TAGGED_WRITE)


def lease_time_to_live(lease_id: int, keys: bool) -> CallSpec:
    request = lease_pb2.LeaseTimeToLiveRequest(id=lease_id, keys=keys)
    return CallSpec(lease_pb2_grpc.LeaseStub, "TimeToLive", request, CallKind.READ)


def leases() -> CallSpec:
    request = lease_pb2.LeaseLeasesRequest()
    return CallSpec(lease_pb2_grpc.LeaseStub, "Leases", request, CallKind.READ)


def status(endpoint: str | None) -> CallSpec:
    request = cluster_pb2.StatusRequest()
    return CallSpec(cluster_pb2_grpc.ClusterStub, "Status", request, CallKind.READ, endpoint)


def member_list(linearizable: bool) -> CallSpec:
    request = cluster_pb2.MemberListRequest(linearizable=linearizable)
    return CallSpec(cluster_pb2_grpc.ClusterStub, "MemberList", request, CallKind.READ)


def member_add(
    peer_urls: Sequence[str], name: str, client_urls: Sequence[str], member_id: int
) -> CallSpec:
    request = cluster_pb2.MemberAddRequest(
        peer_urls=list(peer_urls), client_urls=list(client_urls), name=name, id=member_id
    )
    return CallSpec(cluster_pb2_grpc.ClusterStub, "MemberAdd", request, CallKind.UNTAGGED_WRITE)


def member_promote(member_id: int) -> CallSpec:
    request = cluster_pb2.MemberPromoteRequest(id=member_id)
    return CallSpec(cluster_pb2_grpc.ClusterStub, "MemberPromote", request, CallKind.UNTAGGED_WRITE)


def member_remove(member_id: int) -> CallSpec:
    request = cluster_pb2.MemberRemoveRequest(id=member_id)
    return CallSpec(cluster_pb2_grpc.ClusterStub, "MemberRemove", request, CallKind.UNTAGGED_WRITE)


def transfer_leader(target_id: int) -> CallSpec:
    request = cluster_pb2.TransferLeaderRequest(target_id=target_id)
    return CallSpec(
        cluster_pb2_grpc.ClusterStub, "TransferLeader", request, CallKind.UNTAGGED_WRITE
    )


def hash_at(revision: int) -> CallSpec:
    request = maintenance_pb2.HashRequest(revision=revision)
    return CallSpec(maintenance_pb2_grpc.MaintenanceStub, "Hash", request, CallKind.READ)


def merge_promotion(
    added: cluster_pb2.MemberAddResponse, promoted: cluster_pb2.MemberPromoteResponse
) -> cluster_pb2.MemberAddResponse:
    """The add response as it reads once the new member has been promoted to voter."""
    merged = cluster_pb2.MemberAddResponse()
    merged.CopyFrom(added)
    merged.member.is_learner = False
    del merged.members[:]
    merged.members.extend(promoted.members)
    return merged
