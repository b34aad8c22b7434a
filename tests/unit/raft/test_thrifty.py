"""Thrifty replication: a lone write goes at once only to the followers a quorum needs."""

from __future__ import annotations

from tests.unit.raft.harness import Network
from triumvir.consensus.raft.types import Message, MessageType

THRIFTY = {"thrifty": True, "heartbeat_ticks": 2, "election_ticks": 20}


def _entry_receivers(messages: list[Message]) -> list[int]:
    return sorted(m.dst for m in messages if m.type is MessageType.APPEND and m.entries)


def _settled(net: Network) -> None:
    """Every follower holds the whole log (heartbeats caught the lazy ones up)."""
    net.stabilize()
    net.tick_and_stabilize(2)
    last = net.core(net.leader()).last_index
    assert all(net.core(n).last_index == last for n in net.live())


def test_a_lone_write_goes_at_once_to_one_follower_of_three_and_commits() -> None:
    net = Network((1, 2, 3), **THRIFTY)
    net.elect(1)
    _settled(net)
    leader = net.core(1)
    _, index = leader.propose(b"x")
    assert _entry_receivers(net.process_ready(1)) == [2]  # the lower id wins a tie
    net.stabilize()
    assert leader.commit_index == index
    assert net.core(3).last_index < index
    # The other follower gets it when it answers its next heartbeat.
    net.tick([1], times=2)
    net.stabilize()
    assert net.core(3).last_index == index
    assert net.apply_conflicts == []


def test_the_same_follower_stays_chosen_while_it_keeps_up() -> None:
    net = Network((1, 2, 3), **THRIFTY)
    net.elect(1)
    _settled(net)
    for i in range(5):
        net.core(1).propose(b"%d" % i)
        assert _entry_receivers(net.process_ready(1)) == [2]
        net.stabilize()
    assert net.core(3).last_index < net.core(1).last_index


def test_a_follower_catching_up_is_not_sent_each_new_lone_write_on_its_answer() -> None:
    # Rare heartbeats: here node 3 catches up through the commit index a tick carries.
    net = Network((1, 2, 3), thrifty=True, heartbeat_ticks=10, election_ticks=30)
    net.elect(1)
    net.spread_commit()
    net.propose(1, b"x")
    net.tick([1], times=2)
    assert _entry_receivers(net.process_ready(1)) == [3]  # x, with the commit index
    net.deliver()
    net.process_ready(3)  # node 3's answer is on its way...
    net.core(1).propose(b"y")  # ...when the next lone write arrives
    assert _entry_receivers(net.process_ready(1)) == [2]
    net.deliver()
    assert _entry_receivers(net.process_ready(1)) == []  # 3's answer brought it nothing
    assert net.core(3).last_index == net.core(1).last_index - 1


def test_several_outstanding_writes_go_to_every_follower_at_once() -> None:
    net = Network((1, 2, 3), **THRIFTY)
    net.elect(1)
    _settled(net)
    net.core(1).propose(b"a")
    net.core(1).propose(b"b")
    assert _entry_receivers(net.process_ready(1)) == [2, 3]


def test_without_thrift_a_lone_write_goes_to_every_follower() -> None:
    net = Network((1, 2, 3), **{**THRIFTY, "thrifty": False})
    net.elect(1)
    _settled(net)
    net.core(1).propose(b"x")
    assert _entry_receivers(net.process_ready(1)) == [2, 3]


def test_five_voters_send_a_lone_write_to_two_followers() -> None:
    net = Network((1, 2, 3, 4, 5), **THRIFTY)
    net.elect(1)
    _settled(net)
    _, index = net.core(1).propose(b"x")
    assert _entry_receivers(net.process_ready(1)) == [2, 3]
    net.stabilize()
    assert net.core(1).commit_index == index


def test_a_stalled_chosen_follower_is_overtaken_at_the_next_heartbeat() -> None:
    net = Network((1, 2, 3), **THRIFTY)
    net.elect(1)
    _settled(net)
    net.cut_links |= {(1, 2), (2, 1)}
    leader = net.core(1)
    _, index = leader.propose(b"x")
    assert _entry_receivers(net.process_ready(1)) == [2]
    net.stabilize()
    assert leader.commit_index < index  # only the stalled follower was sent it
    net.tick([1], times=2)  # a heartbeat: node 3 answers and is sent the entry
    net.stabilize()
    assert leader.commit_index == index
    # Node 3 is now further along than node 2, so the next lone write goes to it.
    leader.propose(b"y")
    assert _entry_receivers(net.process_ready(1)) == [3]
    net.stabilize()
    assert leader.commit_index == leader.last_index


def test_learners_and_a_follower_far_behind_get_a_lone_write_at_once() -> None:
    net = Network((1, 2, 3), learners=(4,), **{**THRIFTY, "max_append_entries": 2})
    net.elect(1)
    _settled(net)
    net.isolate(3)
    for i in range(4):
        net.propose(1, b"%d" % i)  # committed by 1 and 2 while 3 hears nothing
    net.heal()
    net.core(1).propose(b"x")
    # 2 is the quorum's follower, 4 a learner, 3 more than a batch behind.
    assert _entry_receivers(net.process_ready(1)) == [2, 3, 4]
    _settled(net)
    assert net.apply_conflicts == []


def test_a_transfer_target_behind_catches_up_at_once() -> None:
    # One entry per APPEND, so catching up takes a round trip per entry.
    net = Network((1, 2, 3), **{**THRIFTY, "max_append_bytes": 1})
    net.elect(1)
    _settled(net)
    for i in range(3):
        net.propose(1, b"%d" % i)  # node 3, not the quorum's follower, falls 3 behind
    assert net.core(3).last_index == net.core(1).last_index - 3
    net.core(1).transfer_leader(3)
    net.stabilize()  # no heartbeat needed: every answer brings the next entry
    assert net.leader() == 3
