"""A tiny replicated log for driving the key-value state machine in tests."""

from __future__ import annotations

from triumvir.common.errors import TriumvirError
from triumvir.consensus.kv import ApplyResult, KVStateMachine, error_of
from triumvir.v1.command_pb2 import Command, CommandResult, LeaseExpire, LeaseRefresh
from triumvir.v1.common_pb2 import RequestTag
from triumvir.v1.kv_pb2 import (
    CompactionRequest,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    RangeResponse,
    TxnRequest,
)
from triumvir.v1.lease_pb2 import (
    LeaseGrantRequest,
    LeaseKeepAliveRequest,
    LeaseRevokeRequest,
)

START_TIME_MS = 1_700_000_000_000


class Log:
    """Applies commands at consecutive indices; leader time advances only when told to."""

    def __init__(self, machine: KVStateMachine | None = None) -> None:
        self.machine = machine if machine is not None else KVStateMachine()
        self.index = self.machine.applied_index
        self.time_ms = max(START_TIME_MS, self.machine.now_ms)
        self.entries: list[bytes] = []

    def advance(self, ms: int) -> None:
        self.time_ms += ms

    def apply(self, command: Command, tag: tuple[int, int] | None = None) -> ApplyResult:
        command.leader_time_ms = self.time_ms
        if tag is not None:
            command.tag.CopyFrom(RequestTag(client_id=tag[0], sequence=tag[1]))
        return self.apply_bytes(command.SerializeToString())

    def apply_bytes(self, data: bytes) -> ApplyResult:
        self.index += 1
        self.entries.append(data)
        return self.machine.apply(self.index, data)

    def put(self, key: bytes, value: bytes = b"", **fields: object) -> ApplyResult:
        return self.apply(Command(put=PutRequest(key=key, value=value, **fields)))

    def delete(self, key: bytes, range_end: bytes = b"", prev_kv: bool = False) -> ApplyResult:
        request = DeleteRangeRequest(key=key, range_end=range_end, prev_kv=prev_kv)
        return self.apply(Command(delete_range=request))

    def txn(self, request: TxnRequest) -> ApplyResult:
        return self.apply(Command(txn=request))

    def compact(self, revision: int) -> ApplyResult:
        return self.apply(Command(compaction=CompactionRequest(revision=revision)))

    def grant(self, ttl: int, lease_id: int = 0) -> ApplyResult:
        return self.apply(Command(lease_grant=LeaseGrantRequest(ttl=ttl, id=lease_id)))

    def revoke(self, lease_id: int) -> ApplyResult:
        return self.apply(Command(lease_revoke=LeaseRevokeRequest(id=lease_id)))

    def keep_alive(self, lease_id: int) -> ApplyResult:
        return self.apply(Command(lease_keep_alive=LeaseKeepAliveRequest(id=lease_id)))

    def expire(self, *lease_ids: int) -> ApplyResult:
        return self.apply(Command(lease_expire=LeaseExpire(ids=list(lease_ids))))

    def refresh_leases(self) -> ApplyResult:
        return self.apply(Command(lease_refresh=LeaseRefresh()))

    def get(self, key: bytes, range_end: bytes = b"", **fields: object) -> RangeResponse:
        return self.machine.range(RangeRequest(key=key, range_end=range_end, **fields))


def ok(applied: ApplyResult) -> CommandResult:
    error = error_of(applied.result)
    assert error is None, f"unexpected error {error.code}: {error.message}"
    return applied.result


def failed(applied: ApplyResult) -> TriumvirError:
    error = error_of(applied.result)
    assert error is not None, f"expected an error, got {applied.result}"
    return error


def keys_of(response: RangeResponse) -> list[bytes]:
    return [kv.key for kv in response.kvs]
