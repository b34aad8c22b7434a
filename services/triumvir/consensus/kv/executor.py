"""Runs KV requests (Range, Put, DeleteRange, Txn) against the store and the lease table.

Writes are all-or-nothing: everything that can make a request fail is checked before the
first change. For a transaction that works because conflicting writes are rejected up
front, so every put in the chosen branches sees the key as it was before the transaction;
compares, nested ones included, are evaluated against that same pre-transaction state
(as etcd does). Range ops inside a transaction do see the transaction's earlier writes.

The caller brackets writes with `store.begin_write()` / `store.end_write()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import islice

from triumvir.common.errors import InvalidArgument
from triumvir.consensus.kv.leases import LeaseTable
from triumvir.consensus.kv.records import Change, KeyRecord
from triumvir.consensus.kv.store import MvccStore
from triumvir.consensus.kv.txn import check_no_conflicting_writes, compare_holds
from triumvir.consensus.kv.validation import (
    validate_delete_range,
    validate_put,
    validate_range,
    validate_txn,
)
from triumvir.v1.kv_pb2 import (
    DeleteRangeRequest,
    DeleteRangeResponse,
    PutRequest,
    PutResponse,
    RangeRequest,
    RangeResponse,
    TxnRequest,
    TxnResponse,
)

_SORT_KEYS: dict[int, Callable[[KeyRecord], int | bytes]] = {
    RangeRequest.KEY: lambda r: r.key,
    RangeRequest.VERSION: lambda r: r.version,
    RangeRequest.CREATE: lambda r: r.create_revision,
    RangeRequest.MOD: lambda r: r.mod_revision,
    RangeRequest.VALUE: lambda r: r.value,
}


class RequestExecutor:
    def __init__(self, store: MvccStore, leases: LeaseTable) -> None:
        self.store = store
        self.leases = leases

    # ---- Range --------------------------------------------------------------------------

    def range(self, request: RangeRequest, *, in_write: bool = False) -> RangeResponse:
        """Read a range. Inside a write, revision 0 reads the batch's own writes too."""
        validate_range(request)
        revision = self.store.check_read_revision(request.revision)
        if in_write and request.revision <= 0:
            revision = self.store.pending_revision
        order = request.sort_order
        target = request.sort_target
        if order == RangeRequest.NONE and target != RangeRequest.KEY:
            # Unsorted output is key order; sorting by another field implies ascending.
            order = RangeRequest.ASCEND
        response = RangeResponse()
        filtered = (
            request.min_mod_revision
            or request.max_mod_revision
            or request.min_create_revision
            or request.max_create_revision
        )
        records: list[KeyRecord]
        if target == RangeRequest.KEY and not filtered:
            # Key order is index order: count in O(log n) and read only what is returned.
            count = self.store.count(request.key, request.range_end, revision)
            response.count = count
            if request.count_only:
                return response
            take = count if request.limit == 0 else min(request.limit, count)
            scan = self.store.scan(
                request.key, request.range_end, revision, reverse=order == RangeRequest.DESCEND
            )
            records = list(islice(scan, take))
            response.more = take < count
        else:
            records = [
                r
                for r in self.store.scan(request.key, request.range_end, revision)
                if _passes_filters(request, r)
            ]
            response.count = len(records)
            if request.count_only:
                return response
            if target != RangeRequest.KEY or order == RangeRequest.DESCEND:
                records.sort(key=_SORT_KEYS[target], reverse=order == RangeRequest.DESCEND)
            if request.limit and len(records) > request.limit:
                records = records[: request.limit]
                response.more = True
        response.kvs.extend(r.to_proto(request.keys_only) for r in records)
        return response

    # ---- Put ----------------------------------------------------------------------------

    def put(self, request: PutRequest, changes: list[Change]) -> PutResponse:
        validate_put(request)
        self._check_put(request)
        return self._apply_put(request, changes)

    def _check_put(self, request: PutRequest) -> None:
        if (request.ignore_value or request.ignore_lease) and self.store.get(request.key) is None:
            raise InvalidArgument("key not found (ignore_value or ignore_lease needs a key)")
        if request.lease and not request.ignore_lease:
            self.leases.require(request.lease)

    def _apply_put(self, request: PutRequest, changes: list[Change]) -> PutResponse:
        key = request.key
        current = self.store.get(key)
        value = current.value if current is not None and request.ignore_value else request.value
        lease = current.lease if current is not None and request.ignore_lease else request.lease
        record, prev = self.store.put(key, value, lease)
        prev_lease = prev.lease if prev is not None else 0
        if prev_lease != lease:
            if prev_lease:
                self.leases.detach(prev_lease, key)
            if lease:
                self.leases.attach(lease, key)
        changes.append((record, prev))
        response = PutResponse()
        if request.prev_kv and prev is not None:
            response.prev_kv.CopyFrom(prev.to_proto())
        return response

    # ---- DeleteRange --------------------------------------------------------------------

    def delete_range(
        self, request: DeleteRangeRequest, changes: list[Change]
    ) -> DeleteRangeResponse:
        validate_delete_range(request)
        keys = [
            r.key
            for r in self.store.scan(request.key, request.range_end, self.store.pending_revision)
        ]
        response = DeleteRangeResponse()
        for prev in self.delete_keys(keys, changes):
            if request.prev_kv:
                response.prev_kvs.append(prev.to_proto())
        response.deleted = len(keys)
        return response

    def delete_keys(self, keys: list[bytes], changes: list[Change]) -> list[KeyRecord]:
        """Delete existing keys (in the given order); returns the records they ended."""
        ended: list[KeyRecord] = []
        for key in keys:
            deleted = self.store.delete(key)
            assert deleted is not None, "deleting a key that does not exist"
            record, prev = deleted
            if prev.lease:
                self.leases.detach(prev.lease, key)
            changes.append((record, prev))
            ended.append(prev)
        return ended

    # ---- Txn ----------------------------------------------------------------------------

    def txn(self, request: TxnRequest, changes: list[Change]) -> TxnResponse:
        validate_txn(request)
        self._check_conflicts(request)
        decisions: list[bool] = []
        self._plan(request, decisions)
        return self._run(request, iter(decisions), changes)

    def _check_conflicts(self, request: TxnRequest) -> None:
        check_no_conflicting_writes(request.success)
        check_no_conflicting_writes(request.failure)

    def _plan(self, request: TxnRequest, decisions: list[bool]) -> None:
        """Pick every branch (depth first) and check the ops on the chosen path."""
        succeeded = all(compare_holds(c, self.store) for c in request.compare)
        decisions.append(succeeded)
        for op in request.success if succeeded else request.failure:
            kind = op.WhichOneof("request")
            if kind == "request_put":
                self._check_put(op.request_put)
            elif kind == "request_range":
                self.store.check_read_revision(op.request_range.revision)
            elif kind == "request_txn":
                self._plan(op.request_txn, decisions)

    def _run(
        self, request: TxnRequest, decisions: Iterator[bool], changes: list[Change]
    ) -> TxnResponse:
        succeeded = next(decisions)
        response = TxnResponse(succeeded=succeeded)
        for op in request.success if succeeded else request.failure:
            out = response.responses.add()
            kind = op.WhichOneof("request")
            if kind == "request_put":
                out.response_put.CopyFrom(self._apply_put(op.request_put, changes))
            elif kind == "request_range":
                out.response_range.CopyFrom(self.range(op.request_range, in_write=True))
            elif kind == "request_delete_range":
                out.response_delete_range.CopyFrom(
                    self.delete_range(op.request_delete_range, changes)
                )
            else:
                out.response_txn.CopyFrom(self._run(op.request_txn, decisions, changes))
        return response


def _passes_filters(request: RangeRequest, record: KeyRecord) -> bool:
    if request.min_mod_revision and record.mod_revision < request.min_mod_revision:
        return False
    if request.max_mod_revision and record.mod_revision > request.max_mod_revision:
        return False
    if request.min_create_revision and record.create_revision < request.min_create_revision:
        return False
    return not (
        request.max_create_revision and record.create_revision > request.max_create_revision
    )
