"""The key-value state machine: applies replicated commands and answers local reads.

`apply` is deterministic. It reads no clock ("now" is the largest `leader_time_ms` seen in
the log), draws no random numbers and never lets an exception escape for a bad command:
a rejected command becomes an error CommandResult, identical on every replica, so a
poison entry cannot crash the whole group over and over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

from google.protobuf.message import DecodeError

from triumvir.common.errors import (
    FailedPrecondition,
    Internal,
    InvalidArgument,
    TriumvirError,
)
from triumvir.consensus.kv.executor import RequestExecutor
from triumvir.consensus.kv.leases import MAX_EXPIRED_PER_QUERY, LeaseTable
from triumvir.consensus.kv.records import Change, to_event
from triumvir.consensus.kv.results import error_result
from triumvir.consensus.kv.sessions import ClientSessions
from triumvir.consensus.kv.snapshot import SnapshotError, SnapshotState, decode, encode
from triumvir.consensus.kv.store import MvccStore
from triumvir.v1.command_pb2 import Command, CommandResult
from triumvir.v1.common_pb2 import Event
from triumvir.v1.kv_pb2 import CompactionResponse, RangeRequest, RangeResponse
from triumvir.v1.lease_pb2 import (
    LeaseGrantResponse,
    LeaseKeepAliveResponse,
    LeaseLeasesResponse,
    LeaseRevokeResponse,
    LeaseStatus,
    LeaseTimeToLiveRequest,
    LeaseTimeToLiveResponse,
)

MAX_LEASES_PER_EXPIRE = MAX_EXPIRED_PER_QUERY
"""Lease ids one lease_expire command may name."""

MAX_LEASES_PER_REFRESH = 100_000
"""Most leases a lease_refresh rewrites. It rewrites them all in one apply, on every replica
(about 0.07 s for this many here); with more it changes nothing, so that no apply stalls the
replicas for as long as an election timeout, and the leases keep the expiry times they had."""


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What applying one entry produced: the reply for the proposer, the writes it made (in
    revision order) and the store revision afterwards."""

    result: CommandResult
    changes: list[Change]
    revision: int

    @property
    def events(self) -> list[Event]:
        """The writes as watch events. Built on demand: most writes have no watcher."""
        return [to_event(record, prev) for record, prev in self.changes]


class HashResult(NamedTuple):
    """A consistency digest: equal on replicas that applied the same log."""

    hash: int
    compact_revision: int
    revision: int


_Handler = Callable[[Command, int, list[Change]], CommandResult]


class KVStateMachine:
    def __init__(self) -> None:
        self._store = MvccStore()
        self._leases = LeaseTable()
        self._sessions = ClientSessions()
        self._executor = RequestExecutor(self._store, self._leases)
        # invariant: now_ms never decreases; applied_index only grows.
        self._now_ms = 0
        self._applied_index = 0
        self._handlers: dict[str, _Handler] = {
            "put": self._put,
            "delete_range": self._delete_range,
            "txn": self._txn,
            "compaction": self._compaction,
            "lease_grant": self._lease_grant,
            "lease_revoke": self._lease_revoke,
            "lease_expire": self._lease_expire,
            "lease_keep_alive": self._lease_keep_alive,
            "lease_refresh": self._lease_refresh,
        }

    # ---- state --------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        return self._store.revision

    @property
    def compact_revision(self) -> int:
        return self._store.compact_revision

    @property
    def applied_index(self) -> int:
        return self._applied_index

    @property
    def lease_count(self) -> int:
        return len(self._leases)

    @property
    def now_ms(self) -> int:
        """Leader time as of the last applied command."""
        return self._now_ms

    # ---- apply --------------------------------------------------------------------------

    def apply(self, index: int, data: bytes) -> ApplyResult:
        """Apply the command committed at log `index`. Never raises for a bad command."""
        if index <= self._applied_index:
            return self._rejected(
                FailedPrecondition(
                    f"log index {index} already applied (applied index {self._applied_index})"
                )
            )
        self._applied_index = index
        try:
            command = Command.FromString(data)
        except DecodeError as error:
            return self._rejected(InvalidArgument(f"malformed command: {error}"))
        self._now_ms = max(self._now_ms, command.leader_time_ms)
        self._sessions.expire_idle(self._now_ms)
        client_id = command.tag.client_id
        sequence = command.tag.sequence
        if client_id:
            try:
                stored = self._sessions.lookup(client_id, sequence, self._now_ms)
            except TriumvirError as error:
                return self._rejected(error)
            if stored is not None:
                return ApplyResult(stored, [], self._store.revision)
        changes: list[Change] = []
        result = self._execute(command, index, changes)
        if client_id:
            self._sessions.record(client_id, sequence, result, self._now_ms)
        return ApplyResult(result, changes, self._store.revision)

    def skip(self, index: int) -> None:
        """Note that log `index` held no command (a no-op or a membership change), so that
        `applied_index` and snapshots keep step with the log."""
        if index > self._applied_index:
            self._applied_index = index

    def _rejected(self, error: TriumvirError) -> ApplyResult:
        return ApplyResult(error_result(error), [], self._store.revision)

    def _execute(self, command: Command, index: int, changes: list[Change]) -> CommandResult:
        op = command.WhichOneof("op")
        handler = self._handlers.get(op) if op is not None else None
        if handler is None:
            return error_result(InvalidArgument("command has no operation"))
        try:
            return handler(command, index, changes)
        except TriumvirError as error:
            return error_result(error)
        except Exception as error:
            # A bug hit by a replicated entry hits every replica alike; answering with an
            # error keeps the group alive instead of crashing it on every restart.
            return error_result(Internal(f"apply failed: {type(error).__name__}: {error}"))

    def _write(self, action: Callable[[], None]) -> None:
        self._store.begin_write()
        try:
            action()
        finally:
            self._store.end_write()

    def _put(self, command: Command, index: int, changes: list[Change]) -> CommandResult:
        result = CommandResult()
        self._write(lambda: result.put.CopyFrom(self._executor.put(command.put, changes)))
        result.put.header.revision = self._store.revision
        return result

    def _delete_range(self, command: Command, index: int, changes: list[Change]) -> CommandResult:
        result = CommandResult()
        self._write(
            lambda: result.delete_range.CopyFrom(
                self._executor.delete_range(command.delete_range, changes)
            )
        )
        result.delete_range.header.revision = self._store.revision
        return result

    def _txn(self, command: Command, index: int, changes: list[Change]) -> CommandResult:
        result = CommandResult()
        self._write(lambda: result.txn.CopyFrom(self._executor.txn(command.txn, changes)))
        result.txn.header.revision = self._store.revision
        return result

    def _compaction(self, command: Command, index: int, changes: list[Change]) -> CommandResult:
        self._store.compact(command.compaction.revision)
        response = CompactionResponse()
        response.header.revision = self._store.revision
        return CommandResult(compaction=response)

    def _lease_grant(self, command: Command, index: int, changes: list[Change]) -> CommandResult:
        request = command.lease_grant
        # The leader normally picks the id; when it did not, derive one from the log index
        # so every replica picks the same.
        lease_id = request.id or self._leases.free_id(index)
        lease = self._leases.grant(lease_id, request.ttl, self._now_ms)
        response = LeaseGrantResponse(id=lease.id, ttl=lease.ttl_s)
        response.header.revision = self._store.revision
        return CommandResult(lease_grant=response)

    def _lease_revoke(self, command: Command, index: int, changes: list[Change]) -> CommandResult:
        keys = self._leases.revoke(command.lease_revoke.id)
        self._write(lambda: self._executor.delete_keys(keys, changes))
        response = LeaseRevokeResponse()
        response.header.revision = self._store.revision
        return CommandResult(lease_revoke=response)

    def _lease_expire(self, command: Command, index: int, changes: list[Change]) -> CommandResult:
        ids = command.lease_expire.ids
        if len(ids) > MAX_LEASES_PER_EXPIRE:
            raise InvalidArgument(f"too many leases to expire: {len(ids)}")
        # A keep-alive applied after the leader chose these ids may have renewed some:
        # only leases still expired at this point in the log are revoked.
        keys: list[bytes] = []
        for lease_id in sorted(set(ids)):
            if self._leases.is_expired(lease_id, self._now_ms):
                keys.extend(self._leases.revoke(lease_id))
        self._write(lambda: self._executor.delete_keys(keys, changes))
        response = LeaseRevokeResponse()
        response.header.revision = self._store.revision
        return CommandResult(lease_revoke=response)

    def _lease_keep_alive(
        self, command: Command, index: int, changes: list[Change]
    ) -> CommandResult:
        lease_id = command.lease_keep_alive.id
        lease = self._leases.keep_alive(lease_id, self._now_ms)
        # A lease that is gone answers ttl 0, which the KeepAlive stream reports as is.
        response = LeaseKeepAliveResponse(id=lease_id, ttl=lease.ttl_s if lease else 0)
        response.header.revision = self._store.revision
        return CommandResult(lease_keep_alive=response)

    def _lease_refresh(self, command: Command, index: int, changes: list[Change]) -> CommandResult:
        if len(self._leases) <= MAX_LEASES_PER_REFRESH:
            self._leases.refresh(self._now_ms)
        return CommandResult()

    # ---- reads outside the log ----------------------------------------------------------

    def range(self, request: RangeRequest) -> RangeResponse:
        response = self._executor.range(request)
        response.header.revision = self._store.revision
        return response

    def lease_time_to_live(
        self, request: LeaseTimeToLiveRequest, now_ms: int
    ) -> LeaseTimeToLiveResponse:
        """Remaining TTL of one lease measured against the caller's `now_ms`."""
        response = LeaseTimeToLiveResponse(id=request.id)
        response.header.revision = self._store.revision
        lease = self._leases.get(request.id)
        if lease is None:
            response.ttl = -1
            return response
        response.ttl = lease.remaining_s(now_ms)
        response.granted_ttl = lease.ttl_s
        if request.keys:
            response.keys.extend(sorted(lease.keys))
        return response

    def leases(self) -> LeaseLeasesResponse:
        response = LeaseLeasesResponse(leases=[LeaseStatus(id=i) for i in self._leases.ids()])
        response.header.revision = self._store.revision
        return response

    def expired(self, now_ms: int, limit: int = MAX_LEASES_PER_EXPIRE) -> list[int]:
        """Leases the leader should expire at its `now_ms`, for a lease_expire command."""
        return self._leases.expired(now_ms, min(limit, MAX_LEASES_PER_EXPIRE))

    def events_since(
        self,
        start_revision: int,
        key: bytes,
        range_end: bytes = b"",
        *,
        prev_kv: bool = False,
        max_events: int | None = None,
    ) -> list[Event]:
        """Retained events on the range from `start_revision` on, in revision order.

        With `max_events` (e.g. MAX_EVENTS_PER_READ) the list ends at a revision boundary
        after that many events; resume from the last event's revision + 1. Without it,
        every retained event is returned (history is bounded by compaction). Compacted when
        `start_revision` <= compact_revision.
        """
        if start_revision <= 0:
            raise InvalidArgument(f"start revision must be positive, got {start_revision}")
        records = self._store.writes_since(start_revision, key, range_end, max_events)
        previous = self._store.previous
        return [to_event(r, previous(r) if prev_kv else None) for r in records]

    def hash(self, revision: int = 0) -> HashResult:
        """CRC-32C of every write in (compact_revision, revision]; 0 means the latest."""
        target = revision if revision > 0 else self._store.revision
        return HashResult(self._store.hash(target), self._store.compact_revision, target)

    # ---- snapshots ----------------------------------------------------------------------

    def snapshot(self) -> bytes:
        return self.snapshot_later()()

    def snapshot_later(self) -> Callable[[], bytes]:
        """The state as of now, encoded when the returned function runs, which may be on
        another thread while applies go on: encoding a large store takes long enough to
        stall the loop past an election timeout, but taking this view is quick."""
        state = SnapshotState(
            applied_index=self._applied_index,
            now_ms=self._now_ms,
            revision=self._store.revision,
            compact_revision=self._store.compact_revision,
            histories=self._store.frozen_histories(),
            leases=self._leases.states(),
            sessions=self._sessions.items(),
        )
        return partial(encode, state)

    def restore(self, data: bytes) -> None:
        """Replace the whole state with a snapshot's. Raises SnapshotError on bad bytes,
        leaving the current state untouched."""
        state = decode(data)
        store = MvccStore.from_histories(state.revision, state.compact_revision, state.histories)
        leases = LeaseTable.from_states(state.leases)
        for _, history in state.histories:
            record = history[-1]
            if record.is_tombstone or not record.lease:
                continue
            if record.lease not in leases:
                raise SnapshotError(f"key {record.key!r} is attached to missing lease")
            leases.attach(record.lease, record.key)
        try:
            sessions = ClientSessions.from_items(state.sessions)
        except ValueError as error:
            raise SnapshotError(str(error)) from error
        self._store = store
        self._leases = leases
        self._sessions = sessions
        self._executor = RequestExecutor(store, leases)
        self._now_ms = state.now_ms
        self._applied_index = state.applied_index
