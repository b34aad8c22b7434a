"""The consensus engines a replica can run, and the few things that differ between them.

Everything above the core — driver, storage, state machine, servers, client — is shared.
An engine contributes its pure core, how its messages travel on the wire, and which of
its messages a leader may send before its own fsync finished.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from triumvir.consensus.config import ReplicaConfig
from triumvir.consensus.raft.types import ConfState, MessageType
from triumvir.consensus.storage.interface import RecoveredState
from triumvir.v1 import paxos_pb2, paxos_pb2_grpc, raft_pb2, raft_pb2_grpc

Deliver = Callable[[Any], None]


@dataclass(frozen=True, slots=True)
class Engine:
    name: str
    make_core: Callable[[ReplicaConfig, ConfState | None, RecoveredState], Any]
    to_wire: Callable[[Any, int], Any]
    open_stream: Callable[[grpc.aio.Channel, AsyncIterator[list[Any]]], Any]
    add_peer_servicer: Callable[[grpc.aio.Server, PeerInbox], None]
    peer_service: str
    # A leader may send these before its own WAL write is durable: it counts itself toward
    # commit only after the write, so followers may hold the entries first.
    sends_before_persist: Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class PeerInbox:
    """Where the peer servicer hands messages that passed the membership checks."""

    node_id: int
    cluster_id: int
    deliver: Deliver


def _mismatch(inbox: PeerInbox, dst: int, cluster_id: int) -> str | None:
    if cluster_id != inbox.cluster_id:
        return (
            f"message for cluster {cluster_id} reached member {inbox.node_id} of cluster "
            f"{inbox.cluster_id}"
        )
    if dst != inbox.node_id:
        return f"message for member {dst} reached member {inbox.node_id}"
    return None


def _build_core(
    core_type: Any,
    config_type: Any,
    config: ReplicaConfig,
    conf: ConfState | None,
    recovered: RecoveredState,
    **engine_limits: int | bool,
) -> Any:
    """A core from what the replica recovered, with the timers and limits both engines
    share plus `engine_limits` under the engine's own names."""
    return core_type(
        config_type(
            node_id=config.node_id,
            election_ticks=config.election_ticks,
            heartbeat_ticks=config.heartbeat_ticks,
            snapshot_threshold_entries=config.snapshot_threshold_entries,
            **engine_limits,
        ),
        random.Random(),
        conf=conf,
        hard_state=recovered.hard_state,
        snapshot=recovered.snapshot,
        entries=recovered.entries,
    )


# ---- Raft ------------------------------------------------------------------------------


def _raft_core(config: ReplicaConfig, conf: ConfState | None, recovered: RecoveredState) -> Any:
    from triumvir.consensus.raft.config import RaftConfig
    from triumvir.consensus.raft.core import RaftCore

    return _build_core(
        RaftCore,
        RaftConfig,
        config,
        conf,
        recovered,
        max_inflight_appends=config.max_inflight_appends,
        thrifty=not config.replicate_to_all,
    )


def _raft_to_wire(message: Any, cluster_id: int) -> Any:
    from triumvir.consensus.raft_wire import message_to_proto

    return message_to_proto(message, cluster_id)


async def _raft_stream(channel: grpc.aio.Channel, batches: AsyncIterator[list[Any]]) -> Any:
    async def wrapped() -> AsyncIterator[raft_pb2.RaftBatch]:
        async for batch in batches:
            yield raft_pb2.RaftBatch(messages=batch)

    return await raft_pb2_grpc.RaftStub(channel).Stream(wrapped())


class RaftPeerServicer(raft_pb2_grpc.RaftServicer):
    def __init__(self, inbox: PeerInbox) -> None:
        from triumvir.consensus.raft_wire import message_from_proto

        self._inbox = inbox
        self._decode = message_from_proto

    async def _take(self, message: raft_pb2.RaftMessage, context: Any) -> None:
        problem = _mismatch(self._inbox, message.dst, message.cluster_id)
        if problem is not None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, problem)
        self._inbox.deliver(self._decode(message))

    async def Stream(self, request_iterator, context):
        received = 0
        async for batch in request_iterator:
            for message in batch.messages:
                await self._take(message, context)
                received += 1
        return raft_pb2.StreamAck(received=received)

    async def Send(self, request, context):
        await self._take(request, context)
        return raft_pb2.StreamAck(received=1)


_RAFT_EARLY = frozenset({MessageType.APPEND, MessageType.HEARTBEAT, MessageType.SNAPSHOT})

RAFT = Engine(
    name="raft",
    make_core=_raft_core,
    to_wire=_raft_to_wire,
    open_stream=_raft_stream,
    add_peer_servicer=lambda server, inbox: raft_pb2_grpc.add_RaftServicer_to_server(
        RaftPeerServicer(inbox), server
    ),
    peer_service=raft_pb2.DESCRIPTOR.services_by_name["Raft"].full_name,
    sends_before_persist=lambda message: message.type in _RAFT_EARLY,
)

# ---- Multi-Paxos ---------------------------------------------------------------------------


def _paxos_core(config: ReplicaConfig, conf: ConfState | None, recovered: RecoveredState) -> Any:
    from triumvir.consensus.paxos.config import PaxosConfig
    from triumvir.consensus.paxos.core import PaxosCore

    return _build_core(
        PaxosCore,
        PaxosConfig,
        config,
        conf,
        recovered,
        max_inflight_accepts=config.max_inflight_appends,
    )


def _paxos_to_wire(message: Any, cluster_id: int) -> Any:
    from triumvir.consensus.paxos_wire import message_to_proto

    return message_to_proto(message, cluster_id)


async def _paxos_stream(channel: grpc.aio.Channel, batches: AsyncIterator[list[Any]]) -> Any:
    async def flattened() -> AsyncIterator[paxos_pb2.PaxosMessage]:
        async for batch in batches:
            for message in batch:
                yield message

    return await paxos_pb2_grpc.PaxosStub(channel).Stream(flattened())


class PaxosPeerServicer(paxos_pb2_grpc.PaxosServicer):
    def __init__(self, inbox: PeerInbox) -> None:
        from triumvir.consensus.paxos_wire import message_from_proto

        self._inbox = inbox
        self._decode = message_from_proto

    async def Stream(self, request_iterator, context):
        received = 0
        async for message in request_iterator:
            problem = _mismatch(self._inbox, message.dst, message.cluster_id)
            if problem is not None:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, problem)
            self._inbox.deliver(self._decode(message))
            received += 1
        return raft_pb2.StreamAck(received=received)


PAXOS = Engine(
    name="paxos",
    make_core=_paxos_core,
    to_wire=_paxos_to_wire,
    open_stream=_paxos_stream,
    add_peer_servicer=lambda server, inbox: paxos_pb2_grpc.add_PaxosServicer_to_server(
        PaxosPeerServicer(inbox), server
    ),
    peer_service=paxos_pb2.DESCRIPTOR.services_by_name["Paxos"].full_name,
    # Acceptor state must be durable before any reply leaves, and a proposer's ACCEPT to
    # itself is part of that state: every Paxos message waits for the fsync.
    sends_before_persist=lambda message: False,
)

ENGINES: dict[str, Engine] = {"raft": RAFT, "paxos": PAXOS}
