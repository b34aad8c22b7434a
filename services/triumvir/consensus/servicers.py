"""Thin gRPC servicers: protobuf in, a call on the Replica, protobuf out.

No protocol logic here. Domain errors become statuses in one place (`_guard`). A write
that lands on a follower is forwarded once to the leader; if that is impossible the
client gets UNAVAILABLE with the leader's address in the error details.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from triumvir.common.errors import (
    Compacted,
    DeadlineExceeded,
    InvalidArgument,
    TriumvirError,
    Unavailable,
)
from triumvir.common.status import to_status
from triumvir.consensus.raft.core import Role
from triumvir.consensus.replica import Replica
from triumvir.consensus.watch_hub import WatcherOverflow
from triumvir.v1 import (
    cluster_pb2,
    cluster_pb2_grpc,
    kv_pb2,
    kv_pb2_grpc,
    lease_pb2,
    lease_pb2_grpc,
    maintenance_pb2_grpc,
    watch_pb2,
    watch_pb2_grpc,
)

# A write with no client deadline still gets an answer: past this its outcome is unknown.
WRITE_TIMEOUT_S_DEFAULT = 10.0
FORWARDED_HEADER = "triumvir-forwarded"
WATCHERS_PER_STREAM_MAX = 1024
WATCH_RESPONSES_BUFFERED_MAX = 64  # per stream
# A response holds whole revisions up to these bounds, more only to finish a revision: gRPC
# clients refuse messages over 4 MiB unless told otherwise, and the events of one revision
# stay far below that (a write request is at most 2 MiB) unless it deleted a large range.
WATCH_EVENTS_PER_RESPONSE = 1000
# A watcher that asked for fragments (WatchCreateRequest.fragment) gets a larger batch cut
# into responses of about this size, the revision boundaries notwithstanding.
WATCH_RESPONSE_BYTES_SOFT_MAX = 1024 * 1024
FELL_BEHIND_REASON = "watcher fell behind"  # the contract names this prefix (watch.proto)
VERSION = "0.1.0"

T = TypeVar("T")
_ROLES = {
    Role.FOLLOWER: cluster_pb2.StatusResponse.FOLLOWER,
    Role.PRE_CANDIDATE: cluster_pb2.StatusResponse.PRE_CANDIDATE,
    Role.CANDIDATE: cluster_pb2.StatusResponse.CANDIDATE,
    Role.LEADER: cluster_pb2.StatusResponse.LEADER,
}


class Forwarder:
    """Sends a write on to the leader once, reusing one channel per leader address."""

    def __init__(self) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}

    async def call(
        self, address: str, method: str, request: Any, response_type: Any, timeout: float
    ) -> Any:
        channel = self._channels.get(address)
        if channel is None:
            channel = grpc.aio.insecure_channel(address)
            self._channels[address] = channel
        call = channel.unary_unary(
            method,
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )
        return await call(request, timeout=timeout, metadata=((FORWARDED_HEADER, "1"),))

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        for channel in channels:
            await channel.close()


def _time_left(context: grpc.aio.ServicerContext) -> float:
    remaining = _deadline_left(context)
    return WRITE_TIMEOUT_S_DEFAULT if remaining is None else min(remaining, WRITE_TIMEOUT_S_DEFAULT)


def _deadline_left(context: grpc.aio.ServicerContext) -> float | None:
    """Seconds until the caller's deadline; None when it set none."""
    remaining = context.time_remaining()
    if remaining is not None and remaining <= 0:
        raise DeadlineExceeded("the request's deadline had already passed when it arrived")
    return remaining


async def _guard(
    context: grpc.aio.ServicerContext,
    work: Callable[[], Awaitable[T]],
    *,
    forward: tuple[Forwarder, str, Any, Any] | None = None,
) -> T:
    """Run `work` with a bounded wait, forwarding to the leader when this replica is not it."""
    try:
        remaining = _deadline_left(context)
        timeout = WRITE_TIMEOUT_S_DEFAULT
        try:
            if remaining is not None and remaining <= timeout:
                # The caller's deadline bounds the wait, and gRPC already ends the call there
                # (the caller's side even a little sooner): a timer of our own would only
                # add work to every request.
                return await work()
            async with asyncio.timeout(timeout):
                return await work()
        except TimeoutError as exc:
            raise DeadlineExceeded(
                f"no answer within {timeout:.1f}s; the outcome is unknown — retry with the "
                "same request tag to apply it at most once"
            ) from exc
        except Unavailable as exc:
            already = any(key == FORWARDED_HEADER for key, _ in context.invocation_metadata() or ())
            if forward is None or already or not exc.leader_address:
                raise
            forwarder, method, request, response_type = forward
            try:
                return await forwarder.call(
                    exc.leader_address, method, request, response_type, _time_left(context)
                )
            except grpc.aio.AioRpcError as rpc_error:
                # Pass the leader's answer on unchanged, error details (a leader hint) included.
                await context.abort(
                    rpc_error.code(),
                    rpc_error.details() or "",
                    tuple(rpc_error.trailing_metadata() or ()),
                )
                raise AssertionError("unreachable") from rpc_error
    except TriumvirError as exc:
        await context.abort_with_status(to_status(exc))
        raise AssertionError("unreachable") from exc


class KVServicer(kv_pb2_grpc.KVServicer):
    def __init__(self, replica: Replica, forwarder: Forwarder) -> None:
        self._replica = replica
        self._forwarder = forwarder

    async def Put(self, request, context):
        return await _guard(
            context,
            lambda: self._replica.put(request),
            forward=(self._forwarder, "/triumvir.v1.KV/Put", request, kv_pb2.PutResponse),
        )

    async def Range(self, request, context):
        # An engine whose followers cannot confirm a read index themselves sends the read
        # on to the leader, like a write.
        return await _guard(
            context,
            lambda: self._replica.range(request),
            forward=(self._forwarder, "/triumvir.v1.KV/Range", request, kv_pb2.RangeResponse),
        )

    async def DeleteRange(self, request, context):
        return await _guard(
            context,
            lambda: self._replica.delete_range(request),
            forward=(
                self._forwarder,
                "/triumvir.v1.KV/DeleteRange",
                request,
                kv_pb2.DeleteRangeResponse,
            ),
        )

    async def Txn(self, request, context):
        return await _guard(
            context,
            lambda: self._replica.txn(request),
            forward=(self._forwarder, "/triumvir.v1.KV/Txn", request, kv_pb2.TxnResponse),
        )

    async def Compact(self, request, context):
        return await _guard(
            context,
            lambda: self._replica.compact(request),
            forward=(
                self._forwarder,
                "/triumvir.v1.KV/Compact",
                request,
                kv_pb2.CompactionResponse,
            ),
        )


class LeaseServicer(lease_pb2_grpc.LeaseServicer):
    def __init__(self, replica: Replica, forwarder: Forwarder) -> None:
        self._replica = replica
        self._forwarder = forwarder

    async def Grant(self, request, context):
        return await _guard(
            context,
            lambda: self._replica.lease_grant(request),
            forward=(
                self._forwarder,
                "/triumvir.v1.Lease/Grant",
                request,
                lease_pb2.LeaseGrantResponse,
            ),
        )

    async def Revoke(self, request, context):
        return await _guard(
            context,
            lambda: self._replica.lease_revoke(request),
            forward=(
                self._forwarder,
                "/triumvir.v1.Lease/Revoke",
                request,
                lease_pb2.LeaseRevokeResponse,
            ),
        )

    async def KeepAlive(self, request_iterator, context):
        async for request in request_iterator:
            try:
                response = await asyncio.wait_for(
                    self._replica.lease_keep_alive(request), WRITE_TIMEOUT_S_DEFAULT
                )
            except TimeoutError:
                continue  # the client sends the next keep-alive; this one's fate is unknown
            except TriumvirError as exc:
                await context.abort_with_status(to_status(exc))
                return
            yield response

    async def TimeToLive(self, request, context):
        return await _guard(
            context,
            lambda: self._replica.lease_time_to_live(request),
            forward=(
                self._forwarder,
                "/triumvir.v1.Lease/TimeToLive",
                request,
                lease_pb2.LeaseTimeToLiveResponse,
            ),
        )

    async def Leases(self, request, context):
        return await _guard(
            context,
            lambda: self._replica.leases(request),
            forward=(
                self._forwarder,
                "/triumvir.v1.Lease/Leases",
                request,
                lease_pb2.LeaseLeasesResponse,
            ),
        )


class ClusterServicer(cluster_pb2_grpc.ClusterServicer):
    def __init__(self, replica: Replica, forwarder: Forwarder, engine: str) -> None:
        self._replica = replica
        self._forwarder = forwarder
        self._engine = engine

    async def Status(self, request, context):
        core = self._replica.core
        role = _ROLES[core.role]
        if core.node_id in core.conf.learners:
            role = cluster_pb2.StatusResponse.LEARNER
        return cluster_pb2.StatusResponse(
            header=self._replica.header(),
            version=VERSION,
            engine=(
                cluster_pb2.StatusResponse.PAXOS
                if self._engine == "paxos"
                else cluster_pb2.StatusResponse.RAFT
            ),
            leader_id=core.leader_id,
            role=role,
            raft_term=core.term,
            commit_index=core.commit_index,
            applied_index=self._replica.driver.applied_index if self._replica.driver else 0,
            is_learner=core.node_id in core.conf.learners,
        )

    async def MemberList(self, request, context):
        return cluster_pb2.MemberListResponse(
            header=self._replica.header(), members=self._replica.members()
        )

    async def MemberAdd(self, request, context):
        async def add() -> cluster_pb2.MemberAddResponse:
            member = await self._replica.member_add(request)
            return cluster_pb2.MemberAddResponse(
                header=self._replica.header(), member=member, members=self._replica.members()
            )

        return await _guard(
            context,
            add,
            forward=(
                self._forwarder,
                "/triumvir.v1.Cluster/MemberAdd",
                request,
                cluster_pb2.MemberAddResponse,
            ),
        )

    async def MemberPromote(self, request, context):
        async def promote() -> cluster_pb2.MemberPromoteResponse:
            await self._replica.member_promote(request.id)
            return cluster_pb2.MemberPromoteResponse(
                header=self._replica.header(), members=self._replica.members()
            )

        return await _guard(
            context,
            promote,
            forward=(
                self._forwarder,
                "/triumvir.v1.Cluster/MemberPromote",
                request,
                cluster_pb2.MemberPromoteResponse,
            ),
        )

    async def MemberRemove(self, request, context):
        async def remove() -> cluster_pb2.MemberRemoveResponse:
            await self._replica.member_remove(request.id)
            return cluster_pb2.MemberRemoveResponse(
                header=self._replica.header(), members=self._replica.members()
            )

        return await _guard(
            context,
            remove,
            forward=(
                self._forwarder,
                "/triumvir.v1.Cluster/MemberRemove",
                request,
                cluster_pb2.MemberRemoveResponse,
            ),
        )

    async def TransferLeader(self, request, context):
        async def transfer() -> cluster_pb2.TransferLeaderResponse:
            await self._replica.transfer_leader(request.target_id)
            return cluster_pb2.TransferLeaderResponse(header=self._replica.header())

        return await _guard(
            context,
            transfer,
            forward=(
                self._forwarder,
                "/triumvir.v1.Cluster/TransferLeader",
                request,
                cluster_pb2.TransferLeaderResponse,
            ),
        )


class MaintenanceServicer(maintenance_pb2_grpc.MaintenanceServicer):
    def __init__(self, replica: Replica) -> None:
        self._replica = replica

    async def Snapshot(self, request, context):
        try:
            async for chunk in self._replica.snapshot_chunks():
                yield chunk
        except TriumvirError as exc:
            await context.abort_with_status(to_status(exc))

    async def Hash(self, request, context):
        return await _guard(context, lambda: self._replica.hash(request))


def take_response(queue: asyncio.Queue[Any], first: list[Any]) -> tuple[list[Any], list[Any]]:
    """What goes into a watcher's next response: `first` and what is queued after it, up to
    the response bounds and then to the end of the revision it reached, because a client
    that reconnects resumes from the revision after its last event. Also returns what was
    taken from the queue beyond that, for the response after."""
    batch = list(first)
    size = sum(_event_bytes(item) for item in batch)
    while (
        not queue.empty()
        and len(batch) < WATCH_EVENTS_PER_RESPONSE
        and size < WATCH_RESPONSE_BYTES_SOFT_MAX
    ):
        batch.append(queue.get_nowait())
        size += _event_bytes(batch[-1])
    while not queue.empty() and _is_event(batch[-1]):
        following = queue.get_nowait()
        if not (_is_event(following) and following.kv.mod_revision == batch[-1].kv.mod_revision):
            return batch, [following]
        batch.append(following)
    return batch, []


def fragments(events: list[Any], bytes_max: int) -> list[list[Any]]:
    """`events` cut into runs of at most `bytes_max` encoded bytes (one event more only when
    it alone is larger), for a watcher that accepts a batch in several responses: a single
    revision may hold far more than a gRPC client accepts in one message (a DeleteRange over
    many large values, with their previous values)."""
    pieces: list[list[Any]] = [[]]
    size = 0
    for event in events:
        event_bytes = event.ByteSize()
        if pieces[-1] and size + event_bytes > bytes_max:
            pieces.append([])
            size = 0
        pieces[-1].append(event)
        size += event_bytes
    return pieces


def _is_event(item: Any) -> bool:
    return item is not None and not isinstance(item, WatcherOverflow)


def _event_bytes(item: Any) -> int:
    return item.ByteSize() if _is_event(item) else 0


class WatchServicer(watch_pb2_grpc.WatchServicer):
    """Many watchers share one stream; each pumps its own subscription into the stream."""

    def __init__(self, replica: Replica) -> None:
        self._replica = replica

    async def Watch(
        self, request_iterator: AsyncIterator[watch_pb2.WatchRequest], context: Any
    ) -> AsyncIterator[watch_pb2.WatchResponse]:
        # Bounded: a watcher pump waits while the client is slow to read, so its
        # subscription fills up and overflows instead of this stream buffering without end.
        out: asyncio.Queue[watch_pb2.WatchResponse] = asyncio.Queue(
            maxsize=WATCH_RESPONSES_BUFFERED_MAX
        )
        pumps: dict[int, asyncio.Task[None]] = {}
        next_id = 1

        async def read_requests() -> None:
            nonlocal next_id
            async for request in request_iterator:
                kind = request.WhichOneof("request_union")
                if kind == "create_request":
                    create = request.create_request
                    watch_id = create.watch_id or next_id
                    next_id = max(next_id, watch_id) + 1
                    await out.put(self._create(create, watch_id, pumps, out))
                elif kind == "cancel_request":
                    watch_id = request.cancel_request.watch_id
                    task = pumps.pop(watch_id, None)
                    if task is not None:
                        task.cancel()
                    await out.put(
                        watch_pb2.WatchResponse(
                            header=self._replica.header(), watch_id=watch_id, canceled=True
                        )
                    )
                elif kind == "progress_request":
                    await out.put(
                        watch_pb2.WatchResponse(header=self._replica.header(), watch_id=-1)
                    )

        reader = asyncio.get_running_loop().create_task(read_requests())
        next_response: asyncio.Future[watch_pb2.WatchResponse] | None = None
        try:
            while True:
                next_response = asyncio.ensure_future(out.get())
                await asyncio.wait((next_response, reader), return_when=asyncio.FIRST_COMPLETED)
                if not next_response.done():
                    # The client closed its side: send what is queued, then end the stream.
                    next_response.cancel()
                    reader.result()  # a failed read ends the call with its error
                    while not out.empty():
                        yield out.get_nowait()
                    break
                yield next_response.result()
        finally:
            reader.cancel()
            if next_response is not None:
                next_response.cancel()  # the call ended while it waited for a response
            for task in pumps.values():
                task.cancel()

    def _compacted(
        self, watch_id: int, start_revision: int, *, created: bool = False
    ) -> watch_pb2.WatchResponse:
        compact_revision = self._replica.machine.compact_revision
        return watch_pb2.WatchResponse(
            header=self._replica.header(),
            watch_id=watch_id,
            created=created,
            canceled=True,
            compact_revision=compact_revision,
            cancel_reason=(
                f"start revision {start_revision} has been compacted; the oldest retained "
                f"revision is {compact_revision + 1}"
            ),
        )

    def _create(
        self,
        create: watch_pb2.WatchCreateRequest,
        watch_id: int,
        pumps: dict[int, asyncio.Task[None]],
        out: asyncio.Queue[watch_pb2.WatchResponse],
    ) -> watch_pb2.WatchResponse:
        header = self._replica.header()
        try:
            if len(pumps) >= WATCHERS_PER_STREAM_MAX:
                raise InvalidArgument(
                    f"this stream already has {WATCHERS_PER_STREAM_MAX} watchers; open another"
                )
            if watch_id in pumps:
                raise InvalidArgument(f"watch id {watch_id} is already in use on this stream")
            if not create.key:
                raise InvalidArgument("watch key is empty")
            subscription = self._replica.hub.subscribe(
                create.key, create.range_end, create.start_revision, prev_kv=create.prev_kv
            )
        except Compacted:
            return self._compacted(watch_id, create.start_revision, created=True)
        except TriumvirError as exc:
            return watch_pb2.WatchResponse(
                header=header,
                watch_id=watch_id,
                created=True,
                canceled=True,
                cancel_reason=exc.message,
            )
        drop_puts = watch_pb2.WatchCreateRequest.NOPUT in create.filters
        drop_deletes = watch_pb2.WatchCreateRequest.NODELETE in create.filters
        hub = self._replica.hub

        async def respond(events: list[Any]) -> None:
            # Whole revisions always; several responses for them only when the client
            # said it puts fragments back together.
            pieces = [events]
            if create.fragment:
                pieces = fragments(events, WATCH_RESPONSE_BYTES_SOFT_MAX)
            for position, piece in enumerate(pieces):
                await out.put(
                    watch_pb2.WatchResponse(
                        header=self._replica.header(),
                        watch_id=watch_id,
                        events=piece,
                        fragment=position < len(pieces) - 1,
                    )
                )

        async def pump() -> None:
            carry: list[Any] = []  # taken from the queue for the next response
            try:
                while True:
                    if subscription.catching_up and not carry and subscription.queue.empty():
                        try:
                            hub.catch_up(subscription)
                        except Compacted:
                            await out.put(self._compacted(watch_id, subscription.next_revision))
                            return
                    if not carry:
                        carry = [await subscription.queue.get()]
                    batch, carry = take_response(subscription.queue, carry)
                    events = []
                    for event in batch:
                        if event is None:
                            return
                        if isinstance(event, WatcherOverflow):
                            # The whole revisions queued before it go out first.
                            if events:
                                await respond(events)
                            await out.put(
                                watch_pb2.WatchResponse(
                                    header=self._replica.header(),
                                    watch_id=watch_id,
                                    canceled=True,
                                    cancel_reason=f"{FELL_BEHIND_REASON}; resume from the "
                                    "revision after the last event received",
                                )
                            )
                            return
                        if event.type == event.PUT and drop_puts:
                            continue
                        if event.type == event.DELETE and drop_deletes:
                            continue
                        if not create.prev_kv and event.HasField("prev_kv"):
                            event = type(event)(type=event.type, kv=event.kv)
                        events.append(event)
                    if events:
                        await respond(events)
            finally:
                hub.unsubscribe(subscription)

        pumps[watch_id] = asyncio.get_running_loop().create_task(pump())
        return watch_pb2.WatchResponse(header=header, watch_id=watch_id, created=True)
