"""Checks on requests that need no state: a request that fails here fails the same way on
every replica and at every revision, so it is rejected before anything is touched.
"""

from __future__ import annotations

from triumvir.common.errors import InvalidArgument
from triumvir.consensus.kv.keyrange import require_key
from triumvir.v1.kv_pb2 import (
    Compare,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    RequestOp,
    TxnRequest,
)

MAX_TXN_OPS = 128
"""Ops in one branch of a transaction, and compares in one transaction (etcd's default)."""

MAX_TXN_DEPTH = 8
"""How deeply transactions may nest inside each other."""

MAX_TXN_OPS_TOTAL = 1024
"""Ops and compares across a whole transaction tree, nested ones included."""

COMPARE_FIELD_BY_TARGET: dict[int, str] = {
    Compare.VERSION: "version",
    Compare.CREATE: "create_revision",
    Compare.MOD: "mod_revision",
    Compare.VALUE: "value",
    Compare.LEASE: "lease",
}

_SORT_ORDERS = frozenset(RangeRequest.SortOrder.values())
_SORT_TARGETS = frozenset(RangeRequest.SortTarget.values())
_COMPARE_RESULTS = frozenset(Compare.CompareResult.values())


def validate_range(request: RangeRequest) -> None:
    require_key(request.key)
    if request.limit < 0:
        raise InvalidArgument(f"limit must not be negative, got {request.limit}")
    if request.sort_order not in _SORT_ORDERS:
        raise InvalidArgument(f"unknown sort order {request.sort_order}")
    if request.sort_target not in _SORT_TARGETS:
        raise InvalidArgument(f"unknown sort target {request.sort_target}")
    bounds = (
        request.min_mod_revision,
        request.max_mod_revision,
        request.min_create_revision,
        request.max_create_revision,
    )
    if min(bounds) < 0:
        raise InvalidArgument("revision filters must not be negative")


def validate_put(request: PutRequest) -> None:
    require_key(request.key)
    if request.ignore_value and request.value:
        raise InvalidArgument("value is provided although ignore_value is set")
    if request.ignore_lease and request.lease:
        raise InvalidArgument("lease is provided although ignore_lease is set")


def validate_delete_range(request: DeleteRangeRequest) -> None:
    require_key(request.key)


def validate_compare(compare: Compare) -> None:
    require_key(compare.key)
    if compare.result not in _COMPARE_RESULTS:
        raise InvalidArgument(f"unknown compare result {compare.result}")
    wanted = COMPARE_FIELD_BY_TARGET.get(compare.target)
    if wanted is None:
        raise InvalidArgument(f"unknown compare target {compare.target}")
    given = compare.WhichOneof("target_union")
    if given is None:
        raise InvalidArgument(
            f"compare on {compare.key!r} sets no value to compare against; its target "
            f"{wanted} needs the field {wanted}"
        )
    if given != wanted:
        raise InvalidArgument(
            f"compare on {compare.key!r} targets {wanted} but sets {given}; set {wanted} "
            "or change the target"
        )


def validate_txn(request: TxnRequest) -> None:
    """Check the shape of a transaction tree and every request in it, every branch included."""
    _validate_txn(request, depth=1, budget=[MAX_TXN_OPS_TOTAL])


def _validate_txn(request: TxnRequest, depth: int, budget: list[int]) -> None:
    if depth > MAX_TXN_DEPTH:
        raise InvalidArgument(f"transactions nested deeper than {MAX_TXN_DEPTH}")
    for name, items in (
        ("compares", request.compare),
        ("success ops", request.success),
        ("failure ops", request.failure),
    ):
        if len(items) > MAX_TXN_OPS:
            raise InvalidArgument(f"too many {name} in txn: {len(items)} > {MAX_TXN_OPS}")
        budget[0] -= len(items)
    if budget[0] < 0:
        raise InvalidArgument(f"too many operations in txn (limit {MAX_TXN_OPS_TOTAL})")
    for compare in request.compare:
        validate_compare(compare)
    for op in (*request.success, *request.failure):
        _validate_op(op, depth, budget)


def _validate_op(op: RequestOp, depth: int, budget: list[int]) -> None:
    kind = op.WhichOneof("request")
    if kind == "request_range":
        validate_range(op.request_range)
    elif kind == "request_put":
        validate_put(op.request_put)
    elif kind == "request_delete_range":
        validate_delete_range(op.request_delete_range)
    elif kind == "request_txn":
        _validate_txn(op.request_txn, depth + 1, budget)
    else:
        raise InvalidArgument("txn op has no request set")
