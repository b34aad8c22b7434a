"""One consensus replica, assembled: storage, core, state machine, transport and driver.

This is the domain API the gRPC servicers call. Writes become replicated commands;
linearizable reads wait for a ReadIndex barrier and then read the local state machine.
Errors are domain errors; the servicers turn them into gRPC statuses.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from triumvir.common.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    error_from_code,
)
from triumvir.common.logging import get_logger
from triumvir.common.status import code_name
from triumvir.consensus import validation
from triumvir.consensus.config import ReplicaConfig, ticks_for
from triumvir.consensus.driver import Driver
from triumvir.consensus.engines import ENGINES, PeerInbox
from triumvir.consensus.kv.machine import MAX_LEASES_PER_REFRESH, KVStateMachine
from triumvir.consensus.metrics import DriverMetrics, watch_core
from triumvir.consensus.raft.core import Role
from triumvir.consensus.raft.membership import founding_conf
from triumvir.consensus.raft.types import ConfChange, ConfChangeKind, ConfState, Entry
from triumvir.consensus.storage.file_storage import FileStorage
from triumvir.consensus.storage.fsutil import DirectoryLock
from triumvir.consensus.transport import PeerTransport
from triumvir.consensus.watch_hub import WatchHub
from triumvir.v1 import (
    cluster_pb2,
    command_pb2,
    common_pb2,
    kv_pb2,
    lease_pb2,
    maintenance_pb2,
)

LEASE_CHECK_S = 0.1  # how often a leader looks for expired leases
SNAPSHOT_CHUNK_BYTES = 1024 * 1024


# Leader time is the wall clock as read once at start-up, carried on by the monotonic clock.
# Lease expiry and idle client sessions are measured in it, so a step of the wall clock while
# the replica runs (NTP, an operator) can neither expire every lease at once nor keep them all
# alive; a new leader's lease refresh absorbs the difference between two replicas' clocks.
_WALL_AT_START_NS = time.time_ns()
_MONOTONIC_AT_START_NS = time.monotonic_ns()


def now_ms() -> int:
    """Leader time in milliseconds since the Unix epoch."""
    return (_WALL_AT_START_NS + time.monotonic_ns() - _MONOTONIC_AT_START_NS) // 1_000_000


class Replica:
    def __init__(self, config: ReplicaConfig, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        self._registry = registry  # where its metrics go, when someone scrapes them
        self.limits = validation.Limits(
            key_bytes_max=config.key_bytes_max,
            value_bytes_max=config.value_bytes_max,
            request_bytes_max=config.request_bytes_max,
        )
        self.machine = KVStateMachine()
        self.hub = WatchHub(self.machine)
        self._log = get_logger(node_id=config.node_id)
        self.engine = ENGINES[config.engine]
        self._transport: PeerTransport[Any] = PeerTransport(
            config.node_id, config.peers, self.engine.open_stream
        )
        self.driver: Driver | None = None
        self._expiring: set[int] = set()
        # Leases are expired only by a leader that has refreshed them (see _refresh_leases).
        self._leases_refreshed_term = 0
        self._refreshing_leases = False
        self._ticks = 0
        self._lease_check_ticks = ticks_for(LEASE_CHECK_S, config.tick_ms)
        self._data_dir_lock: DirectoryLock | None = None

    # ---- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self._data_dir_lock = DirectoryLock(Path(self.config.data_dir))
        storage = FileStorage(self.config.data_dir)
        recovered = await asyncio.get_running_loop().run_in_executor(None, storage.load)
        if recovered.snapshot is not None:
            self.machine.restore(recovered.snapshot.data)
        fresh = recovered.snapshot is None and not recovered.entries
        conf = None
        if fresh and not self.config.join:
            conf = founding_conf(self.config.peers)
        core = self.engine.make_core(self.config, conf, recovered)
        cluster_id = self.config.cluster_id
        to_wire = self.engine.to_wire
        self.driver = Driver(
            core=core,
            storage=storage,
            machine=self.machine,
            send=lambda message: self._transport.send(message.dst, to_wire(message, cluster_id)),
            tick_s=self.config.tick_ms / 1000,
            address_of=self.address_of,
            on_membership=self._on_membership,
            on_apply=self._on_apply,
            on_tick=self._on_tick,
            sends_before_persist=self.engine.sends_before_persist,
            metrics=DriverMetrics(self._registry),
        )
        if self._registry is not None:
            watch_core(self._registry, core)
        self._on_membership(core.conf)
        self.driver.start()
        self._log.info(
            "replica started",
            term=core.term,
            commit=core.commit_index,
            members=sorted(core.conf.members()),
            restored_snapshot=recovered.snapshot is not None,
        )

    async def stop(self) -> None:
        if self.driver is not None:
            await self.driver.stop()
        await self._transport.close()
        self.hub.close()
        if self._data_dir_lock is not None:
            self._data_dir_lock.release()

    # ---- callbacks from the driver ---------------------------------------------------

    def _on_membership(self, conf: ConfState) -> None:
        for member_id, context in conf.contexts:
            if member_id != self.config.node_id and context:
                self._transport.set_address(member_id, context.decode())
        for member_id in set(self._transport.addresses()) - conf.members():
            if conf.members():
                self._transport.forget(member_id)

    def _on_apply(self, entry: Entry, result: Any) -> None:
        if result is not None and result.changes and self.hub.watching:
            self.hub.publish(result.events)

    def _on_tick(self) -> None:
        self._ticks += 1
        if self._ticks % self._lease_check_ticks or self.driver is None:
            return
        core = self.driver.core
        if core.role is not Role.LEADER:
            self._expiring.clear()
            return
        if self._leases_refreshed_term != core.term:
            if not self._refreshing_leases:
                self._refreshing_leases = True
                asyncio.get_running_loop().create_task(self._refresh_leases(core.term))
            return
        expired = [lease for lease in self.machine.expired(now_ms()) if lease not in self._expiring]
        if expired:
            self._expiring.update(expired)
            asyncio.get_running_loop().create_task(self._expire(expired))

    async def _refresh_leases(self, term: int) -> None:
        """Give every lease its whole TTL again before this leader expires any, as etcd
        does: keep-alives sent while the group had no leader were lost through no fault of
        their senders, and the expiry times in the state came from another leader's clock."""
        command = command_pb2.Command(
            leader_time_ms=now_ms(), lease_refresh=command_pb2.LeaseRefresh()
        )
        try:
            await self._propose(command)
            self._leases_refreshed_term = term
            if self.machine.lease_count > MAX_LEASES_PER_REFRESH:
                self._log.warning(
                    "too many leases to refresh: they keep the expiry times they had",
                    leases=self.machine.lease_count,
                    limit=MAX_LEASES_PER_REFRESH,
                )
        except Exception as exc:  # the next check proposes again
            self._log.debug("lease refresh not replicated", error=str(exc))
        finally:
            self._refreshing_leases = False

    async def _expire(self, ids: list[int]) -> None:
        command = command_pb2.Command(
            leader_time_ms=now_ms(), lease_expire=command_pb2.LeaseExpire(ids=ids)
        )
        try:
            await self._propose(command)
        except Exception as exc:  # the next check proposes again
            self._log.debug("lease expiry not replicated", error=str(exc))
        finally:
            self._expiring.difference_update(ids)

    # ---- helpers ---------------------------------------------------------------------

    def address_of(self, member_id: int) -> str:
        if member_id == self.config.node_id:
            return self.config.address
        return self._transport.address_of(member_id)

    def peer_inbox(self) -> PeerInbox:
        def deliver(message: Any) -> None:
            assert self.driver is not None, "replica not started"
            self.driver.deliver(message)

        return PeerInbox(self.config.node_id, self.config.cluster_id, deliver)

    @property
    def core(self) -> Any:
        assert self.driver is not None, "replica not started"
        return self.driver.core

    def header(self, revision: int | None = None) -> common_pb2.ResponseHeader:
        core = self.core
        return common_pb2.ResponseHeader(
            member_id=self.config.node_id,
            term=core.term,
            revision=self.machine.revision if revision is None else revision,
            leader_id=core.leader_id,
        )

    async def _propose(self, command: command_pb2.Command) -> Any:
        assert self.driver is not None
        applied = await self.driver.propose(command.SerializeToString())
        outcome = applied.result
        if outcome.WhichOneof("result") == "error":
            raise error_from_code(code_name(outcome.error.code), outcome.error.message)
        return applied

    async def _write(self, op: str, request: Any, tag: common_pb2.RequestTag | None) -> Any:
        """Replicate `request` as the command field `op`; answer with its result and a header."""
        command = command_pb2.Command(leader_time_ms=now_ms(), **{op: request})
        if tag is not None:
            command.tag.CopyFrom(tag)
        applied = await self._propose(command)
        result = getattr(applied.result, op)
        # A copy: the state machine may keep the result to answer a retried request.
        response = type(result)()
        response.CopyFrom(result)
        response.header.CopyFrom(self.header(applied.revision))
        return response

    async def _barrier(self, serializable: bool) -> None:
        if not serializable:
            assert self.driver is not None
            await self.driver.read_barrier()

    # ---- KV ----------------------------------------------------------------------------

    async def put(self, request: kv_pb2.PutRequest) -> kv_pb2.PutResponse:
        validation.check_put(request, self.limits)
        return await self._write("put", request, request.tag)

    async def range(self, request: kv_pb2.RangeRequest) -> kv_pb2.RangeResponse:
        validation.check_range_request(request, self.limits)
        await self._barrier(request.serializable)
        response = self.machine.range(request)
        response.header.CopyFrom(self.header())
        return response

    async def delete_range(self, request: kv_pb2.DeleteRangeRequest) -> kv_pb2.DeleteRangeResponse:
        validation.check_delete(request, self.limits)
        return await self._write("delete_range", request, request.tag)

    async def txn(self, request: kv_pb2.TxnRequest) -> kv_pb2.TxnResponse:
        validation.check_txn(request, self.limits)
        return await self._write("txn", request, request.tag)

    async def compact(self, request: kv_pb2.CompactionRequest) -> kv_pb2.CompactionResponse:
        if request.revision <= 0:
            raise InvalidArgument(f"compaction revision must be positive, got {request.revision}")
        return await self._write("compaction", request, None)

    # ---- leases ------------------------------------------------------------------------

    async def lease_grant(
        self, request: lease_pb2.LeaseGrantRequest
    ) -> lease_pb2.LeaseGrantResponse:
        validation.check_ttl(request)
        return await self._write("lease_grant", request, request.tag)

    async def lease_revoke(
        self, request: lease_pb2.LeaseRevokeRequest
    ) -> lease_pb2.LeaseRevokeResponse:
        return await self._write("lease_revoke", request, request.tag)

    async def lease_keep_alive(
        self, request: lease_pb2.LeaseKeepAliveRequest
    ) -> lease_pb2.LeaseKeepAliveResponse:
        return await self._write("lease_keep_alive", request, None)

    async def lease_time_to_live(
        self, request: lease_pb2.LeaseTimeToLiveRequest
    ) -> lease_pb2.LeaseTimeToLiveResponse:
        await self._barrier(serializable=False)
        response = self.machine.lease_time_to_live(request, now_ms())
        response.header.CopyFrom(self.header())
        return response

    async def leases(self, request: lease_pb2.LeaseLeasesRequest) -> lease_pb2.LeaseLeasesResponse:
        await self._barrier(serializable=False)
        response = self.machine.leases()
        response.header.CopyFrom(self.header())
        return response

    # ---- cluster -----------------------------------------------------------------------

    def members(self) -> list[cluster_pb2.Member]:
        conf = self.core.conf
        contexts = dict(conf.contexts)
        members = []
        for member_id in sorted(conf.members()):
            address = self.address_of(member_id) or contexts.get(member_id, b"").decode()
            members.append(
                common_pb2.Member(
                    id=member_id,
                    name=f"member-{member_id}",
                    peer_urls=[address] if address else [],
                    client_urls=[address] if address else [],
                    is_learner=member_id in conf.learners,
                )
            )
        return members

    async def member_add(self, request: cluster_pb2.MemberAddRequest) -> common_pb2.Member:
        if not request.peer_urls:
            raise InvalidArgument("peer_urls is empty; give the new member's host:port")
        address = request.peer_urls[0]
        if ":" not in address:
            raise InvalidArgument(f"peer url {address!r} is not host:port")
        conf = self.core.conf
        members = conf.members()
        # A removed member's id is never handed out again (see ConfState.retired).
        member_id = request.id or (max(members | conf.retired, default=0) + 1)
        if member_id in members:
            raise FailedPrecondition(f"member {member_id} is already in the group")
        assert self.driver is not None
        await self.driver.change_membership(
            ConfChange(ConfChangeKind.ADD_LEARNER, member_id, address.encode())
        )
        return common_pb2.Member(
            id=member_id,
            name=request.name or f"member-{member_id}",
            peer_urls=[address],
            client_urls=[address],
            is_learner=True,
        )

    async def member_promote(self, member_id: int) -> None:
        conf = self.core.conf
        if member_id not in conf.members():
            raise NotFound(f"member {member_id} is not in the group")
        if member_id not in conf.learners:
            raise FailedPrecondition(f"member {member_id} is already a voter")
        assert self.driver is not None
        await self.driver.change_membership(ConfChange(ConfChangeKind.PROMOTE, member_id))

    async def member_remove(self, member_id: int) -> None:
        conf = self.core.conf
        if member_id not in conf.members():
            raise NotFound(f"member {member_id} is not in the group")
        if conf.voters == {member_id}:
            raise FailedPrecondition(
                f"member {member_id} is the last voter; add and promote another member first"
            )
        assert self.driver is not None
        await self.driver.change_membership(ConfChange(ConfChangeKind.REMOVE, member_id))

    async def transfer_leader(self, target: int) -> None:
        conf = self.core.conf
        if target not in conf.members():
            raise NotFound(f"member {target} is not in the group")
        if target in conf.learners:
            raise FailedPrecondition(f"member {target} is a learner and cannot lead")
        assert self.driver is not None
        if self.core.leader_id == target:
            return
        await self.driver.transfer_leader(target)
        # Like etcd's MoveLeader, answer once leadership has moved (the target won an
        # election) so the caller can rely on it; a transfer the core abandoned is reported.
        wait_s = 2 * self.config.election_ticks * self.config.tick_ms / 1000
        deadline = asyncio.get_running_loop().time() + wait_s
        while self.core.leader_id != target:
            if asyncio.get_running_loop().time() >= deadline:
                raise DeadlineExceeded(
                    f"leadership did not move to member {target} within {wait_s:.1f}s "
                    "(it may be catching up); retry"
                )
            await asyncio.sleep(self.config.tick_ms / 1000)

    # ---- maintenance -------------------------------------------------------------------

    async def snapshot_chunks(self) -> AsyncIterator[maintenance_pb2.SnapshotResponse]:
        await self._barrier(serializable=False)
        # Encoded off the loop, like the replica's own snapshots: a large store takes long
        # enough to stall it past an election timeout.
        encode = self.machine.snapshot_later()
        data = await asyncio.get_running_loop().run_in_executor(None, encode)
        digest = hashlib.sha256(data).digest()
        header = self.header()
        for offset in range(0, max(len(data), 1), SNAPSHOT_CHUNK_BYTES):
            blob = data[offset : offset + SNAPSHOT_CHUNK_BYTES]
            remaining = len(data) - offset - len(blob)
            response = maintenance_pb2.SnapshotResponse(
                header=header, remaining_bytes=remaining, blob=blob
            )
            if remaining == 0:
                response.sha256 = digest
            yield response

    async def hash(self, request: maintenance_pb2.HashRequest) -> maintenance_pb2.HashResponse:
        await self._barrier(serializable=True)
        value, compact_revision, revision = self.machine.hash(request.revision)
        return maintenance_pb2.HashResponse(
            header=self.header(),
            hash=value,
            compact_revision=compact_revision,
            revision=revision,
        )
