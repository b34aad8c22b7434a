"""Decide whether a key-value register history is linearizable.

A register history is linearizable iff every key's sub-history is (P-compositionality), so
keys are checked one at a time. Each key runs the Wing-Gong search with Lowe's memoization:
call and return entries are kept in a time-ordered linked list; the search linearizes a
pending call, lifts it out of the list and backtracks when it meets the return of an op it
could not place; configurations that already failed are remembered and never explored
again. The search is an explicit stack, never recursion.

Failed ops are dropped (they did not happen). Ops with an unknown outcome (info, or still
open) return at +infinity and need not be linearized at all. Those ops are what makes the
search explode, so before searching, each key's ops are simplified in ways that keep the
verdict: reads of values nobody wrote (or that were surely overwritten) fail at once,
unknown writes that nobody reads are dropped, unknown writes whose value a completed op
read are made required, and values no op reads are merged into one.
"""

from __future__ import annotations

import bisect
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from tests.checkers.history import History, Operation

MAX_STATES_PER_KEY_DEFAULT = 2_000_000
# Failed optional-op sets remembered per configuration for the subset test; a bound keeps
# that test cheap, and the exact memo still catches every repeat.
MAX_DOMINATING_MASKS_PER_CONFIG = 16
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
    impossible = _impossible_read(steps, initial_id, values) or _stale_read(steps, initial_id)
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


def _stale_read(steps: Sequence[_Step], initial_id: int) -> str | None:
    """Find a completed op that saw a value after it was surely overwritten.

    If the only write of v completed before a completed write of another value began, and
    that one completed before a reader began, the reader cannot see v in any order. Reading
    the initial value after any completed write is the same case when nobody writes it.
    """
    writers: dict[int, list[_Step]] = {}
    for step in steps:
        written = _written(step)
        if written is not None:
            writers.setdefault(written, []).append(step)
    settled = sorted(
        (s for s in steps if s.required and _written(s) is not None), key=lambda s: s.call_time
    )
    calls = [s.call_time for s in settled]
    # earliest_after[k]: the settled write that returns first among settled[k:].
    earliest_after: list[_Step | None] = [None] * (len(settled) + 1)
    for k in range(len(settled) - 1, -1, -1):
        later = earliest_after[k + 1]
        here = settled[k]
        assert here.return_time is not None
        if later is None or here.return_time <= (later.return_time or 0):
            earliest_after[k] = here
        else:
            earliest_after[k] = later
    for reader in steps:
        if not reader.required or reader.code not in (_READ, _SWAP):
            continue
        sources = writers.get(reader.a, [])
        if reader.a == initial_id and not sources:
            source, first = None, 0
        elif reader.a != initial_id and len(sources) == 1 and sources[0].required:
            source = sources[0]
            first = bisect.bisect_right(calls, source.return_time)  # type: ignore[arg-type]
        else:
            continue
        overwrite = earliest_after[first]
        if overwrite is None or overwrite.return_time >= reader.call_time:  # type: ignore[operator]
            continue
        seen = "the initial value" if source is None else f"the value of {source.op.describe()}"
        return (
            f"{reader.op.describe()} saw {seen} after {overwrite.op.describe()} had overwritten it"
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


def _symmetry_chains(steps: Sequence[_Step]) -> list[list[int]]:
    """Group optional steps with the same effect, each group in invoke order.

    Optional steps never return, so two with the same effect can trade places in any
    linearization once both have been invoked. The search therefore takes each group in
    invoke order only, which turns the 2^k subsets of k look-alikes into k + 1 counts.
    """
    chains: dict[tuple[int, int, int], list[int]] = {}
    for i in sorted(range(len(steps)), key=lambda i: (steps[i].call_time, i)):
        s = steps[i]
        if not s.required:
            chains.setdefault((s.code, s.a, s.b), []).append(i)
    return list(chains.values())


def _search(
    key: str, steps: Sequence[_Step], initial_id: int, values: _Values, max_states: int
) -> _Verdict:
    """Depth-first search over configurations: (required ops placed, register value, flag).

    Required ops live in the Wing-Gong list: a call is a candidate while no unplaced return
    precedes it. Optional ops (which never return) are candidates once invoked before that
    first return, and are tried only after every required candidate, so the cheapest
    explanations come first.

    Rules that prune without losing a linearization:
    - a fitting read or failed compare changes nothing and everything that must precede it
      is placed, so it is taken at once (forced) and the other choices there are skipped;
    - an optional op is never directly followed by a plain write, which would erase it;
    - a configuration fails if one with the same required ops, value and flag but a
      subset of its optional ops already failed: fewer used means more left to use.
    """
    required_left = sum(1 for s in steps if s.required)
    if required_left == 0:
        return _Verdict(True, False, "", 0)

    # Required calls and returns sorted by time; at equal times calls come first, so touching
    # ops overlap.
    keyed = sorted(
        [(s.call_time, 0, i) for i, s in enumerate(steps) if s.required]
        + [(s.return_time, 1, i) for i, s in enumerate(steps) if s.required]  # type: ignore[misc]
    )
    size = len(keyed)
    head = 0
    nxt = [p + 1 for p in range(size + 2)]
    prv = [p - 1 for p in range(size + 2)]
    op_at = [0] * (size + 2)
    is_call = [False] * (size + 2)
    time_at = [0] * (size + 2)
    return_pos = [0] * len(steps)
    for pos, (time, is_return, i) in enumerate(keyed, start=1):
        op_at[pos], is_call[pos], time_at[pos] = i, not is_return, time
        if is_return:
            return_pos[i] = pos

    code = [s.code for s in steps]
    arg_a = [s.a for s in steps]
    arg_b = [s.b for s in steps]
    call_time = [s.call_time for s in steps]
    bit = [1 << i for i in range(len(steps))]
    forced = [s.required and s.code in (_READ, _MISS) for s in steps]
    chains = _symmetry_chains(steps)
    chain_count = len(chains)
    chain_len = [len(chain) for chain in chains]
    used = [0] * chain_count  # how many of each chain are placed (always a prefix)

    required_mask = 0
    optional_mask = 0
    state = initial_id
    after_optional = False  # was the last placed op optional?
    # One entry per placed op: (choice, value before, after_optional before). A choice >= 1
    # is the list position of a required call; -(c + 1) is the head of chain c.
    stack: list[tuple[int, int, bool]] = []
    # Failed configurations: exactly, and per core a few optional masks for the subset test.
    failed_exact: set[tuple[int, int, bool, int]] = set()
    failed: dict[tuple[int, int, bool], list[int]] = {}
    explored = 0
    best_prefix: list[int] = []
    best_blocker = -1
    best_state = initial_id

    node = nxt[head]  # > 0: scanning required calls; 0: scanning chains from chain_index
    chain_index = 0
    frontier_time = 0  # time of the first unplaced required return
    while True:
        assert required_left > 0
        choice = 0
        if node > 0 and is_call[node]:
            i = op_at[node]
            choice = node
            node = nxt[node]
        elif node > 0:
            frontier_time = time_at[node]
            if len(stack) > len(best_prefix) or best_blocker < 0:
                best_prefix = _placed_steps([entry[0] for entry in stack], op_at, chains)
                best_blocker = op_at[node]
                best_state = state
            node, chain_index = 0, 0
            continue
        else:
            while chain_index < chain_count:
                k = used[chain_index]
                chain_index += 1
                if k < chain_len[chain_index - 1]:
                    i = chains[chain_index - 1][k]
                    if call_time[i] <= frontier_time:
                        choice = -chain_index
                        break

        fails_here = choice == 0  # every candidate tried
        if choice != 0:
            c = code[i]
            if c == _WRITE:
                fits, after = not after_optional, arg_a[i]
            elif c == _READ:
                fits, after = state == arg_a[i], state
            elif c == _SWAP:
                fits, after = state == arg_a[i], arg_b[i]
            else:
                fits, after = state != arg_a[i], state
            if not fits:
                continue
            is_required = choice > 0
            next_required = required_mask | bit[i] if is_required else required_mask
            next_optional = optional_mask if is_required else optional_mask | bit[i]
            core = (next_required, after, not is_required)
            if (*core, next_optional) in failed_exact or any(
                f & ~next_optional == 0 for f in failed.get(core, ())
            ):
                if not forced[i]:
                    continue
                fails_here = True  # the forced successor fails, hence so does this
            else:
                if explored >= max_states:
                    return _Verdict(
                        False,
                        True,
                        f"key {key!r}: gave up after exploring {explored} states "
                        f"(max_states_per_key={max_states}); no verdict",
                        explored,
                    )
                explored += 1
                stack.append((choice, state, after_optional))
                required_mask, optional_mask = next_required, next_optional
                state, after_optional = after, not is_required
                if is_required:
                    required_left -= 1
                    if required_left == 0:
                        return _Verdict(True, False, "", explored)
                    ret = return_pos[i]
                    nxt[prv[choice]] = nxt[choice]
                    prv[nxt[choice]] = prv[choice]
                    nxt[prv[ret]] = nxt[ret]
                    prv[nxt[ret]] = prv[ret]
                else:
                    used[-choice - 1] += 1
                node = nxt[head]
                continue

        assert fails_here
        # Record the failure and backtrack; a configuration that placed a forced op fails
        # whenever the configuration after it does, so keep unwinding past forced ops.
        while True:
            failed_exact.add((required_mask, state, after_optional, optional_mask))
            masks = failed.setdefault((required_mask, state, after_optional), [])
            if len(masks) < MAX_DOMINATING_MASKS_PER_CONFIG:
                masks.append(optional_mask)
            if not stack:
                return _Verdict(
                    False,
                    False,
                    _violation(key, steps, best_prefix, best_blocker, values.values[best_state]),
                    explored,
                )
            choice, state, after_optional = stack.pop()
            if choice > 0:
                i = op_at[choice]
                required_mask ^= bit[i]
                required_left += 1
                ret = return_pos[i]
                # Reinsert in the reverse order of removal so the neighbours' links hold.
                nxt[prv[ret]] = ret
                prv[nxt[ret]] = ret
                nxt[prv[choice]] = choice
                prv[nxt[choice]] = choice
            else:
                used[-choice - 1] -= 1
                i = chains[-choice - 1][used[-choice - 1]]
                optional_mask ^= bit[i]
            if not forced[i]:
                break
        if choice > 0:
            node = nxt[choice]
        else:
            node, chain_index = 0, -choice
            frontier = nxt[head]
            while is_call[frontier]:
                frontier = nxt[frontier]
            frontier_time = time_at[frontier]


def _placed_steps(
    choices: Sequence[int], op_at: Sequence[int], chains: Sequence[list[int]]
) -> list[int]:
    """The steps a stack of choices placed; a chain's members are placed in order."""
    taken = [0] * len(chains)
    placed: list[int] = []
    for choice in choices:
        if choice > 0:
            placed.append(op_at[choice])
        else:
            placed.append(chains[-choice - 1][taken[-choice - 1]])
            taken[-choice - 1] += 1
    return placed


def _violation(
    key: str, steps: Sequence[_Step], prefix: Sequence[int], blocker: int, held: object
) -> str:
    if blocker < 0:
        return f"key {key!r} is not linearizable: no op can be linearized first"
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
