"""Builders for KV requests, transaction compares and transaction ops.

Keys and values may be given as `bytes` or `str` (encoded as UTF-8). A range is a single
key, `[key, range_end)`, or every key with a prefix (`prefix=True`).
"""

from __future__ import annotations

from collections.abc import Iterable

from triumvir.v1 import kv_pb2

KeyLike = bytes | str

COMPARE_RESULTS: dict[str, int] = {
    "=": kv_pb2.Compare.EQUAL,
    "==": kv_pb2.Compare.EQUAL,
    "!=": kv_pb2.Compare.NOT_EQUAL,
    ">": kv_pb2.Compare.GREATER,
    "<": kv_pb2.Compare.LESS,
}
# Range end meaning "every key from `key` on", as in the RangeRequest contract.
ALL_KEYS_FROM = b"\0"


def to_bytes(value: KeyLike) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def prefix_end(prefix: KeyLike) -> bytes:
    """The smallest key greater than every key starting with `prefix`.

    Trailing 0xff bytes cannot be incremented, so they are dropped first; a prefix of only
    0xff bytes (or an empty one) covers every key from the prefix on.
    """
    data = bytearray(to_bytes(prefix))
    while data and data[-1] == 0xFF:
        data.pop()
    if not data:
        return ALL_KEYS_FROM
    data[-1] += 1
    return bytes(data)


def key_range(key: KeyLike, range_end: KeyLike = b"", prefix: bool = False) -> tuple[bytes, bytes]:
    start = to_bytes(key)
    end = to_bytes(range_end)
    if prefix:
        if end:
            raise ValueError("give either prefix=True or range_end, not both")
        end = prefix_end(start)
    return start, end


def range_request(
    key: KeyLike,
    *,
    range_end: KeyLike = b"",
    prefix: bool = False,
    limit: int = 0,
    revision: int = 0,
    serializable: bool = False,
    keys_only: bool = False,
    count_only: bool = False,
    sort_order: int = kv_pb2.RangeRequest.NONE,
    sort_target: int = kv_pb2.RangeRequest.KEY,
) -> kv_pb2.RangeRequest:
    start, end = key_range(key, range_end, prefix)
    return kv_pb2.RangeRequest(
        key=start,
        range_end=end,
        limit=limit,
        revision=revision,
        serializable=serializable,
        keys_only=keys_only,
        count_only=count_only,
        sort_order=sort_order,  # type: ignore[arg-type]
        sort_target=sort_target,  # type: ignore[arg-type]
    )


def put_request(
    key: KeyLike,
    value: KeyLike,
    *,
    lease: int = 0,
    prev_kv: bool = False,
    ignore_value: bool = False,
    ignore_lease: bool = False,
) -> kv_pb2.PutRequest:
    return kv_pb2.PutRequest(
        key=to_bytes(key),
        value=to_bytes(value),
        lease=lease,
        prev_kv=prev_kv,
        ignore_value=ignore_value,
        ignore_lease=ignore_lease,
    )


def delete_request(
    key: KeyLike, *, range_end: KeyLike = b"", prefix: bool = False, prev_kv: bool = False
) -> kv_pb2.DeleteRangeRequest:
    start, end = key_range(key, range_end, prefix)
    return kv_pb2.DeleteRangeRequest(key=start, range_end=end, prev_kv=prev_kv)


def txn_request(
    compare: Iterable[kv_pb2.Compare],
    success: Iterable[kv_pb2.RequestOp] = (),
    failure: Iterable[kv_pb2.RequestOp] = (),
) -> kv_pb2.TxnRequest:
    return kv_pb2.TxnRequest(compare=list(compare), success=list(success), failure=list(failure))


def _compare(key: KeyLike, op: str, target: int, **field: int | bytes) -> kv_pb2.Compare:
    if op not in COMPARE_RESULTS:
        raise ValueError(f"bad compare operator {op!r}: use one of {' '.join(COMPARE_RESULTS)}")
    return kv_pb2.Compare(
        key=to_bytes(key),
        result=COMPARE_RESULTS[op],  # type: ignore[arg-type]
        target=target,  # type: ignore[arg-type]
        **field,  # type: ignore[arg-type]
    )


def compare_value(key: KeyLike, op: str, value: KeyLike) -> kv_pb2.Compare:
    """`compare_value("k", "=", "v")`: the key's current value compared to `value`."""
    return _compare(key, op, kv_pb2.Compare.VALUE, value=to_bytes(value))


def compare_version(key: KeyLike, op: str, version: int) -> kv_pb2.Compare:
    """`compare_version("k", "=", 0)` holds when the key does not exist."""
    return _compare(key, op, kv_pb2.Compare.VERSION, version=version)


def compare_create(key: KeyLike, op: str, revision: int) -> kv_pb2.Compare:
    return _compare(key, op, kv_pb2.Compare.CREATE, create_revision=revision)


def compare_mod(key: KeyLike, op: str, revision: int) -> kv_pb2.Compare:
    return _compare(key, op, kv_pb2.Compare.MOD, mod_revision=revision)


def compare_lease(key: KeyLike, op: str, lease_id: int) -> kv_pb2.Compare:
    return _compare(key, op, kv_pb2.Compare.LEASE, lease=lease_id)


def op_put(
    key: KeyLike, value: KeyLike, *, lease: int = 0, prev_kv: bool = False
) -> kv_pb2.RequestOp:
    return kv_pb2.RequestOp(request_put=put_request(key, value, lease=lease, prev_kv=prev_kv))


def op_get(
    key: KeyLike,
    *,
    range_end: KeyLike = b"",
    prefix: bool = False,
    limit: int = 0,
    revision: int = 0,
    keys_only: bool = False,
    count_only: bool = False,
) -> kv_pb2.RequestOp:
    request = range_request(
        key,
        range_end=range_end,
        prefix=prefix,
        limit=limit,
        revision=revision,
        keys_only=keys_only,
        count_only=count_only,
    )
    return kv_pb2.RequestOp(request_range=request)


def op_delete(
    key: KeyLike, *, range_end: KeyLike = b"", prefix: bool = False, prev_kv: bool = False
) -> kv_pb2.RequestOp:
    request = delete_request(key, range_end=range_end, prefix=prefix, prev_kv=prev_kv)
    return kv_pb2.RequestOp(request_delete_range=request)


def op_txn(
    compare: Iterable[kv_pb2.Compare],
    success: Iterable[kv_pb2.RequestOp] = (),
    failure: Iterable[kv_pb2.RequestOp] = (),
) -> kv_pb2.RequestOp:
    return kv_pb2.RequestOp(request_txn=txn_request(compare, success, failure))
