"""Leadership: phase 1 re-proposes what a quorum reported, fills gaps with no-ops, a stale
leader can never get a second value chosen in a slot, and duelling proposers separate."""

from __future__ import annotations

from tests.unit.paxos.harness import Group
from triumvir.consensus.paxos.phase1 import merge_reports, reproposals
from triumvir.consensus.paxos.types import (
    PaxosMessage,
    ballot_node,
    ballot_round,
    make_ballot,
    tag_value,
    value_origin,
)
from triumvir.consensus.paxos.types import PaxosMessageType as T
from triumvir.consensus.raft.core import Role
from triumvir.consensus.raft.errors import RaftError
from triumvir.consensus.raft.types import Entry, EntryKind

DUEL_ROUNDS = 6  # rounds in which both proposers are made to campaign at the same tick
CONVERGE_TICKS_MAX = 200  # after that, a value must be chosen within this many ticks


def _value(ballot: int, slot: int, data: bytes, origin: int | None = None) -> Entry:
    return Entry(ballot, slot, EntryKind.NORMAL, tag_value(origin or ballot, data))


def test_ballots_order_by_round_then_node() -> None:
    assert make_ballot(2, 1) > make_ballot(1, 9) > make_ballot(1, 3)
    ballot = make_ballot(7, 513)
    assert (ballot_round(ballot), ballot_node(ballot)) == (7, 513)


def test_highest_ballot_value_wins_among_promises() -> None:
    low, high = make_ballot(2, 1), make_ballot(3, 2)
    merged = merge_reports(
        [[_value(low, 5, b"old"), _value(low, 6, b"kept")], [_value(high, 5, b"new")]], after=4
    )
    assert {slot: value.data[8:] for slot, value in merged.items()} == {5: b"new", 6: b"kept"}


def test_values_accepted_in_promises_are_reproposed() -> None:
    group = Group()
    group.elect(1)
    ballot, slot = group.core(1).propose(b"v")
    # only node 2 accepts it, and node 1 never learns so: nothing is chosen
    group.stabilize(
        keep=lambda m: m.type is not T.ACCEPTED and not (m.type is T.ACCEPT and m.dst == 3)
    )
    assert group.core(1).commit_index < slot
    group.crash(1)
    group.elect(3)
    group.stabilize()
    chosen = group.chosen_at[slot]
    # chosen under node 3's ballot, but reported with its proposer's ballot, which is what
    # node 1 handed its client: the write is recognised as its own
    assert chosen == (ballot, EntryKind.NORMAL, b"v")
    assert group.core(3).ballot > ballot


def test_gaps_are_filled_with_noops() -> None:
    group = Group()
    first = group.core(3).commit_index + 1
    earlier = make_ballot(2, 1)
    report = (_value(earlier, first + 1, b"x"),)

    def only_a_report_with_a_gap(msg: PaxosMessage) -> bool | PaxosMessage:
        if msg.type is T.PROMISE and msg.src == 1:
            return False
        if msg.type is T.PROMISE and msg.src == 2:
            return PaxosMessage(
                T.PROMISE, 2, 3, ballot=msg.ballot, slot=msg.slot, values=report,
                chosen_upto=msg.chosen_upto,
            )  # fmt: skip
        return True

    group.core(3).campaign()
    group.stabilize(only_a_report_with_a_gap)
    assert group.core(3).role is Role.LEADER
    group.stabilize()
    noop = group.chosen_at[first]
    assert noop[1] is EntryKind.NOOP and noop[0] == group.core(3).ballot
    assert group.chosen_at[first + 1] == (earlier, EntryKind.NORMAL, b"x")


def test_stale_leader_keeps_proposing_but_no_slot_gets_two_chosen_values() -> None:
    group = Group(seed=3)
    group.elect(1)
    for n in range(3):
        group.propose(1, b"before-%d" % n)
    group.isolate(1)
    group.elect(2)
    stale: list[bytes] = []
    for n in range(4):
        data = b"stale-%d" % n
        group.core(1).propose(data)  # a leader cut off does not know it was replaced
        stale.append(data)
        group.propose(2, b"new-%d" % n)
    group.heal()
    group.tick_and_stabilize(30)
    assert group.core(1).role is Role.FOLLOWER  # it met the higher ballot and stood down
    assert group.conflicts == []
    for node in group.live():
        assert not set(stale) & set(group.applied_data(node))
        assert group.applied_data(node) == group.applied_data(2)
    assert [b"new-%d" % n for n in range(4)] == group.applied_data(2)[-4:]


def test_failed_candidate_backs_off_before_trying_again() -> None:
    group = Group()
    group.core(1).campaign()
    group.core(2).campaign()  # higher ballot: node 1's PREPARE is refused by node 2
    group.stabilize()
    assert group.core(1).role is Role.FOLLOWER
    assert group.core(2).role is Role.LEADER


def test_duelling_proposers_converge_within_a_bounded_number_of_ticks() -> None:
    for seed in range(8):
        group = Group(seed=seed)
        ballots: set[int] = set()
        # The adversary: whenever a leader emerges before its value is chosen, both
        # proposers campaign again at the same tick, with every PREPARE in flight at once.
        for _ in range(DUEL_ROUNDS):
            group.core(1).campaign()
            group.core(2).campaign()
            ballots |= {group.core(1).ballot, group.core(2).ballot}
            for node in group.live():
                group.process_ready(node)
            group.deliver()
            for node in group.live():
                group.process_ready(node)
            group.deliver()
        assert len(ballots) >= DUEL_ROUNDS  # they really did keep preempting each other
        # Then their timers run freely: randomized back-off must separate them.
        marker = b"chosen-%d" % seed
        proposed = False
        for _ in range(CONVERGE_TICKS_MAX):
            group.tick()
            group.stabilize()
            for leader in group.leaders():
                if not proposed:
                    try:
                        group.core(leader).propose(marker)
                        proposed = True
                    except RaftError:
                        pass
            group.stabilize()
            if marker in group.applied_data(3):
                break
        else:
            raise AssertionError(f"seed {seed}: nothing chosen within {CONVERGE_TICKS_MAX}")
        assert group.conflicts == []


def test_reproposals_keep_the_origin_of_each_value() -> None:
    origin, ballot = make_ballot(2, 1), make_ballot(5, 3)
    merged = {7: _value(make_ballot(4, 2), 7, b"v", origin=origin)}
    [gap, kept] = reproposals(merged, after=5, ballot=ballot)
    assert (gap.index, gap.kind, value_origin(gap.data)) == (6, EntryKind.NOOP, ballot)
    assert (kept.index, kept.term, value_origin(kept.data)) == (7, ballot, origin)
