"""Checks on client requests before they reach the log: every refusal names the limit or
the field, so a person can fix the request. Pure: raises domain errors only."""

from __future__ import annotations

from dataclasses import dataclass

from triumvir.common.errors import InvalidArgument
from triumvir.consensus.kv.validation import validate_txn
from triumvir.v1 import kv_pb2, lease_pb2


@dataclass(frozen=True, slots=True)
class Limits:
    key_bytes_max: int
    value_bytes_max: int
    request_bytes_max: int


def check_key(key: bytes, limits: Limits, field: str = "key") -> None:
    if not key:
        raise InvalidArgument(f"{field} is empty; give a non-empty key")
    if len(key) > limits.key_bytes_max:
        raise InvalidArgument(
            f"{field} is {len(key)} bytes; the limit is {limits.key_bytes_max} bytes "
            "(--key-bytes-max)"
        )


def check_range(key: bytes, range_end: bytes, limits: Limits) -> None:
    check_key(key, limits)
    if range_end and range_end != b"\0" and range_end <= key:
        raise InvalidArgument(
            f"range_end {range_end!r} is not after key {key!r}; range_end must be greater "
            "than key, or empty for a single key, or \\0 for every key from key on"
        )
    if len(range_end) > limits.key_bytes_max:
        raise InvalidArgument(
            f"range_end is {len(range_end)} bytes; the limit is {limits.key_bytes_max} bytes"
        )


def check_put(request: kv_pb2.PutRequest, limits: Limits) -> None:
    check_key(request.key, limits)
    if len(request.value) > limits.value_bytes_max:
        raise InvalidArgument(
            f"value is {len(request.value)} bytes; the limit is {limits.value_bytes_max} bytes "
            "(--value-bytes-max)"
        )
    if request.ignore_value and request.value:
        raise InvalidArgument("value must be empty when ignore_value is set")
    if request.ignore_lease and request.lease:
        raise InvalidArgument("lease must be 0 when ignore_lease is set")
    if request.lease < 0:
        raise InvalidArgument(f"lease id {request.lease} is negative")


def check_range_request(request: kv_pb2.RangeRequest, limits: Limits) -> None:
    check_range(request.key, request.range_end, limits)
    if request.limit < 0:
        raise InvalidArgument(f"limit {request.limit} is negative; use 0 for no limit")
    if request.revision < 0:
        raise InvalidArgument(f"revision {request.revision} is negative; use 0 for the latest")


def check_delete(request: kv_pb2.DeleteRangeRequest, limits: Limits) -> None:
    check_range(request.key, request.range_end, limits)


def check_txn(request: kv_pb2.TxnRequest, limits: Limits) -> None:
    """The state machine's own shape checks (so a transaction it would refuse never takes
    a place in the log, and is refused in the same words), then this replica's limits on
    every key and value in the tree."""
    validate_txn(request)
    _check_txn_sizes(request, limits)


def _check_txn_sizes(request: kv_pb2.TxnRequest, limits: Limits) -> None:
    for compare in request.compare:
        check_range(compare.key, compare.range_end, limits)
    for op in (*request.success, *request.failure):
        kind = op.WhichOneof("request")
        if kind == "request_put":
            check_put(op.request_put, limits)
        elif kind == "request_range":
            check_range_request(op.request_range, limits)
        elif kind == "request_delete_range":
            check_delete(op.request_delete_range, limits)
        else:
            _check_txn_sizes(op.request_txn, limits)


def check_ttl(request: lease_pb2.LeaseGrantRequest) -> None:
    if request.ttl <= 0:
        raise InvalidArgument(f"ttl must be a positive number of seconds, got {request.ttl}")
    if request.id < 0:
        raise InvalidArgument(f"lease id {request.id} is negative; use 0 to let the server pick")
