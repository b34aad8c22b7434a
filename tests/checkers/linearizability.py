"""Decide whether a key-value register history is linearizable.

A register history is linearizable iff every key's sub-history is (P-compositionality), so
keys are checked one at a time. Each key runs the Wing-Gong search with Lowe's memoization:
call and return entries are kept in a time-ordered linked list; the search linearizes a
pending call, lifts it out of the list and backtracks when it meets the return of an op it
could not place; a set of (linearized ops, register value) pairs already explored stops it
from repeating work. The search is an explicit stack, never recursion.

Failed ops are dropped (they did not happen). Ops with an unknown outcome (info, or still
open) return at +infinity and need not be linearized at all.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from tests.checkers.history import History, Operation

MAX_STATES_PER_KEY_DEFAULT = 2_000_000
# How many of the last linearized ops a failure message shows before the stuck op.
MAX_REASON_PREFIX_OPS = 3

# Compiled op codes: what an op does to, and demands of, the register when linearized.
_WRITE = 0  # set the value to a
_READ = 1  # demand the value is a
_SWAP = 2  # demand the value is a, then set it to b
_MISS = 3  # demand the value is not a (a cas whose compare failed)


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool  # False on a violation OR when the search budget ran out
    exhausted: bool  # True if the budget ran out (counts as failure, never as success)
    key: str | None  # the first key that failed
    reason: str  # human-readable: which ops could not be linearized
    explored: int  # search states visited


@dataclass(frozen=True, slots=True)
class _Step:
    """One op of one key, reduced to what the search needs."""

    code: int
    a: int  # a value id (see _Values)
    b: int  # the value id a swap writes; -1 for other codes
    required: bool  # ok ops must be linearized; unknown-outcome ops may be skipped
    call_time: int
    return_time: int | None  # None: may take effect at any time after the call
    op: Operation


@dataclass(frozen=True, slots=True)
class _Verdict:
    ok: bool
    exhausted: bool
    reason: str
    explored: int


class _Values:
    """Maps register values to small ints so search states hash cheaply."""

    def __init__(self) -> None:
        self._ids: dict[Hashable, int] = {}
        self.values: list[object] = []

    def id(self, value: object) -> int:
        frozen = _freeze(value)
        found = self._ids.get(frozen)
        if found is None:
            found = len(self.values)
            self._ids[frozen] = found
            self.values.append(value)
        return found


_LIST_TAG = object()  # marks a frozen list so it never equals a tuple with the same items


def _freeze(value: object) -> Hashable:
    if isinstance(value, list):
        return (_LIST_TAG, tuple(_freeze(v) for v in value))
    if isinstance(value, tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return frozenset((k, _freeze(v)) for k, v in value.items())
    if isinstance(value, set | frozenset):
        return frozenset(_freeze(v) for v in value)
    return value  # type: ignore[return-value]


def check_linearizable(
    history: History,
    *,
    max_states_per_key: int = MAX_STATES_PER_KEY_DEFAULT,
    initial: object = None,
) -> CheckResult:
    """Check every key; a definite violation is reported in preference to an exhausted key."""
    if max_states_per_key < 1:
        raise ValueError("max_states_per_key must be positive")
    by_key: dict[str, list[Operation]] = {}
    for op in history.operations():
        by_key.setdefault(op.key, []).append(op)

    explored = 0
    first_exhausted: tuple[str, _Verdict] | None = None
    for key, ops in by_key.items():
        verdict = _check_key(key, ops, initial, max_states_per_key)
        explored += verdict.explored
        if verdict.exhausted:
            if first_exhausted is None:
                first_exhausted = (key, verdict)
        elif not verdict.ok:
            return CheckResult(False, False, key, verdict.reason, explored)
    if first_exhausted is not None:
        key, verdict = first_exhausted
        return CheckResult(False, True, key, verdict.reason, explored)
    count = sum(len(ops) for ops in by_key.values())
    reason = f"linearizable: {len(by_key)} keys, {count} ops"
    return CheckResult(True, False, None, reason, explored)


def _check_key(key: str, ops: Sequence[Operation], initial: object, max_states: int) -> _Verdict:
    values = _Values()
    initial_id = values.id(initial)
    steps = _compile(ops, values)
    impossible = _impossible_read(steps, initial_id, values)
    if impossible is not None:
        return _Verdict(False, False, f"key {key!r} is not linearizable: {impossible}", 0)
    steps = _promote_observed_writes(_drop_unobserved_writes(steps), initial_id)
    steps, initial_id = _merge_unread_values(steps, initial_id, values)
    return _search(key, steps, initial_id, values, max_states)


def _compile(ops: Sequence[Operation], values: _Values) -> list[_Step]:
    steps: list[_Step] = []
    for op in ops:
        if op.status == "fail":
            continue
        required = op.status == "ok"
        end = op.complete_time if required else None
        if op.f == "put":
            steps.append(_Step(_WRITE, values.id(op.value), -1, required, op.invoke_time, end, op))
        elif op.f == "get":
            # A read with an unknown outcome changes nothing and promises nothing.
            if required:
                steps.append(_Step(_READ, values.id(op.result), -1, True, op.invoke_time, end, op))
        elif op.f == "cas":
            expected, new = _cas_argument(op)
            a, b = values.id(expected), values.id(new)
            if not required or op.result is True:
                # An unknown cas either swapped or changed nothing; the latter is the same as
                # never linearizing it, so only the swap needs exploring.
                steps.append(_Step(_SWAP, a, b, required, op.invoke_time, end, op))
            elif op.result is False:
                steps.append(_Step(_MISS, a, -1, True, op.invoke_time, end, op))
            else:
                raise ValueError(f"cas must complete with True or False: {op.describe()}")
        else:
            raise ValueError(f"unknown register operation: {op.describe()}")
    return steps


def _cas_argument(op: Operation) -> tuple[object, object]:
    if not isinstance(op.value, tuple | list) or len(op.value) != 2:
        raise ValueError(f"cas takes (expected, new): {op.describe()}")
    return op.value[0], op.value[1]


def _written(step: _Step) -> int | None:
    if step.code == _WRITE:
        return step.a
    if step.code == _SWAP:
        return step.b
    return None


def _impossible_read(steps: Sequence[_Step], initial_id: int, values: _Values) -> str | None:
    """Cheap checks that need no search: a value read that nobody wrote, or not yet."""
    earliest_write: dict[int, int] = {}
    for step in steps:
        written = _written(step)
        if written is not None:
            known = earliest_write.get(written, step.call_time)
            earliest_write[written] = min(known, step.call_time)
    for step in steps:
        if not step.required or step.code not in (_READ, _SWAP) or step.a == initial_id:
            continue
        shown = values.values[step.a]
        started = earliest_write.get(step.a)
        if started is None:
            return f"{step.op.describe()} observed {shown!r}, which no put or cas wrote"
        assert step.return_time is not None  # required steps always have a return
        if step.return_time < started:
            return (
                f"{step.op.describe()} observed {shown!r} before any write of it began "
                f"(earliest at {started})"
            )
    return None


def _drop_unobserved_writes(steps: list[_Step]) -> list[_Step]:
    """Drop unknown-outcome writes of values that nothing ever reads.

    Such a write only sets a value that no later read or swap can depend on, so any
    linearization containing it stays valid without it, unless a failed compare could be
    relying on the register holding "anything but a" for a while.
    """
    if any(s.code == _MISS for s in steps):
        return steps
    observed = {s.a for s in steps if s.code == _SWAP or (s.code == _READ and s.required)}
    return [s for s in steps if s.required or _written(s) in observed]


def _promote_observed_writes(steps: list[_Step], initial_id: int) -> list[_Step]:
    """Make an unknown-outcome write required when a completed op read its unique value.

    If only that write produced the value (and it is not the initial value), it must have
    taken effect before the first completed observer returned, which bounds the search.
    """
    writers: dict[int, list[_Step]] = {}
    for step in steps:
        written = _written(step)
        if written is not None:
            writers.setdefault(written, []).append(step)
    deadline: dict[int, int] = {}
    for step in steps:
        if step.required and step.code in (_READ, _SWAP):
            assert step.return_time is not None
            deadline[step.a] = min(deadline.get(step.a, step.return_time), step.return_time)
    promoted: list[_Step] = []
    for step in steps:
        written = _written(step)
        if (
            not step.required
            and written is not None
            and written != initial_id
            and written in deadline
            and len(writers[written]) == 1
        ):
            ends = max(deadline[written], step.call_time)
            step = _Step(step.code, step.a, step.b, True, step.call_time, ends, step.op)
        promoted.append(step)
    return promoted


class _Unread:
    """Stands for every value that no op reads: they all behave alike."""

    def __repr__(self) -> str:
        return "<a value no op reads>"


def _merge_unread_values(
    steps: list[_Step], initial_id: int, values: _Values
) -> tuple[list[_Step], int]:
    """Map every value that no read, swap or failed compare names to one shared value.

    Reads and swaps never accept such a value and failed compares always do, so registers
    holding any two of them are indistinguishable; merging them lets the memo see that.
    """
    named = {s.a for s in steps if s.code != _WRITE}
    unread = values.id(_Unread())

    def merged(value_id: int) -> int:
        return value_id if value_id in named else unread

    out: list[_Step] = []
    for s in steps:
        if s.code == _WRITE:
            s = _Step(s.code, merged(s.a), s.b, s.required, s.call_time, s.return_time, s.op)
        elif s.code == _SWAP:
            s = _Step(s.code, s.a, merged(s.b), s.required, s.call_time, s.return_time, s.op)
        out.append(s)
    return out, merged(initial_id)


def _symmetry_chains(steps: Sequence[_Step]) -> list[int]:
    """For each optional step, the optional step with the same effect invoked just before it.

    Optional steps never return, so two with the same effect can trade places in any
    linearization once both have been invoked. The search may therefore take them in
    invoke order only, which turns 2^k subsets of look-alikes into k + 1 counts.
    """
    previous = [-1] * len(steps)
    last_of: dict[tuple[int, int, int], int] = {}
    for i in sorted(range(len(steps)), key=lambda i: (steps[i].call_time, i)):
        s = steps[i]
        if s.required:
            continue
        effect = (s.code, s.a, s.b)
        previous[i] = last_of.get(effect, -1)
        last_of[effect] = i
    return previous


def _search(
    key: str, steps: Sequence[_Step], initial_id: int, values: _Values, max_states: int
) -> _Verdict:
    required_left = sum(1 for s in steps if s.required)
    if required_left == 0:
        return _Verdict(True, False, "", 0)

    # Entries sorted by time; at equal times calls come first, so touching ops overlap.
    keyed: list[tuple[tuple[int, int, int, int], int, bool]] = []
    for i, s in enumerate(steps):
        keyed.append(((0, s.call_time, 0, i), i, True))
        if s.return_time is None:
            keyed.append(((1, 0, 1, i), i, False))
        else:
            keyed.append(((0, s.return_time, 1, i), i, False))
    keyed.sort(key=lambda entry: entry[0])

    size = len(keyed)
    tail = size + 1  # sentinel; never reached while a required op is pending
    head = 0
    nxt = [p + 1 for p in range(size + 2)]
    prv = [p - 1 for p in range(size + 2)]
    op_at = [0] * (size + 2)
    is_call = [False] * (size + 2)
    return_pos = [0] * len(steps)
    for pos, (_, i, call) in enumerate(keyed, start=1):
        op_at[pos] = i
        is_call[pos] = call
        if not call:
            return_pos[i] = pos

    code = [s.code for s in steps]
    arg_a = [s.a for s in steps]
    arg_b = [s.b for s in steps]
    required = [s.required for s in steps]
    bit = [1 << i for i in range(len(steps))]
    # A fitting read or failed compare changes nothing, and every op that must precede it is
    # already placed (its call is reachable), so taking it at once is never wrong: it is
    # forced, and the other choices at that point need not be tried.
    forced = [s.code in (_READ, _MISS) for s in steps]
    # Bit of the look-alike that must be linearized first; 0 when there is none.
    chain_bit = [0 if j < 0 else bit[j] for j in _symmetry_chains(steps)]

    linearized = 0
    state = initial_id
    # An optional op is only worth taking when something reads what it leaves behind, so an
    # optional op is never directly followed by a plain write (which would erase its effect).
    after_optional = False
    stack: list[tuple[int, int, bool]] = []  # (call position, value before it, after_optional)
    seen: set[tuple[int, int, bool]] = set()
    explored = 0
    best_prefix: list[int] = []
    best_blocker = -1
    best_state = initial_id

    node = nxt[head]
    while required_left > 0:
        assert node != tail, "a required op's return must stop the scan"
        if is_call[node]:
            i = op_at[node]
            c = code[i]
            if c == _WRITE:
                fits, after = True, arg_a[i]
            elif c == _READ:
                fits, after = state == arg_a[i], state
            elif c == _SWAP:
                fits, after = state == arg_a[i], arg_b[i]
            else:
                fits, after = state != arg_a[i], state
            if after_optional and c == _WRITE:
                fits = False
            if fits and linearized & chain_bit[i] == chain_bit[i]:
                memo = (linearized | bit[i], after, not required[i])
                if memo not in seen:
                    if explored >= max_states:
                        return _Verdict(
                            False,
                            True,
                            f"key {key!r}: gave up after exploring {explored} states "
                            f"(max_states_per_key={max_states}); no verdict",
                            explored,
                        )
                    seen.add(memo)
                    explored += 1
                    stack.append((node, state, after_optional))
                    linearized, state, after_optional = memo
                    if required[i]:
                        required_left -= 1
                    ret = return_pos[i]
                    nxt[prv[node]] = nxt[node]
                    prv[nxt[node]] = prv[node]
                    nxt[prv[ret]] = nxt[ret]
                    prv[nxt[ret]] = prv[ret]
                    node = nxt[head]
                    continue
                if not forced[i]:
                    node = nxt[node]
                    continue
                # The forced op's successor already failed, so this configuration fails.
            else:
                node = nxt[node]
                continue
        elif len(stack) > len(best_prefix) or best_blocker < 0:
            # A required op returns here and none of the calls before it could come next.
            best_prefix = [op_at[entry[0]] for entry in stack]
            best_blocker = op_at[node]
            best_state = state

        # Backtrack past forced ops: the configuration before one fails whenever the one
        # after it does, so their alternatives need no exploring.
        while True:
            if not stack:
                return _Verdict(
                    False,
                    False,
                    _violation(key, steps, best_prefix, best_blocker, values.values[best_state]),
                    explored,
                )
            node, state, after_optional = stack.pop()
            i = op_at[node]
            linearized ^= bit[i]
            if required[i]:
                required_left += 1
            ret = return_pos[i]
            # Reinsert in the reverse order of removal so the neighbours' links stay valid.
            nxt[prv[ret]] = ret
            prv[nxt[ret]] = ret
            nxt[prv[node]] = node
            prv[nxt[node]] = node
            if not forced[i]:
                break
        node = nxt[node]
    return _Verdict(True, False, "", explored)


def _violation(
    key: str, steps: Sequence[_Step], prefix: Sequence[int], blocker: int, held: object
) -> str:
    lines = [
        f"key {key!r} is not linearizable: {steps[blocker].op.describe()} could not be "
        f"linearized after the longest linearizable prefix of {len(prefix)} of "
        f"{len(steps)} ops, which leaves the register holding {held!r}"
    ]
    shown = prefix[-MAX_REASON_PREFIX_OPS:]
    if shown:
        lines.append("the prefix ends with:")
        lines.extend(f"  {steps[i].op.describe()}" for i in shown)
    return "\n".join(lines)
