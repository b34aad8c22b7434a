"""The front door refuses a malformed transaction before it reaches the log, with the same
limits and messages as the state machine that would otherwise refuse it on apply."""

from __future__ import annotations

import pytest

from triumvir.common.errors import InvalidArgument
from triumvir.consensus.kv.validation import validate_txn
from triumvir.consensus.validation import Limits, check_txn
from triumvir.v1.kv_pb2 import Compare, PutRequest, RangeRequest, RequestOp, TxnRequest

LIMITS = Limits(key_bytes_max=64, value_bytes_max=128, request_bytes_max=1 << 20)


def _put(key: bytes, value: bytes = b"v") -> RequestOp:
    return RequestOp(request_put=PutRequest(key=key, value=value))


def _compare(key: bytes) -> Compare:
    return Compare(key=key, target=Compare.VERSION, result=Compare.EQUAL, version=1)


def _nested(depth: int) -> TxnRequest:
    txn = TxnRequest(success=[_put(b"leaf")])
    for _ in range(depth - 1):
        txn = TxnRequest(success=[RequestOp(request_txn=txn)])
    return txn


def _wide_tree() -> TxnRequest:
    """Fewer than 128 ops in every branch, more than 1024 in the whole tree."""
    inner = TxnRequest(success=[_put(b"k%d" % i) for i in range(100)])
    return TxnRequest(success=[RequestOp(request_txn=inner) for _ in range(11)])


VALID = {
    "128 compares and 128 ops in each branch": TxnRequest(
        compare=[_compare(b"c%d" % i) for i in range(128)],
        success=[_put(b"s%d" % i) for i in range(128)],
        failure=[_put(b"f%d" % i) for i in range(128)],
    ),
    "nested 8 deep": _nested(8),
}

MALFORMED = {
    "compare target and field differ": TxnRequest(
        compare=[Compare(key=b"a", target=Compare.VALUE, version=1)]
    ),
    "compare without a value": TxnRequest(compare=[Compare(key=b"a", target=Compare.VALUE)]),
    "unknown compare result": TxnRequest(
        compare=[Compare(key=b"a", target=Compare.VERSION, result=7, version=1)]
    ),
    "129 ops in one branch": TxnRequest(success=[_put(b"k%d" % i) for i in range(129)]),
    "more than 1024 ops in the tree": _wide_tree(),
    "nested 9 deep": _nested(9),
    "empty op": TxnRequest(success=[RequestOp()]),
    "unknown sort order in a nested range": TxnRequest(
        success=[
            RequestOp(
                request_txn=TxnRequest(
                    success=[RequestOp(request_range=RangeRequest(key=b"a", sort_order=9))]
                )
            )
        ]
    ),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_a_transaction_the_state_machine_takes_passes_the_front_door(name: str) -> None:
    validate_txn(VALID[name])
    check_txn(VALID[name], LIMITS)


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_the_front_door_refuses_what_the_state_machine_would_with_its_message(
    name: str,
) -> None:
    with pytest.raises(InvalidArgument) as on_apply:
        validate_txn(MALFORMED[name])
    with pytest.raises(InvalidArgument) as at_the_door:
        check_txn(MALFORMED[name], LIMITS)
    assert str(at_the_door.value) == str(on_apply.value)


def test_the_front_door_also_holds_keys_and_values_to_the_configured_limits() -> None:
    for txn, needle in (
        (TxnRequest(success=[_put(b"k" * 65)]), "--key-bytes-max"),
        (TxnRequest(failure=[_put(b"k", b"v" * 129)]), "--value-bytes-max"),
        (
            TxnRequest(
                compare=[Compare(key=b"b", range_end=b"a", target=Compare.VERSION, version=1)]
            ),
            "range_end must be greater",
        ),
    ):
        with pytest.raises(InvalidArgument, match=needle):
            check_txn(txn, LIMITS)
