"""How acceptors learn that the chosen prefix grew: on the next ACCEPT while values keep
coming, and in a CHOSEN of its own once the news has waited a whole tick."""

from __future__ import annotations

from tests.unit.paxos.harness import Group
from triumvir.consensus.paxos.types import PaxosMessage
from triumvir.consensus.paxos.types import PaxosMessageType as T

# Heartbeats, which also carry the chosen prefix, stay out of the way.
QUIET = {"heartbeat_ticks": 10, "election_ticks": 30}


def _chosen_alone(messages: list[PaxosMessage]) -> list[PaxosMessage]:
    return [m for m in messages if m.type is T.CHOSEN]


def test_chosen_prefix_rides_on_the_next_accept_while_writes_keep_coming() -> None:
    group = Group(seed=3, **QUIET)
    group.elect(1)
    group.spread_chosen()
    leader = group.core(1)
    for n in range(6):
        group.propose(1, b"v%d" % n)  # chosen; the acceptors not yet told
        assert _chosen_alone(group.process_ready(1)) == []
        group.tick([1])  # one tick between writes: the news waits for the next ACCEPT
        assert _chosen_alone(group.process_ready(1)) == []
        group.stabilize()
    # The acceptors learned every value but the last from the ACCEPTs themselves.
    assert group.core(2).commit_index == leader.commit_index - 1


def test_idle_acceptor_learns_the_chosen_prefix_within_two_ticks() -> None:
    group = Group(seed=3, **QUIET)
    group.elect(1)
    group.spread_chosen()
    group.propose(1, b"x")
    leader = group.core(1)
    assert group.core(2).commit_index < leader.commit_index
    group.tick([1])
    assert _chosen_alone(group.process_ready(1)) == []
    group.stabilize()
    group.tick([1])
    alone = _chosen_alone(group.process_ready(1))
    assert sorted(m.dst for m in alone) == [2, 3]
    assert all(m.chosen_upto == leader.commit_index for m in alone)
    group.stabilize()
    assert group.applied_data(2) == group.applied_data(3) == group.applied_data(1)
