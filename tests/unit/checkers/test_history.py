"""Recording operation histories: pairing, validation and the JSONL form."""

from __future__ import annotations

import pytest

from tests.checkers.history import Event, History


def test_operations_pair_each_invoke_with_its_completion() -> None:
    history = History()
    put = history.invoke(0, "put", "x", 1, 10)
    get = history.invoke(1, "get", "x", None, 11)
    cas = history.invoke(2, "cas", "x", (1, 2), 12)
    lost = history.invoke(3, "put", "x", 9, 13)
    history.ok(put, None, 14)
    history.ok(get, 1, 15)
    history.info(cas, 16)
    history.fail(lost, 17)
    history.invoke(0, "get", "x", None, 18)

    ops = {op.op_id: op for op in history.operations()}
    assert [op.status for op in ops.values()] == ["ok", "ok", "info", "fail", "open"]
    assert ops[get].result == 1
    assert (ops[get].invoke_time, ops[get].complete_time) == (11, 15)
    assert ops[cas].result is None
    assert ops[4].complete_time is None
    assert "get 'x' None -> 1 [11, 15]" in ops[get].describe()


def test_fail_and_info_events_keep_the_invoked_argument() -> None:
    history = History()
    op_id = history.invoke(5, "cas", "k", (None, 3), 0)
    history.info(op_id, 4)
    assert history.events[-1] == Event("info", 5, op_id, "cas", "k", (None, 3), 4)


def test_a_process_runs_one_operation_at_a_time() -> None:
    history = History()
    first = history.invoke(0, "get", "x", None, 0)
    with pytest.raises(ValueError, match="still open"):
        history.invoke(0, "get", "x", None, 1)
    history.info(first, 2)
    assert history.invoke(0, "get", "x", None, 3) == first + 1


def test_completions_must_match_an_open_operation() -> None:
    history = History()
    op_id = history.invoke(0, "put", "x", 1, 5)
    with pytest.raises(ValueError, match="before its invoke"):
        history.ok(op_id, None, 4)
    with pytest.raises(ValueError, match="not open"):
        history.ok(op_id + 1, None, 6)
    history.ok(op_id, None, 6)
    with pytest.raises(ValueError, match="not open"):
        history.fail(op_id, 7)
    assert len(history.events) == 2


def test_from_jsonl_names_the_bad_line() -> None:
    good = History()
    good.invoke(0, "get", "x", None, 0)
    text = good.to_jsonl() + '{"kind": "ok"}\n'
    with pytest.raises(ValueError, match="line 2"):
        History.from_jsonl(text)


def test_from_jsonl_rejects_a_completion_without_an_invoke() -> None:
    source = History()
    op_id = source.invoke(0, "put", "x", 1, 0)
    source.ok(op_id, None, 1)
    completion_only = source.to_jsonl().splitlines()[1]
    with pytest.raises(ValueError, match="line 1"):
        History.from_jsonl(completion_only)


def test_values_that_json_cannot_hold_are_refused() -> None:
    history = History()
    history.invoke(0, "put", "x", object(), 0)
    with pytest.raises(TypeError, match="cannot record"):
        history.to_jsonl()
