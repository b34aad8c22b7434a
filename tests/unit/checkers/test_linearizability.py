"""The register linearizability checker: violations found, valid histories accepted."""

from __future__ import annotations

import random

import pytest

from tests.checkers.history import History
from tests.checkers.linearizability import check_linearizable
from tests.unit.checkers.histories import (
    MAX_BRUTE_FORCE_OPS,
    Spec,
    brute_force_linearizable,
    build,
    cas,
    get,
    put,
    random_register_history,
    reference_linearizable,
)

PROPERTY_SEEDS = range(60)
CROSS_CHECK_SEEDS = range(300)
MEDIUM_CROSS_CHECK_SEEDS = range(150)
MAX_MEDIUM_OPS = 16


def test_rejects_stale_read() -> None:
    history = build([put(0, "x", 1, 0, 1), put(0, "x", 2, 2, 3), get(1, "x", 1, 4, 5)])
    result = check_linearizable(history)
    assert not result.ok
    assert not result.exhausted
    assert result.key == "x"
    assert "op 2 (process 1) get 'x' None -> 1 [4, 5] saw the value of op 0" in result.reason
    assert "after op 1 (process 0) put 'x' 2 ok [2, 3] had overwritten it" in result.reason


def test_rejects_stale_read_when_values_repeat() -> None:
    # Value 1 is written twice, so only the search can rule the read out.
    history = build(
        [
            put(0, "x", 1, 0, 1),
            put(0, "x", 2, 2, 3),
            get(1, "x", 1, 4, 5),
            put(0, "x", 1, 6, 7),
        ]
    )
    result = check_linearizable(history)
    assert not result.ok
    assert "op 2 (process 1) get 'x' None -> 1 [4, 5] could not be linearized" in result.reason
    assert "prefix of 2 of 4 ops" in result.reason
    assert "op 1 (process 0) put 'x' 2 ok [2, 3]" in result.reason


def test_rejects_lost_write_read_as_absent() -> None:
    history = build([put(0, "x", 7, 0, 1), get(1, "x", None, 2, 3)])
    result = check_linearizable(history)
    assert not result.ok
    assert result.key == "x"


def test_rejects_lost_write_read_as_older_value() -> None:
    history = build([put(0, "x", 1, 0, 1), put(1, "x", 2, 2, 5), get(2, "x", 1, 6, 7)])
    assert not check_linearizable(history).ok


def test_rejects_read_of_value_never_written() -> None:
    history = build([put(0, "x", 1, 0, 1), get(1, "x", 99, 0, 3)])
    result = check_linearizable(history)
    assert not result.ok
    assert "no put or cas wrote" in result.reason
    assert result.explored == 0  # found without any search


def test_rejects_read_of_value_written_only_by_failed_op() -> None:
    history = build([put(0, "x", 1, 0, 3, status="fail"), get(1, "x", 1, 1, 2)])
    assert not check_linearizable(history).ok


def test_rejects_read_from_the_future() -> None:
    history = build([get(1, "x", 5, 0, 1), put(0, "x", 5, 2, 3)])
    result = check_linearizable(history)
    assert not result.ok
    assert "before any write of it began" in result.reason


def test_rejects_cas_success_against_value_that_was_not_current() -> None:
    history = build([put(0, "x", 1, 0, 1), put(0, "x", 2, 2, 3), cas(1, "x", 1, 3, True, 4, 5)])
    result = check_linearizable(history)
    assert not result.ok
    assert "op 2 (process 1) cas 'x' (1, 3) -> True [4, 5]" in result.reason


def test_rejects_cas_compare_failure_against_the_current_value() -> None:
    history = build([put(0, "x", 1, 0, 1), cas(1, "x", 1, 3, False, 2, 3)])
    assert not check_linearizable(history).ok


def test_accepts_cas_compare_failure_that_reads_the_key() -> None:
    history = build([put(0, "x", 1, 0, 1), cas(1, "x", 2, 3, False, 2, 3), get(0, "x", 1, 4, 5)])
    assert check_linearizable(history).ok


def test_accepts_valid_concurrent_history_with_info_and_fail_ops() -> None:
    history = build(
        [
            put(0, "x", 1, 0, 10),
            put(1, "x", 2, 2, 8),
            get(2, "x", 2, 3, 4),  # put 2 took effect first ...
            get(3, "x", 1, 5, 12),  # ... then put 1 overwrote it
            get(2, "x", 1, 13, 14),
            put(1, "x", 3, 9, 11, status="info"),  # took effect: read below
            put(4, "x", 4, 1, 2, status="info"),  # never took effect
            put(5, "x", 5, 6, 7, status="fail"),
            get(3, "x", 3, 15, 16),
            cas(2, "x", 3, 6, True, 15, 18),
            get(0, "x", 6, 19, 20),
        ]
    )
    result = check_linearizable(history)
    assert result.ok, result.reason
    assert not result.exhausted
    assert result.key is None


def test_rejects_the_same_reads_in_an_inconsistent_order() -> None:
    # Two readers see both writes but in opposite orders: no single order explains both.
    history = build(
        [
            put(0, "x", 1, 0, 10),
            put(1, "x", 2, 0, 10),
            get(2, "x", 1, 1, 2),
            get(2, "x", 2, 3, 4),
            get(3, "x", 2, 1, 2),
            get(3, "x", 1, 3, 4),
        ]
    )
    assert not check_linearizable(history).ok


def test_accepts_info_put_observed_by_a_later_read() -> None:
    history = build(
        [put(0, "x", 1, 0, 1), put(1, "x", 2, 2, 3, status="info"), get(2, "x", 2, 10, 11)]
    )
    assert check_linearizable(history).ok


def test_accepts_info_put_that_is_never_observed() -> None:
    history = build(
        [put(0, "x", 1, 0, 1), put(1, "x", 2, 2, 3, status="info"), get(2, "x", 1, 10, 11)]
    )
    assert check_linearizable(history).ok


def test_accepts_open_op_that_takes_effect_long_after_its_invoke() -> None:
    history = build(
        [
            Spec(1, "put", "x", 2, 2, status="open"),
            get(0, "x", None, 5, 6),
            get(0, "x", 2, 20, 21),
        ]
    )
    assert check_linearizable(history).ok


def test_rejects_reads_that_go_back_after_an_info_put_was_observed() -> None:
    history = build(
        [
            put(0, "x", 1, 0, 1),
            put(1, "x", 2, 2, 3, status="info"),
            get(2, "x", 2, 4, 5),
            get(2, "x", 1, 6, 7),
        ]
    )
    assert not check_linearizable(history).ok


def test_equal_times_count_as_concurrent() -> None:
    touching = build([put(0, "x", 1, 0, 5), get(1, "x", None, 5, 6)])
    apart = build([put(0, "x", 1, 0, 5), get(1, "x", None, 6, 7)])
    assert check_linearizable(touching).ok
    assert not check_linearizable(apart).ok


def test_initial_value_is_what_an_unwritten_key_reads() -> None:
    history = build([get(0, "x", 0, 0, 1)])
    assert check_linearizable(history, initial=0).ok
    assert not check_linearizable(history).ok


def _pathological(key: str) -> list[Spec]:
    """Twelve concurrent puts, then compares that fail against every value they wrote.

    No order works, and proving it visits every subset of the puts.
    """
    specs = [put(p, key, p, 0, 100) for p in range(12)]
    specs.extend(cas(0, key, p, -1, False, 101 + 2 * p, 102 + 2 * p) for p in range(12))
    return specs


def test_exhausts_budget_on_pathological_history() -> None:
    history = build(_pathological("x"))
    result = check_linearizable(history, max_states_per_key=50)
    assert not result.ok
    assert result.exhausted
    assert result.key == "x"
    assert result.explored == 50
    assert "gave up" in result.reason
    # With room to finish, the same history gets a definite verdict.
    full = check_linearizable(history)
    assert not full.ok
    assert not full.exhausted
    assert full.explored > 12 * 2**10  # every subset of the puts, with its last value


def test_multi_key_partitioning_names_the_violating_key() -> None:
    rng = random.Random(7)
    generated = random_register_history(
        rng, processes=6, ops=300, keys=[f"k{i}" for i in range(10)], widen_max=25
    )
    specs = list(generated.specs)
    last = max(s.end for s in specs if s.end is not None)
    # On k4, a completed write and then a read, strictly later, of the initial value.
    specs.append(put(0, "k4", "fresh", last + 1, last + 2))
    specs.append(get(0, "k4", None, last + 3, last + 4))
    assert check_linearizable(generated.history).ok
    result = check_linearizable(build(specs))
    assert not result.ok
    assert not result.exhausted
    assert result.key == "k4"
    assert "'k4'" in result.reason


def test_reports_a_violation_in_preference_to_an_exhausted_key() -> None:
    specs = _pathological("hard")
    specs.extend([put(20, "easy", 1, 0, 1), get(20, "easy", None, 2, 3)])
    result = check_linearizable(build(specs), max_states_per_key=50)
    assert not result.ok
    assert not result.exhausted
    assert result.key == "easy"


@pytest.mark.parametrize("seed", PROPERTY_SEEDS)
def test_property_histories_of_a_real_register_are_accepted(seed: int) -> None:
    rng = random.Random(seed)
    generated = random_register_history(
        rng,
        processes=rng.randint(1, 10),
        ops=rng.randint(1, 300),
        keys=["a", "b", "c"][: rng.randint(1, 3)],
        widen_max=rng.choice((0, 5, 15, 40, 80)),
        info_rate=rng.choice((0.0, 0.05, 0.2, 0.4)),
        fail_rate=rng.choice((0.0, 0.1)),
    )
    result = check_linearizable(generated.history)
    assert result.ok, f"seed {seed}: {result.reason}"
    assert not result.exhausted


@pytest.mark.parametrize("seed", PROPERTY_SEEDS)
def test_property_a_corrupted_read_is_rejected(seed: int) -> None:
    rng = random.Random(seed)
    generated = random_register_history(
        rng,
        processes=rng.randint(1, 10),
        ops=rng.randint(1, 300),
        keys=["a"],
        widen_max=rng.choice((0, 5, 15, 40, 80)),
        info_rate=rng.choice((0.0, 0.05, 0.2, 0.4)),
        fail_rate=rng.choice((0.0, 0.1)),
    )
    specs = list(generated.specs)
    # Quiesce, write a value nobody else writes, then read it back alone. Corrupt that read
    # to a value whose every writer completed before the barrier write began; unknown
    # outcome writes never complete, so their values are excluded. The corruption is then
    # illegal by construction.
    after = max((s.end for s in specs if s.end is not None), default=0) + 1
    specs.append(put(0, "a", "barrier", after, after + 1))
    specs.append(get(0, "a", "barrier", after + 2, after + 3))
    assert check_linearizable(build(specs)).ok
    maybe_written = {v for s in specs if s.status == "info" for v in _writes(s)}
    surely_written = [v for s in specs if s.status == "ok" for v in _writes(s)]
    candidates = [v for v in [None, *surely_written] if v != "barrier" and v not in maybe_written]
    assert candidates  # the generator never writes None, so None is always one
    specs[-1] = get(0, "a", rng.choice(candidates), after + 2, after + 3)
    result = check_linearizable(build(specs))
    assert not result.ok, f"seed {seed}: corrupted read accepted"
    assert not result.exhausted
    assert result.key == "a"


def _writes(spec: Spec) -> list[object]:
    """The value a spec may have written, if any (a failed compare writes nothing)."""
    if spec.f == "put":
        return [spec.value]
    if spec.f == "cas" and (spec.status != "ok" or spec.result is True):
        return [spec.value[1]]  # type: ignore[index]
    return []


def _arbitrary_history(rng: random.Random, max_ops: int) -> History:
    """Random intervals and random results: some linearizable, most not."""
    specs: list[Spec] = []
    free_at = {p: 0 for p in range(rng.randint(1, 4))}
    values = (1, 2, 3, None)[: rng.randint(2, 4)]
    for _ in range(rng.randint(1, max_ops)):
        process = rng.choice(list(free_at))
        start = free_at[process] + rng.randint(0, 3)
        end = start + rng.randint(0, 6)
        free_at[process] = end + rng.randint(0, 1)
        status = rng.choice(("ok", "ok", "ok", "info", "info", "fail"))
        f = rng.choice(("put", "get", "cas"))
        value: object = None
        result: object = None
        if f == "put":
            value = rng.choice(values)
        elif f == "get":
            result = rng.choice(values)
        else:
            value = (rng.choice(values), rng.choice(values))
            result = rng.choice((True, False))
        specs.append(Spec(process, f, "x", value, start, end, result, status))
    if rng.random() < 0.2:
        last = specs[-1]
        specs[-1] = Spec(last.process, last.f, "x", last.value, last.start, None, None, "open")
    return build(specs)


@pytest.mark.parametrize("seed", CROSS_CHECK_SEEDS)
def test_agrees_with_brute_force_on_small_arbitrary_histories(seed: int) -> None:
    rng = random.Random(seed)
    history = _arbitrary_history(rng, MAX_BRUTE_FORCE_OPS)
    initial = rng.choice((None, 1))
    expected = brute_force_linearizable(history.operations(), initial)
    result = check_linearizable(history, initial=initial)
    assert result.ok == expected, f"seed {seed}: {history.to_jsonl()}"
    assert not result.exhausted


@pytest.mark.parametrize("seed", MEDIUM_CROSS_CHECK_SEEDS)
def test_agrees_with_plain_search_on_medium_arbitrary_histories(seed: int) -> None:
    rng = random.Random(seed)
    history = _arbitrary_history(rng, MAX_MEDIUM_OPS)
    initial = rng.choice((None, 1))
    expected = reference_linearizable(history.operations(), initial)
    result = check_linearizable(history, initial=initial)
    assert result.ok == expected, f"seed {seed}: {history.to_jsonl()}"
    assert not result.exhausted


def test_cross_check_samples_hold_both_verdicts() -> None:
    # Guards the tests above against a generator that only ever yields one kind of answer.
    small = {
        brute_force_linearizable(
            _arbitrary_history(random.Random(seed), MAX_BRUTE_FORCE_OPS).operations()
        )
        for seed in CROSS_CHECK_SEEDS
    }
    medium = {
        reference_linearizable(_arbitrary_history(random.Random(seed), MAX_MEDIUM_OPS).operations())
        for seed in MEDIUM_CROSS_CHECK_SEEDS
    }
    assert small == {True, False}
    assert medium == {True, False}


def test_realistic_history_needs_few_states() -> None:
    rng = random.Random(2024)
    generated = random_register_history(
        rng, processes=10, ops=2_000, keys=["a", "b", "c", "d"], widen_max=60, info_rate=0.03
    )
    result = check_linearizable(generated.history)
    assert result.ok, result.reason
    # Memoization keeps a valid history close to one state per op.
    assert result.explored < 10 * len(generated.specs)


def test_jsonl_round_trip_keeps_every_event_and_verdict() -> None:
    history = build(
        [
            put(0, "x", b"\x00bytes", 0, 1),
            cas(1, "x", b"\x00bytes", (1, [2, "three"]), True, 2, 3),
            get(2, "x", (1, [2, "three"]), 4, 5),
            put(3, "y", {"nested": (None, 1.5)}, 0, 9, status="info"),
            put(4, "y", 5, 1, 2, status="fail"),
            Spec(5, "get", "y", None, 6, status="open"),
            get(1, "x", 1, 6, 7),  # a violation, so the verdict is worth comparing
        ]
    )
    text = history.to_jsonl()
    restored = History.from_jsonl(text)
    assert restored.events == history.events
    assert restored.operations() == history.operations()
    assert restored.to_jsonl() == text
    assert check_linearizable(restored) == check_linearizable(history)
    assert not check_linearizable(restored).ok
    # A restored history keeps recording with fresh op ids.
    op_id = restored.invoke(9, "get", "x", None, 10)
    assert op_id == max(e.op_id for e in history.events) + 1
