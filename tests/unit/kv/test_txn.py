"""Txn: compare forms, branch choice, atomicity, reads of earlier writes, and the
duplicate-key rule."""

from __future__ import annotations

import pytest

from tests.unit.kv.helpers import Log, failed, keys_of, ok
from triumvir.v1.kv_pb2 import (
    Compare,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    RequestOp,
    TxnRequest,
)


def put_op(key: bytes, value: bytes = b"v", **fields: object) -> RequestOp:
    return RequestOp(request_put=PutRequest(key=key, value=value, **fields))


def delete_op(key: bytes, range_end: bytes = b"") -> RequestOp:
    return RequestOp(request_delete_range=DeleteRangeRequest(key=key, range_end=range_end))


def range_op(key: bytes, range_end: bytes = b"", **fields: object) -> RequestOp:
    return RequestOp(request_range=RangeRequest(key=key, range_end=range_end, **fields))


def txn_op(request: TxnRequest) -> RequestOp:
    return RequestOp(request_txn=request)


@pytest.fixture
def log() -> Log:
    log = Log()
    log.put(b"k", b"bbb")  # revision 1
    log.put(b"k", b"bbb")  # revision 2, version 2
    return log


def holds(log: Log, compare: Compare) -> bool:
    return ok(log.txn(TxnRequest(compare=[compare]))).txn.succeeded


@pytest.mark.parametrize(
    ("compare", "expected"),
    [
        (Compare(key=b"k", target=Compare.VALUE, result=Compare.EQUAL, value=b"bbb"), True),
        (Compare(key=b"k", target=Compare.VALUE, result=Compare.GREATER, value=b"aaa"), True),
        (Compare(key=b"k", target=Compare.VALUE, result=Compare.LESS, value=b"aaa"), False),
        (Compare(key=b"k", target=Compare.VALUE, result=Compare.NOT_EQUAL, value=b"bbb"), False),
        (Compare(key=b"k", target=Compare.VERSION, result=Compare.EQUAL, version=2), True),
        (Compare(key=b"k", target=Compare.VERSION, result=Compare.LESS, version=2), False),
        (Compare(key=b"k", target=Compare.CREATE, result=Compare.EQUAL, create_revision=1), True),
        (Compare(key=b"k", target=Compare.MOD, result=Compare.GREATER, mod_revision=1), True),
        (Compare(key=b"k", target=Compare.LEASE, result=Compare.EQUAL, lease=0), True),
        (Compare(key=b"nope", target=Compare.VERSION, result=Compare.EQUAL, version=0), True),
        (Compare(key=b"nope", target=Compare.VALUE, result=Compare.EQUAL, value=b""), True),
    ],
)
def test_compare_forms(log: Log, compare: Compare, expected: bool) -> None:
    assert holds(log, compare) is expected


def test_compare_over_a_range_must_hold_for_every_key(log: Log) -> None:
    log.put(b"k2", b"zzz")
    over_all = Compare(
        key=b"k", range_end=b"l", target=Compare.VALUE, result=Compare.GREATER, value=b"b"
    )
    assert holds(log, over_all)
    log.put(b"k3", b"a")
    assert not holds(log, over_all)
    empty_prefix = Compare(
        key=b"p", range_end=b"q", target=Compare.VERSION, result=Compare.EQUAL, version=0
    )
    assert holds(log, empty_prefix)


def test_failure_branch_runs_when_a_compare_fails(log: Log) -> None:
    request = TxnRequest(
        compare=[Compare(key=b"k", target=Compare.VALUE, result=Compare.EQUAL, value=b"x")],
        success=[put_op(b"yes")],
        failure=[put_op(b"no"), range_op(b"k")],
    )
    response = ok(log.txn(request)).txn
    assert not response.succeeded
    assert response.responses[1].response_range.kvs[0].value == b"bbb"
    assert keys_of(log.get(b"a", b"\0")) == [b"k", b"no"]


def test_reads_inside_a_txn_see_earlier_writes(log: Log) -> None:
    request = TxnRequest(success=[put_op(b"new", b"1"), range_op(b"new"), delete_op(b"k")])
    response = ok(log.txn(request)).txn
    (kv,) = response.responses[1].response_range.kvs
    assert (kv.value, kv.mod_revision) == (b"1", 3)
    assert response.responses[2].response_delete_range.deleted == 1


def test_range_at_an_explicit_revision_inside_txn_ignores_the_txn_writes(log: Log) -> None:
    request = TxnRequest(success=[put_op(b"k", b"new"), range_op(b"k", revision=2)])
    response = ok(log.txn(request)).txn
    assert response.responses[1].response_range.kvs[0].value == b"bbb"
    assert log.get(b"k").kvs[0].value == b"new"


def test_failing_op_leaves_no_partial_writes(log: Log) -> None:
    request = TxnRequest(success=[put_op(b"a"), put_op(b"b", lease=99), delete_op(b"k")])
    error = failed(log.txn(request))
    assert error.code == "NOT_FOUND"
    assert log.machine.revision == 2
    assert keys_of(log.get(b"a", b"\0")) == [b"k"]


def test_range_of_a_compacted_revision_inside_txn_fails_whole_txn(log: Log) -> None:
    log.compact(2)
    request = TxnRequest(success=[put_op(b"a"), range_op(b"k", revision=1)])
    assert failed(log.txn(request)).code == "OUT_OF_RANGE"
    assert log.get(b"a").count == 0


@pytest.mark.parametrize(
    "ops",
    [
        [put_op(b"a"), put_op(b"a")],
        [put_op(b"a"), delete_op(b"a")],
        [delete_op(b"a", b"c"), put_op(b"b")],
        [put_op(b"a"), txn_op(TxnRequest(success=[put_op(b"a")]))],
        [txn_op(TxnRequest(success=[put_op(b"b")])), delete_op(b"\0", b"\0")],
    ],
)
def test_txn_writing_one_key_twice_is_rejected(log: Log, ops: list[RequestOp]) -> None:
    error = failed(log.txn(TxnRequest(success=ops)))
    assert (error.code, error.message) == ("INVALID_ARGUMENT", "duplicate key given in txn request")
    assert log.machine.revision == 2


def test_exclusive_nested_branches_may_write_the_same_key(log: Log) -> None:
    nested = TxnRequest(success=[put_op(b"a", b"then")], failure=[put_op(b"a", b"else")])
    ok(log.txn(TxnRequest(success=[txn_op(nested), delete_op(b"x"), delete_op(b"x")])))
    assert log.get(b"a").kvs[0].value == b"then"


def test_nested_txn_runs_its_chosen_branch_in_the_same_revision(log: Log) -> None:
    nested = TxnRequest(
        compare=[Compare(key=b"k", target=Compare.VERSION, result=Compare.EQUAL, version=9)],
        success=[put_op(b"n", b"then")],
        failure=[put_op(b"n", b"else")],
    )
    applied = log.txn(TxnRequest(success=[put_op(b"outer"), txn_op(nested)]))
    response = ok(applied).txn
    assert not response.responses[1].response_txn.succeeded
    assert log.get(b"n").kvs[0].value == b"else"
    assert applied.revision == 3
    assert [e.kv.key for e in applied.events] == [b"outer", b"n"]


def test_compare_target_must_match_the_field_set(log: Log) -> None:
    request = TxnRequest(
        compare=[Compare(key=b"k", target=Compare.VERSION, result=Compare.EQUAL, value=b"x")]
    )
    assert failed(log.txn(request)).code == "INVALID_ARGUMENT"


def test_too_many_ops_is_invalid_argument(log: Log) -> None:
    request = TxnRequest(success=[put_op(b"k%d" % i) for i in range(129)])
    assert failed(log.txn(request)).code == "INVALID_ARGUMENT"
