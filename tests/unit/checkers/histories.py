"""Builders for register histories used by the checker tests.

`build` records hand-written operations; `random_register_history` runs a real register
under concurrent clients and records what they saw; `brute_force_linearizable` is a slow,
obviously-correct reference that tries every order.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tests.checkers.history import History, Operation

# Bounds that keep the reference search and the generator finite.
MAX_BRUTE_FORCE_OPS = 7
MAX_GENERATOR_WAIT_STEPS = 1_000
SPACING_TICKS = 10  # distance between consecutive true linearization points


@dataclass(frozen=True, slots=True)
class Spec:
    """An operation as a test writes it: status is ok, fail, info or open."""

    process: int
    f: str
    key: str
    value: object
    start: int
    end: int | None = None
    result: object = None
    status: str = "ok"


def put(process: int, key: str, value: object, start: int, end: int, status: str = "ok") -> Spec:
    return Spec(process, "put", key, value, start, end, None, status)


def get(process: int, key: str, result: object, start: int, end: int) -> Spec:
    return Spec(process, "get", key, None, start, end, result)


def cas(
    process: int, key: str, expected: object, new: object, swapped: bool, start: int, end: int
) -> Spec:
    return Spec(process, "cas", key, (expected, new), start, end, swapped)


def build(specs: Iterable[Spec]) -> History:
    """Record specs in time order.

    At one instant, completions of earlier ops come first (freeing their processes), then
    invokes in spec order, each op that begins and ends at that instant completing right
    after its own invoke.
    """
    specs = list(specs)
    timeline: list[tuple[int, int, int, int]] = []
    for n, spec in enumerate(specs):
        timeline.append((spec.start, 1, n, 0))
        if spec.status != "open":
            assert spec.end is not None, f"{spec} needs an end time"
            if spec.end == spec.start:
                timeline.append((spec.end, 1, n, 1))
            else:
                timeline.append((spec.end, 0, n, 1))
    timeline.sort()
    history = History()
    op_ids: dict[int, int] = {}
    for time, _, n, is_completion in timeline:
        spec = specs[n]
        if not is_completion:
            op_ids[n] = history.invoke(spec.process, spec.f, spec.key, spec.value, time)
        elif spec.status == "ok":
            history.ok(op_ids[n], spec.result, time)
        elif spec.status == "fail":
            history.fail(op_ids[n], time)
        else:
            history.info(op_ids[n], time)
    return history


@dataclass(frozen=True, slots=True)
class Generated:
    history: History
    specs: tuple[Spec, ...]


def random_register_history(
    rng: random.Random,
    *,
    processes: int,
    ops: int,
    keys: Sequence[str],
    widen_max: int,
    info_rate: float = 0.0,
    fail_rate: float = 0.0,
) -> Generated:
    """Run a real register: op k takes effect at tick k*SPACING_TICKS, inside its interval.

    Intervals are widened at random around that point, so the true order is one valid
    linearization and the history is linearizable by construction.
    """
    register: dict[str, object] = {}
    free_at = [-1] * processes
    specs: list[Spec] = []
    fresh = itertools.count(100)
    point = 0
    for _ in range(ops):
        for _ in range(MAX_GENERATOR_WAIT_STEPS):
            point += SPACING_TICKS
            idle = [p for p in range(processes) if free_at[p] < point]
            if idle:
                break
        else:
            raise AssertionError("no process became idle")
        process = rng.choice(idle)
        start = rng.randint(max(free_at[process] + 1, point - widen_max), point)
        end = rng.randint(point, point + widen_max)
        free_at[process] = end
        key = rng.choice(keys)
        current = register.get(key)
        roll = rng.random()
        status = "info" if roll < info_rate else "fail" if roll < info_rate + fail_rate else "ok"
        # A failed op never takes effect; an info op takes effect half of the time.
        applies = status == "ok" or (status == "info" and rng.random() < 0.5)
        kind = rng.choice(("put", "get", "cas"))
        if kind == "put":
            value = next(fresh) if rng.random() < 0.7 else rng.randrange(3)
            if applies:
                register[key] = value
            specs.append(Spec(process, "put", key, value, start, end, None, status))
        elif kind == "get":
            specs.append(Spec(process, "get", key, None, start, end, current, status))
        else:
            expected = current if rng.random() < 0.5 else rng.choice((None, 0, 1, 2))
            new = next(fresh)
            swapped = current == expected
            if applies and swapped:
                register[key] = new
            specs.append(Spec(process, "cas", key, (expected, new), start, end, swapped, status))
    return Generated(build(specs), tuple(specs))


def brute_force_linearizable(ops: Sequence[Operation], initial: object = None) -> bool:
    """Try every subset of unknown-outcome ops and every order that respects real time."""
    live = [op for op in ops if op.status != "fail"]
    assert len(live) <= MAX_BRUTE_FORCE_OPS, "the reference search is exponential"
    required = [op for op in live if op.status == "ok"]
    optional = [op for op in live if op.status != "ok"]
    for size in range(len(optional) + 1):
        for chosen in itertools.combinations(optional, size):
            for order in itertools.permutations(required + list(chosen)):
                if _respects_real_time(order) and _legal(order, initial):
                    return True
    return False


def _ends(op: Operation) -> float:
    return op.complete_time if op.status == "ok" and op.complete_time is not None else float("inf")


def _respects_real_time(order: Sequence[Operation]) -> bool:
    return not any(
        _ends(later) < earlier.invoke_time
        for i, earlier in enumerate(order)
        for later in order[i + 1 :]
    )


def _legal(order: Sequence[Operation], initial: object) -> bool:
    state = initial
    for op in order:
        if op.f == "put":
            state = op.value
        elif op.f == "get":
            if op.status == "ok" and op.result != state:
                return False
        else:
            expected, new = op.value  # type: ignore[misc]
            swapped = state == expected
            if op.status == "ok" and op.result != swapped:
                return False
            if swapped:
                state = new
    return True


def reference_linearizable(ops: Sequence[Operation], initial: object = None) -> bool:
    """Plain Wing-Gong with a memo and none of the checker's shortcuts; fine for ~20 ops.

    Any op may come next if no unplaced op returned before it was invoked; ops with an
    unknown outcome never return and may be left out.
    """
    live = [op for op in ops if op.status != "fail"]
    required = frozenset(i for i, op in enumerate(live) if op.status == "ok")
    failed: set[tuple[frozenset[int], object]] = set()
    # (placed ops, register value, next candidate to try)
    stack: list[tuple[frozenset[int], object, int]] = [(frozenset(), initial, 0)]
    while stack:
        placed, state, start = stack.pop()
        if required <= placed:
            return True
        deadline = min(_ends(live[j]) for j in required - placed)
        for i in range(start, len(live)):
            op = live[i]
            if i in placed or op.invoke_time > deadline:
                continue
            after = _apply(op, state)
            if after is _ILLEGAL or (placed | {i}, after) in failed:
                continue
            stack.append((placed, state, i + 1))
            stack.append((placed | {i}, after, 0))
            break
        else:
            failed.add((placed, state))
    return False


_ILLEGAL = object()


def _apply(op: Operation, state: object) -> object:
    """The register value after op, or _ILLEGAL if op's recorded result rules it out here."""
    if op.f == "put":
        return op.value
    if op.f == "get":
        return _ILLEGAL if op.status == "ok" and op.result != state else state
    expected, new = op.value  # type: ignore[misc]
    swapped = state == expected
    if op.status == "ok" and op.result != swapped:
        return _ILLEGAL
    return new if swapped else state
