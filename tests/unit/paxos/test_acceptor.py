"""Acceptor rules: promises and acceptances are monotone in the ballot, durable before any
reply that depends on them, and survive a crash-restart (or are known to be lost)."""

from __future__ import annotations

from tests.unit.paxos.harness import Group
from triumvir.consensus.paxos.types import PaxosMessage, make_ballot, tag_value
from triumvir.consensus.paxos.types import PaxosMessageType as T
from triumvir.consensus.raft.core import Role
from triumvir.consensus.raft.types import Entry, EntryKind

LOW = make_ballot(4, 1)
HIGH = make_ballot(5, 3)


def _prepare(src: int, dst: int, ballot: int, slot: int) -> PaxosMessage:
    return PaxosMessage(T.PREPARE, src, dst, ballot=ballot, slot=slot)


def _accept(src: int, dst: int, ballot: int, first: int, values: list[bytes]) -> PaxosMessage:
    entries = tuple(
        Entry(ballot, first + k, EntryKind.NORMAL, tag_value(ballot, data))
        for k, data in enumerate(values)
    )
    return PaxosMessage(T.ACCEPT, src, dst, ballot=ballot, slot=first, values=entries)


def _kinds(messages: list[PaxosMessage]) -> list[tuple[T, int]]:
    return [(m.type, m.ballot) for m in messages]


def test_acceptor_never_promises_below_its_promise() -> None:
    group = Group()
    acceptor = group.core(2)
    first = acceptor.commit_index + 1
    acceptor.step(_prepare(3, 2, HIGH, first))
    assert _kinds(group.process_ready(2)) == [(T.PROMISE, HIGH)]
    acceptor.step(_prepare(1, 2, LOW, first))
    assert _kinds(group.process_ready(2)) == [(T.NACK, HIGH)]
    assert acceptor.term == HIGH


def test_acceptor_never_accepts_below_its_promise() -> None:
    group = Group()
    acceptor = group.core(2)
    first = acceptor.commit_index + 1
    acceptor.step(_prepare(3, 2, HIGH, first))
    group.process_ready(2)
    acceptor.step(_accept(1, 2, LOW, first, [b"late"]))
    assert _kinds(group.process_ready(2)) == [(T.NACK, HIGH)]
    assert acceptor.last_index == first - 1  # nothing accepted


def test_promise_is_in_the_ready_that_sends_it() -> None:
    # The driver persists a Ready before sending its messages, so the promise is durable
    # before the PROMISE leaves.
    group = Group()
    acceptor = group.core(2)
    acceptor.step(_prepare(3, 2, HIGH, acceptor.commit_index + 1))
    ready = acceptor.ready()
    assert ready.hard_state is not None and ready.hard_state.term == HIGH
    assert [m.type for m in ready.messages] == [T.PROMISE]  # type: ignore[attr-defined]


def test_acceptor_restarted_after_promising_never_accepts_a_lower_ballot() -> None:
    group = Group()
    first = group.core(2).commit_index + 1
    group.core(2).step(_prepare(3, 2, HIGH, first))
    assert _kinds(group.process_ready(2)) == [(T.PROMISE, HIGH)]
    group.crash(2)
    acceptor = group.restart(2)
    assert acceptor.term == HIGH
    acceptor.step(_accept(1, 2, LOW, first, [b"late"]))
    assert _kinds(group.process_ready(2)) == [(T.NACK, HIGH)]
    assert acceptor.last_index == first - 1


def test_promise_lost_before_it_was_synced_was_never_sent() -> None:
    group = Group()
    group.core(2).step(_prepare(3, 2, HIGH, group.core(2).commit_index + 1))
    group.crash(2)  # before its Ready was persisted
    assert group.queue == []
    assert group.restart(2).term < HIGH  # nobody heard of the promise: nothing to keep


def test_acceptor_takes_a_ballot_in_slot_order_only() -> None:
    group = Group()
    acceptor = group.core(2)
    first = acceptor.commit_index + 1
    ahead = _accept(1, 2, LOW, first, [b"a", b"b", b"c"])
    gap = PaxosMessage(T.ACCEPT, 1, 2, ballot=LOW, slot=first, values=ahead.values[1:])
    acceptor.step(gap)
    [reply] = group.process_ready(2)
    assert (reply.type, reply.reject, reply.slot) == (T.ACCEPTED, True, first - 1)
    assert acceptor.last_index == first - 1
    acceptor.step(ahead)
    [reply] = group.process_ready(2)
    assert (reply.type, reply.reject, reply.slot) == (T.ACCEPTED, False, first + 2)


def test_changed_slot_is_persisted_with_its_whole_suffix() -> None:
    group = Group()
    acceptor = group.core(2)
    first = acceptor.commit_index + 1
    acceptor.step(_accept(1, 2, LOW, first, [b"a", b"b", b"c"]))
    group.process_ready(2)
    acceptor.step(_accept(3, 2, HIGH, first, [b"x"]))
    ready = acceptor.ready()
    # storage replaces everything after the first entry written, so the untouched values
    # accepted under the lower ballot go along
    assert [(e.index, e.term) for e in ready.entries] == [
        (first, HIGH),
        (first + 1, LOW),
        (first + 2, LOW),
    ]


def test_torn_write_makes_acceptor_refuse_promises_until_it_relearns_the_lost_slots() -> None:
    group = Group()
    acceptor = group.core(2)
    first = acceptor.commit_index + 1
    acceptor.step(_accept(1, 2, LOW, first, [b"a", b"b", b"c"]))
    assert _kinds(group.process_ready(2)) == [(T.ACCEPTED, LOW)]  # acknowledged: durable
    acceptor.step(_accept(3, 2, HIGH, first, [b"x"]))
    group.process_ready(2, torn_after=1)  # the rewrite of first+1.. never reached the disk

    acceptor = group.restart(2)
    assert acceptor.last_index == first  # the acknowledged values at first+1.. are gone
    assert acceptor.amnesic
    acceptor.step(_prepare(1, 2, make_ballot(9, 1), first))
    assert group.process_ready(2) == []  # it cannot vouch for those slots: no promise
    acceptor.campaign()
    assert acceptor.role is Role.FOLLOWER

    chosen = tuple(
        Entry(LOW, first + k, EntryKind.NORMAL, tag_value(LOW, data))
        for k, data in enumerate([b"a", b"b", b"c"])
    )
    acceptor.step(PaxosMessage(T.CATCHUP_RESP, 1, 2, values=chosen, chosen_upto=first + 2))
    assert acceptor.commit_index == first + 2 and not acceptor.amnesic
    acceptor.step(_prepare(1, 2, make_ballot(10, 1), first))
    assert [m.type for m in group.process_ready(2)] == [T.PROMISE]


def test_amnesia_survives_a_second_crash_before_the_slots_are_relearned() -> None:
    group = Group()
    acceptor = group.core(2)
    first = acceptor.commit_index + 1
    acceptor.step(_accept(1, 2, LOW, first, [b"a", b"b", b"c"]))
    group.process_ready(2)
    acceptor.step(_accept(3, 2, HIGH, first, [b"x"]))
    group.process_ready(2, torn_after=1)
    acceptor = group.restart(2)
    acceptor.step(_accept(3, 2, HIGH, first, [b"x"]))  # new writes persist a new hard state
    group.process_ready(2)
    group.crash(2)
    assert group.restart(2).amnesic


def test_promise_reports_every_value_accepted_from_the_prepared_slot() -> None:
    group = Group()
    acceptor = group.core(2)
    first = acceptor.commit_index + 1
    acceptor.step(_accept(1, 2, LOW, first, [b"a", b"b"]))
    group.process_ready(2)
    acceptor.step(_prepare(3, 2, HIGH, first + 1))
    [promise] = group.process_ready(2)
    assert promise.type is T.PROMISE and not promise.reject
    assert [(v.index, v.term) for v in promise.values] == [(first + 1, LOW)]
    assert promise.chosen_upto == acceptor.commit_index
