"""In-process fake members for client tests: small KV, Watch, Lease, Cluster and
Maintenance servicers on 127.0.0.1:0 that record what they receive and misbehave on cue.

They model only what the client relies on: the exactly-once tag table, leader hints in
the error details, dropped replies and broken watch streams.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, status_pb2
from grpc_status import rpc_status

from triumvir.v1 import (
    cluster_pb2,
    cluster_pb2_grpc,
    common_pb2,
    kv_pb2,
    kv_pb2_grpc,
    lease_pb2,
    lease_pb2_grpc,
    maintenance_pb2,
    maintenance_pb2_grpc,
    watch_pb2,
    watch_pb2_grpc,
)
from triumvir_client.routing import RetryPolicy

SERVER_THREADS = 8

NO_BACKOFF = RetryPolicy(attempts_max=4, backoff_ms=0, backoff_ms_max=0)
WAIT_S = 5.0  # generous bound on event waits; tests finish far sooner


def put_event(key: bytes, revision: int) -> common_pb2.Event:
    kv = common_pb2.KeyValue(key=key, value=b"v%d" % revision, mod_revision=revision)
    return common_pb2.Event(type=common_pb2.Event.PUT, kv=kv)


def events_response(*events: common_pb2.Event) -> watch_pb2.WatchResponse:
    return watch_pb2.WatchResponse(watch_id=1, events=list(events))


def created(revision: int) -> watch_pb2.WatchResponse:
    return watch_pb2.WatchResponse(
        watch_id=1, created=True, header=common_pb2.ResponseHeader(revision=revision)
    )


def abort_not_leader(context: grpc.ServicerContext, leader_id: int, leader_address: str) -> None:
    detail = any_pb2.Any()
    detail.Pack(common_pb2.LeaderHint(leader_id=leader_id, leader_address=leader_address))
    status = status_pb2.Status(
        code=code_pb2.UNAVAILABLE, message="not the leader", details=[detail]
    )
    context.abort_with_status(rpc_status.to_status(status))


@dataclass
class Member:
    """Shared state and behaviour switches of one fake member."""

    member_id: int = 1
    # When set, every write answers UNAVAILABLE with this (leader_id, leader_address).
    not_leader: tuple[int, str] | None = None
    # Writes to answer with DEADLINE_EXCEEDED after applying them (a lost reply).
    replies_to_drop: int = 0
    # Answer every write with DEADLINE_EXCEEDED without applying it.
    always_time_out: bool = False
    calls: list[tuple[str, object]] = field(default_factory=list)
    store: dict[bytes, common_pb2.KeyValue] = field(default_factory=dict)
    revision: int = 0
    applied: int = 0
    # client_id -> (sequence, response) of the last tagged write, as the real table keeps.
    last_result: dict[int, tuple[int, object]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def header(self) -> common_pb2.ResponseHeader:
        return common_pb2.ResponseHeader(member_id=self.member_id, revision=self.revision)

    def write(
        self,
        name: str,
        request: object,
        tag: common_pb2.RequestTag,
        context: grpc.ServicerContext,
        apply: Callable[[], object],
    ) -> object:
        with self.lock:
            self.calls.append((name, request))
            if self.not_leader is not None:
                abort_not_leader(context, *self.not_leader)
            if self.always_time_out:
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "commit timed out")
            remembered = self.last_result.get(tag.client_id)
            if tag.client_id and remembered is not None and remembered[0] == tag.sequence:
                response = remembered[1]
            else:
                response = apply()
                self.applied += 1
                if tag.client_id:
                    self.last_result[tag.client_id] = (tag.sequence, response)
            if self.replies_to_drop > 0:
                self.replies_to_drop -= 1
                context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "reply lost")
            return response


class FakeKV(kv_pb2_grpc.KVServicer):
    def __init__(self, member: Member) -> None:
        self.member = member

    def Put(self, request: kv_pb2.PutRequest, context: grpc.ServicerContext) -> kv_pb2.PutResponse:
        member = self.member

        def apply() -> kv_pb2.PutResponse:
            member.revision += 1
            old = member.store.get(request.key)
            kv = common_pb2.KeyValue(
                key=request.key,
                value=request.value,
                lease=request.lease,
                mod_revision=member.revision,
                create_revision=old.create_revision if old else member.revision,
                version=(old.version if old else 0) + 1,
            )
            member.store[request.key] = kv
            response = kv_pb2.PutResponse(header=member.header())
            if request.prev_kv and old is not None:
                response.prev_kv.CopyFrom(old)
            return response

        return member.write("Put", request, request.tag, context, apply)  # type: ignore[return-value]

    def Range(
        self, request: kv_pb2.RangeRequest, context: grpc.ServicerContext
    ) -> kv_pb2.RangeResponse:
        member = self.member
        with member.lock:
            member.calls.append(("Range", request))
            if member.not_leader is not None and not request.serializable:
                abort_not_leader(context, *member.not_leader)
            if request.range_end:
                kvs = [
                    kv
                    for key, kv in sorted(member.store.items())
                    if request.key <= key
                    and (request.range_end == b"\0" or key < request.range_end)
                ]
            else:
                kvs = [member.store[request.key]] if request.key in member.store else []
            response = kv_pb2.RangeResponse(header=member.header(), count=len(kvs))
            if not request.count_only:
                limited = kvs[: request.limit] if request.limit else kvs
                response.more = len(limited) < len(kvs)
                for kv in limited:
                    shown = response.kvs.add()
                    shown.CopyFrom(kv)
                    if request.keys_only:
                        shown.value = b""
            return response

    def DeleteRange(
        self, request: kv_pb2.DeleteRangeRequest, context: grpc.ServicerContext
    ) -> kv_pb2.DeleteRangeResponse:
        member = self.member

        def apply() -> kv_pb2.DeleteRangeResponse:
            if request.range_end:
                doomed = [k for k in member.store if request.key <= k < request.range_end]
            else:
                doomed = [request.key] if request.key in member.store else []
            if doomed:
                member.revision += 1
            response = kv_pb2.DeleteRangeResponse(header=member.header(), deleted=len(doomed))
            for key in sorted(doomed):
                old = member.store.pop(key)
                if request.prev_kv:
                    response.prev_kvs.add().CopyFrom(old)
            return response

        return member.write("DeleteRange", request, request.tag, context, apply)  # type: ignore[return-value]

    def Txn(self, request: kv_pb2.TxnRequest, context: grpc.ServicerContext) -> kv_pb2.TxnResponse:
        member = self.member

        def apply() -> kv_pb2.TxnResponse:
            # Enough of a Txn for the CLI: compares on value or version of single keys.
            succeeded = all(_holds(member.store.get(c.key), c) for c in request.compare)
            response = kv_pb2.TxnResponse(header=member.header(), succeeded=succeeded)
            for op in request.success if succeeded else request.failure:
                kind = op.WhichOneof("request")
                if kind == "request_put":
                    member.revision += 1
                    put = op.request_put
                    member.store[put.key] = common_pb2.KeyValue(
                        key=put.key, value=put.value, mod_revision=member.revision, version=1
                    )
                    response.responses.add().response_put.header.CopyFrom(member.header())
                elif kind == "request_range":
                    found = member.store.get(op.request_range.key)
                    ranged = response.responses.add().response_range
                    if found is not None:
                        ranged.kvs.add().CopyFrom(found)
                        ranged.count = 1
            return response

        return member.write("Txn", request, request.tag, context, apply)  # type: ignore[return-value]


def _holds(kv: common_pb2.KeyValue | None, compare: kv_pb2.Compare) -> bool:
    if compare.target == kv_pb2.Compare.VALUE:
        actual: object = kv.value if kv else b""
        expected: object = compare.value
    else:
        actual, expected = (kv.version if kv else 0), compare.version
    if compare.result == kv_pb2.Compare.EQUAL:
        return actual == expected
    if compare.result == kv_pb2.Compare.NOT_EQUAL:
        return actual != expected
    if compare.result == kv_pb2.Compare.GREATER:
        return actual > expected  # type: ignore[operator]
    return actual < expected  # type: ignore[operator]


@dataclass
class WatchScript:
    """What each successive Watch stream does: send these responses, then either break
    with `break_code` or stay open until the client goes away."""

    streams: list[list[watch_pb2.WatchResponse]] = field(default_factory=list)
    break_after: list[bool] = field(default_factory=list)
    break_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE
    creates: list[watch_pb2.WatchCreateRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FakeWatch(watch_pb2_grpc.WatchServicer):
    def __init__(self, script: WatchScript) -> None:
        self.script = script

    def Watch(
        self, request_iterator: Iterator[watch_pb2.WatchRequest], context: grpc.ServicerContext
    ) -> Iterator[watch_pb2.WatchResponse]:
        first = next(request_iterator)
        with self.script.lock:
            index = len(self.script.creates)
            self.script.creates.append(first.create_request)
        responses = self.script.streams[index] if index < len(self.script.streams) else []
        yield from responses
        if index < len(self.script.break_after) and self.script.break_after[index]:
            context.abort(self.script.break_code, "member stopping")
        # Hold the stream open until the client cancels or half-closes it.
        for _ in request_iterator:
            pass


class FakeLease(lease_pb2_grpc.LeaseServicer):
    def __init__(self, member: Member) -> None:
        self.member = member
        self.ttls: dict[int, int] = {}
        self.keepalive_requests: list[int] = []
        self.next_id = 100

    def Grant(
        self, request: lease_pb2.LeaseGrantRequest, context: grpc.ServicerContext
    ) -> lease_pb2.LeaseGrantResponse:
        def apply() -> lease_pb2.LeaseGrantResponse:
            lease_id = request.id or self.next_id
            self.next_id += 1
            self.ttls[lease_id] = request.ttl
            return lease_pb2.LeaseGrantResponse(
                header=self.member.header(), id=lease_id, ttl=request.ttl
            )

        return self.member.write("Grant", request, request.tag, context, apply)  # type: ignore[return-value]

    def Revoke(
        self, request: lease_pb2.LeaseRevokeRequest, context: grpc.ServicerContext
    ) -> lease_pb2.LeaseRevokeResponse:
        if request.id not in self.ttls:
            context.abort(grpc.StatusCode.NOT_FOUND, f"lease {request.id} not found")

        def apply() -> lease_pb2.LeaseRevokeResponse:
            del self.ttls[request.id]
            return lease_pb2.LeaseRevokeResponse(header=self.member.header())

        return self.member.write("Revoke", request, request.tag, context, apply)  # type: ignore[return-value]

    def TimeToLive(
        self, request: lease_pb2.LeaseTimeToLiveRequest, context: grpc.ServicerContext
    ) -> lease_pb2.LeaseTimeToLiveResponse:
        ttl = self.ttls.get(request.id)
        if ttl is None:
            return lease_pb2.LeaseTimeToLiveResponse(id=request.id, ttl=-1)
        keys = [kv.key for kv in self.member.store.values() if kv.lease == request.id]
        return lease_pb2.LeaseTimeToLiveResponse(
            id=request.id, ttl=ttl - 1, granted_ttl=ttl, keys=sorted(keys) if request.keys else []
        )

    def Leases(
        self, request: lease_pb2.LeaseLeasesRequest, context: grpc.ServicerContext
    ) -> lease_pb2.LeaseLeasesResponse:
        return lease_pb2.LeaseLeasesResponse(
            leases=[lease_pb2.LeaseStatus(id=lease_id) for lease_id in sorted(self.ttls)]
        )

    def KeepAlive(
        self,
        request_iterator: Iterator[lease_pb2.LeaseKeepAliveRequest],
        context: grpc.ServicerContext,
    ) -> Iterator[lease_pb2.LeaseKeepAliveResponse]:
        for request in request_iterator:
            self.keepalive_requests.append(request.id)
            yield lease_pb2.LeaseKeepAliveResponse(id=request.id, ttl=self.ttls.get(request.id, 0))


class FakeCluster(cluster_pb2_grpc.ClusterServicer):
    def __init__(self, member: Member) -> None:
        self.member = member
        self.members = [
            common_pb2.Member(id=1, name="one", peer_urls=["http://127.0.0.1:7001"]),
        ]

    def Status(
        self, request: cluster_pb2.StatusRequest, context: grpc.ServicerContext
    ) -> cluster_pb2.StatusResponse:
        return cluster_pb2.StatusResponse(
            header=self.member.header(),
            version="0.1.0",
            engine=cluster_pb2.StatusResponse.RAFT,
            leader_id=1,
            role=cluster_pb2.StatusResponse.LEADER,
            raft_term=3,
            commit_index=42,
            applied_index=41,
            db_size_bytes=4096,
        )

    def MemberList(
        self, request: cluster_pb2.MemberListRequest, context: grpc.ServicerContext
    ) -> cluster_pb2.MemberListResponse:
        return cluster_pb2.MemberListResponse(header=self.member.header(), members=self.members)

    def MemberAdd(
        self, request: cluster_pb2.MemberAddRequest, context: grpc.ServicerContext
    ) -> cluster_pb2.MemberAddResponse:
        added = common_pb2.Member(
            id=request.id or len(self.members) + 1,
            name=request.name,
            peer_urls=request.peer_urls,
            is_learner=True,
        )
        self.members.append(added)
        return cluster_pb2.MemberAddResponse(member=added, members=self.members)


class FakeMaintenance(maintenance_pb2_grpc.MaintenanceServicer):
    def __init__(self, member: Member, chunks: list[bytes], *, corrupt: bool = False) -> None:
        self.member = member
        self.chunks = chunks
        self.corrupt = corrupt

    def Snapshot(
        self, request: maintenance_pb2.SnapshotRequest, context: grpc.ServicerContext
    ) -> Iterator[maintenance_pb2.SnapshotResponse]:
        digest = hashlib.sha256(b"".join(self.chunks)).digest()
        if self.corrupt:
            digest = bytes(32)
        remaining = sum(len(chunk) for chunk in self.chunks)
        for index, chunk in enumerate(self.chunks):
            remaining -= len(chunk)
            response = maintenance_pb2.SnapshotResponse(remaining_bytes=remaining, blob=chunk)
            if index == 0:
                response.header.CopyFrom(self.member.header())
            if index == len(self.chunks) - 1:
                response.sha256 = digest
            yield response


class FakeServer:
    """One fake member listening on an ephemeral port."""

    def __init__(
        self,
        member: Member | None = None,
        *,
        watch: WatchScript | None = None,
        snapshot_chunks: list[bytes] | None = None,
        corrupt_snapshot: bool = False,
    ) -> None:
        self.member = member or Member()
        self.watch = watch or WatchScript()
        self.kv = FakeKV(self.member)
        self.lease = FakeLease(self.member)
        self.cluster = FakeCluster(self.member)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=SERVER_THREADS))
        kv_pb2_grpc.add_KVServicer_to_server(self.kv, self.server)
        watch_pb2_grpc.add_WatchServicer_to_server(FakeWatch(self.watch), self.server)
        lease_pb2_grpc.add_LeaseServicer_to_server(self.lease, self.server)
        cluster_pb2_grpc.add_ClusterServicer_to_server(self.cluster, self.server)
        maintenance_pb2_grpc.add_MaintenanceServicer_to_server(
            FakeMaintenance(self.member, snapshot_chunks or [b"snap"], corrupt=corrupt_snapshot),
            self.server,
        )
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"
        self.server.start()

    def calls_named(self, name: str) -> list[object]:
        return [request for called, request in self.member.calls if called == name]

    def stop(self) -> None:
        self.server.stop(grace=None)

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
