"""The two questions a transaction asks before it runs: do its writes conflict with each
other, and do its compares hold.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

from triumvir.common.errors import InvalidArgument
from triumvir.consensus.kv import keyrange
from triumvir.consensus.kv.records import KeyRecord
from triumvir.consensus.kv.store import MvccStore
from triumvir.v1.kv_pb2 import Compare, RequestOp

DUPLICATE_KEY_MESSAGE = "duplicate key given in txn request"

_Deletes = list[tuple[bytes, bytes]]

_RESULTS: dict[int, Callable[[Any, Any], bool]] = {
    Compare.EQUAL: operator.eq,
    Compare.NOT_EQUAL: operator.ne,
    Compare.GREATER: operator.gt,
    Compare.LESS: operator.lt,
}


def check_no_conflicting_writes(ops: Sequence[RequestOp]) -> None:
    """Reject a branch in which one key could be written twice at the same revision.

    Two puts of one key, or a put of a key that a delete in the same branch covers, are
    rejected (as etcd does), wherever they sit in nested transactions, except when they
    are in the two exclusive branches of one nested transaction. Overlapping deletes are
    allowed: the second simply finds nothing left to delete.
    """
    _write_sets(ops)


def _write_sets(ops: Sequence[RequestOp]) -> tuple[set[bytes], _Deletes]:
    """Keys the ops may put and ranges they may delete, after checking them pairwise."""
    puts: set[bytes] = set()
    deletes: _Deletes = []
    for op in ops:
        op_puts, op_deletes = _op_write_sets(op)
        for key in op_puts:
            if key in puts or _covered(key, deletes):
                raise InvalidArgument(DUPLICATE_KEY_MESSAGE)
        for key in puts:
            if _covered(key, op_deletes):
                raise InvalidArgument(DUPLICATE_KEY_MESSAGE)
        puts |= op_puts
        deletes.extend(op_deletes)
    return puts, deletes


def _op_write_sets(op: RequestOp) -> tuple[set[bytes], _Deletes]:
    kind = op.WhichOneof("request")
    if kind == "request_put":
        return {op.request_put.key}, []
    if kind == "request_delete_range":
        request = op.request_delete_range
        return set(), [(request.key, request.range_end)]
    if kind == "request_txn":
        # The branches exclude each other, so they may write the same keys.
        then_puts, then_deletes = _write_sets(op.request_txn.success)
        else_puts, else_deletes = _write_sets(op.request_txn.failure)
        return then_puts | else_puts, then_deletes + else_deletes
    return set(), []


def _covered(key: bytes, deletes: _Deletes) -> bool:
    return any(keyrange.contains(key, start, end) for start, end in deletes)


def compare_holds(compare: Compare, store: MvccStore) -> bool:
    """Evaluate one (validated) compare against the latest state.

    With a range, it must hold for every key in it; an empty range is compared like one
    absent key (version, revisions and lease 0, empty value), as etcd does, so
    `version EQUAL 0` over a prefix asks "is the prefix empty".
    """
    records = list(store.scan(compare.key, compare.range_end, store.revision))
    if not records:
        return _holds(compare, None)
    return all(_holds(compare, record) for record in records)


def _holds(compare: Compare, record: KeyRecord | None) -> bool:
    target = compare.target
    actual: int | bytes
    expected: int | bytes
    if target == Compare.VALUE:
        actual, expected = (record.value if record else b""), compare.value
    elif target == Compare.VERSION:
        actual, expected = (record.version if record else 0), compare.version
    elif target == Compare.CREATE:
        actual, expected = (record.create_revision if record else 0), compare.create_revision
    elif target == Compare.MOD:
        actual, expected = (record.mod_revision if record else 0), compare.mod_revision
    else:
        actual, expected = (record.lease if record else 0), compare.lease
    return _RESULTS[compare.result](actual, expected)
