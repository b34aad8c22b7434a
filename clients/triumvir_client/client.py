"""The blocking client: every triumvir KV, Lease, Cluster and Maintenance call.

Calls find the leader in one hop (following LeaderHint), retry within bounds, and tag
every write so a retry is applied once. Thread-safe; tagged writes from one client are
serialised because the cluster remembers only the last result per client.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

import grpc

from triumvir.v1 import (
    cluster_pb2,
    kv_pb2,
    lease_pb2,
    maintenance_pb2,
    maintenance_pb2_grpc,
)
from triumvir_client import builders, calls, errors
from triumvir_client.builders import KeyLike
from triumvir_client.calls import CallSpec
from triumvir_client.client_streams import KeepAlive, StreamContext, Watch
from triumvir_client.routing import (
    CHANNEL_OPTIONS,
    DEFAULT_TIMEOUT_S,
    CallKind,
    EndpointSet,
    FailedAttempt,
    RetryPlan,
    RetryPolicy,
    parse_endpoints,
)
from triumvir_client.snapshots import SnapshotFile, SnapshotInfo
from triumvir_client.streams import WatchCursor
from triumvir_client.tags import TagSequence

# A learner is promoted only once it has caught up; `member_add(learner=False)` asks again
# this many times before giving up.
PROMOTE_ATTEMPTS_MAX = 20


class Client:
    """A connection to one triumvir consensus group.

    `endpoints` lists some or all members as `host:port` (a comma-separated string works).
    `timeout_s` bounds each call including its retries. `client_id` names this client for
    exactly-once writes; by default a random 63-bit id.
    """

    def __init__(
        self,
        endpoints: Sequence[str] | str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        client_id: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        listed = parse_endpoints(endpoints) if isinstance(endpoints, str) else list(endpoints)
        self._endpoints = EndpointSet(listed)
        self._timeout_s = timeout_s
        self._policy = retry or RetryPolicy()
        self._rng = random.Random()
        self._tags = TagSequence(client_id)
        self._channels: dict[str, grpc.Channel] = {}
        self._stubs: dict[tuple[str, type], Any] = {}
        self._channels_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def client_id(self) -> int:
        return self._tags.client_id

    @property
    def endpoints(self) -> tuple[str, ...]:
        return self._endpoints.all

    def close(self) -> None:
        with self._channels_lock:
            self._closed = True
            channels = list(self._channels.values())
            self._channels.clear()
            self._stubs.clear()
        for channel in channels:
            channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- KV --------------------------------------------------------------------------------

    def put(
        self,
        key: KeyLike,
        value: KeyLike,
        *,
        lease: int = 0,
        prev_kv: bool = False,
        ignore_value: bool = False,
        ignore_lease: bool = False,
    ) -> kv_pb2.PutResponse:
        return self._execute(
            calls.put(
                key,
                value,
                lease=lease,
                prev_kv=prev_kv,
                ignore_value=ignore_value,
                ignore_lease=ignore_lease,
            )
        )

    def get(
        self,
        key: KeyLike,
        *,
        range_end: KeyLike = b"",
        prefix: bool = False,
        serializable: bool = False,
        revision: int = 0,
        limit: int = 0,
        keys_only: bool = False,
        count_only: bool = False,
        sort_order: int = kv_pb2.RangeRequest.NONE,
        sort_target: int = kv_pb2.RangeRequest.KEY,
    ) -> kv_pb2.RangeResponse:
        return self._execute(
            calls.get(
                key,
                range_end=range_end,
                prefix=prefix,
                serializable=serializable,
                revision=revision,
                limit=limit,
                keys_only=keys_only,
                count_only=count_only,
                sort_order=sort_order,
                sort_target=sort_target,
            )
        )

    def delete(
        self, key: KeyLike, *, range_end: KeyLike = b"", prefix: bool = False, prev_kv: bool = False
    ) -> kv_pb2.DeleteRangeResponse:
        return self._execute(calls.delete(key, range_end=range_end, prefix=prefix, prev_kv=prev_kv))

    def txn(
        self,
        compare: Iterable[kv_pb2.Compare],
        success: Iterable[kv_pb2.RequestOp] = (),
        failure: Iterable[kv_pb2.RequestOp] = (),
    ) -> kv_pb2.TxnResponse:
        """If every compare holds run `success`, else `failure`; see `triumvir_client.builders`."""
        return self._execute(calls.txn(compare, success, failure))

    def compact(self, revision: int, *, physical: bool = False) -> kv_pb2.CompactionResponse:
        return self._execute(calls.compact(revision, physical))

    def watch(
        self,
        key: KeyLike,
        *,
        prefix: bool = False,
        range_end: KeyLike = b"",
        start_revision: int = 0,
        prev_kv: bool = False,
    ) -> Watch:
        """Events on a key or range, as an iterator; close it (or use `with`) to stop.

        A broken stream is reopened, on another member if needed, from the last revision
        seen + 1. A compacted start revision raises `errors.WatchCompacted`.
        """
        start, end = builders.key_range(key, range_end, prefix)
        cursor = WatchCursor(start, end, start_revision=start_revision, prev_kv=prev_kv)
        return Watch(self._stream_context(), cursor)

    # -- leases ----------------------------------------------------------------------------

    def lease_grant(self, ttl: int, id: int = 0) -> lease_pb2.LeaseGrantResponse:
        return self._execute(calls.lease_grant(ttl, id))

    def lease_revoke(self, id: int) -> lease_pb2.LeaseRevokeResponse:
        return self._execute(calls.lease_revoke(id))

    def lease_time_to_live(self, id: int, keys: bool = False) -> lease_pb2.LeaseTimeToLiveResponse:
        return self._execute(calls.lease_time_to_live(id, keys))

    def leases(self) -> lease_pb2.LeaseLeasesResponse:
        return self._execute(calls.leases())

    def keep_alive(self, lease_id: int) -> KeepAlive:
        """Refreshes the lease at a third of its TTL on a background thread until closed."""
        return KeepAlive(self._stream_context(), lease_id)

    # -- cluster ---------------------------------------------------------------------------

    def status(self, endpoint: str | None = None) -> cluster_pb2.StatusResponse:
        """Status of `endpoint`, or of whichever member answers first when None."""
        return self._execute(calls.status(endpoint))

    def member_list(self, *, linearizable: bool = False) -> cluster_pb2.MemberListResponse:
        return self._execute(calls.member_list(linearizable))

    def member_add(
        self,
        peer_urls: Sequence[str],
        name: str = "",
        learner: bool = True,
        *,
        client_urls: Sequence[str] = (),
        member_id: int = 0,
    ) -> cluster_pb2.MemberAddResponse:
        """Adds a learner; with `learner=False` also promotes it once it has caught up."""
        added = self._execute(calls.member_add(peer_urls, name, client_urls, member_id))
        if learner:
            return added
        return calls.merge_promotion(added, self._promote_when_caught_up(added.member.id))

    def member_promote(self, id: int) -> cluster_pb2.MemberPromoteResponse:
        return self._execute(calls.member_promote(id))

    def member_remove(self, id: int) -> cluster_pb2.MemberRemoveResponse:
        return self._execute(calls.member_remove(id))

    def transfer_leader(self, target_id: int) -> cluster_pb2.TransferLeaderResponse:
        return self._execute(calls.transfer_leader(target_id))

    # -- maintenance -----------------------------------------------------------------------

    def snapshot_save(self, path: str, *, timeout_s: float | None = None) -> SnapshotInfo:
        """Streams a backup into `path`; the file appears only once its SHA-256 checks out."""
        plan = self._plan(CallKind.READ, timeout_s=timeout_s)
        while True:
            attempt_timeout_s = plan.begin_attempt()
            stub = self._stub(plan.target, maintenance_pb2_grpc.MaintenanceStub)
            sink = SnapshotFile(path)
            try:
                for response in stub.Snapshot(
                    maintenance_pb2.SnapshotRequest(), timeout=attempt_timeout_s
                ):
                    sink.add(response)
                return sink.commit()
            except grpc.RpcError as error:
                sink.discard()
                step = plan.after_error(FailedAttempt.from_error(error))
            except BaseException:
                sink.discard()
                raise
            time.sleep(step.delay_s)

    def hash(self, revision: int = 0) -> maintenance_pb2.HashResponse:
        return self._execute(calls.hash_at(revision))

    # -- plumbing --------------------------------------------------------------------------

    def _plan(
        self, kind: CallKind, *, pinned: str | None = None, timeout_s: float | None = None
    ) -> RetryPlan:
        return RetryPlan(
            self._endpoints,
            kind=kind,
            timeout_s=timeout_s if timeout_s is not None else self._timeout_s,
            policy=self._policy,
            rng=self._rng,
            clock=time.monotonic,
            pinned=pinned,
        )

    def _execute(self, spec: CallSpec) -> Any:
        if spec.kind is CallKind.TAGGED_WRITE:
            # One tag per write, reused by every retry of it; one tagged write in flight.
            with self._write_lock:
                request: Any = spec.request
                request.tag.CopyFrom(self._tags.next())
                return self._attempt_until_done(spec)
        return self._attempt_until_done(spec)

    def _attempt_until_done(self, spec: CallSpec) -> Any:
        plan = self._plan(spec.kind, pinned=spec.pinned)
        while True:
            attempt_timeout_s = plan.begin_attempt()
            rpc = getattr(self._stub(plan.target, spec.stub_type), spec.method)
            try:
                return rpc(spec.request, timeout=attempt_timeout_s)
            except grpc.RpcError as error:
                step = plan.after_error(FailedAttempt.from_error(error))
            if step.delay_s > 0:
                time.sleep(step.delay_s)

    def _promote_when_caught_up(self, member_id: int) -> cluster_pb2.MemberPromoteResponse:
        deadline = time.monotonic() + self._timeout_s
        for attempt in range(1, PROMOTE_ATTEMPTS_MAX + 1):
            try:
                return self.member_promote(member_id)
            except errors.FailedPrecondition:
                delay_s = self._policy.backoff_s(attempt, self._rng)
                if attempt == PROMOTE_ATTEMPTS_MAX or time.monotonic() + delay_s >= deadline:
                    raise
                time.sleep(delay_s)
        raise AssertionError("unreachable: the last attempt re-raises")

    def _stub(self, address: str, stub_type: type) -> Any:
        with self._channels_lock:
            if self._closed:
                raise errors.Cancelled("the client is closed")
            stub = self._stubs.get((address, stub_type))
            if stub is None:
                channel = self._channels.get(address)
                if channel is None:
                    channel = grpc.insecure_channel(address, options=CHANNEL_OPTIONS)
                    self._channels[address] = channel
                stub = stub_type(channel)
                self._stubs[(address, stub_type)] = stub
            return stub

    def _stream_context(self) -> StreamContext:
        return StreamContext(
            endpoints=self._endpoints, policy=self._policy, rng=self._rng, stub=self._stub
        )
