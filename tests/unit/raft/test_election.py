"""Leader election: Figure 2's term and vote rules, randomized timeouts, PreVote, CheckQuorum."""

from __future__ import annotations

import random

from tests.unit.raft.harness import Network
from triumvir.consensus.raft.config import RaftConfig
from triumvir.consensus.raft.core import TRANSFER_CONTEXT, RaftCore, Role
from triumvir.consensus.raft.types import NO_NODE, ConfState, Entry, Message, MessageType


def _vote(src: int, dst: int, term: int, last_index: int, last_term: int, **kw: object) -> Message:
    return Message(MessageType.VOTE, src, dst, term, log_term=last_term, index=last_index, **kw)  # type: ignore[arg-type]


def _answers(core: RaftCore) -> list[Message]:
    return list(core.ready().messages)


def test_figure2_reply_false_if_term_lt_current_term() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    follower = net.core(2)
    term = follower.term
    last = follower.last_index
    stale = Message(
        MessageType.APPEND,
        3,
        2,
        term - 1,
        log_term=follower.log_entries()[-1].term,
        index=last,
        entries=(Entry(term - 1, last + 1),),
        commit=last + 1,
    )
    follower.step(stale)
    (answer,) = _answers(follower)
    assert answer.type is MessageType.APPEND_RESP and answer.reject
    assert answer.term == term  # the stale sender learns the current term
    assert follower.last_index == last and follower.leader_id == 1

    follower.step(_vote(3, 2, term - 1, last + 5, term))
    (answer,) = _answers(follower)
    assert answer.type is MessageType.VOTE_RESP and answer.reject and answer.term == term
    assert follower.vote == 1


def test_figure2_higher_term_converts_to_follower() -> None:
    net = Network((1, 2, 3), pre_vote=False)
    net.elect(1)
    leader = net.core(1)
    term = leader.term
    leader.step(Message(MessageType.HEARTBEAT_RESP, 2, 1, term + 3))
    assert leader.role is Role.FOLLOWER
    assert leader.term == term + 3 and leader.vote == NO_NODE and leader.leader_id == NO_NODE

    candidate = net.core(3)
    candidate.campaign()
    assert candidate.role is Role.CANDIDATE
    candidate.step(Message(MessageType.HEARTBEAT, 2, 3, candidate.term + 1))
    assert candidate.role is Role.FOLLOWER and candidate.leader_id == 2


def test_figure2_vote_granted_once_per_term() -> None:
    net = Network((1, 2, 3))
    voter = net.core(1)
    net.process_ready(1)
    last, last_term = voter.last_index, voter.term
    voter.step(_vote(2, 1, 5, last, last_term))
    assert [m.reject for m in _answers(voter)] == [False]
    assert voter.vote == 2 and voter.term == 5
    voter.step(_vote(3, 1, 5, last + 10, last_term))
    assert [m.reject for m in _answers(voter)] == [True]  # already voted in term 5
    voter.step(_vote(2, 1, 5, last, last_term))
    assert [m.reject for m in _answers(voter)] == [False]  # a retransmission, same vote
    voter.step(_vote(3, 1, 6, last, last_term))
    assert [m.reject for m in _answers(voter)] == [False]  # a new term, a new vote
    assert voter.vote == 3


def test_figure2_candidate_log_must_be_up_to_date() -> None:
    net = Network.from_logs({1: [1, 1, 2], 2: [1, 1], 3: [1, 1, 1, 1]}, check_quorum=False)
    voter = net.core(1)
    voter.step(_vote(2, 1, 3, 2, 1))  # shorter log, older last term
    assert _answers(voter)[0].reject
    voter.step(_vote(3, 1, 4, 4, 1))  # longer log but older last term
    assert _answers(voter)[0].reject
    voter.step(_vote(3, 1, 5, 3, 2))  # same last entry: up to date
    assert not _answers(voter)[0].reject
    assert voter.vote == 3


def test_election_timeout_is_randomized_from_injected_rng() -> None:
    def ticks_until_campaign(seed: int) -> int:
        core = RaftCore(
            RaftConfig(node_id=1, election_ticks=10),
            random.Random(seed),
            conf=ConfState(voters=frozenset({1, 2, 3})),
        )
        for tick in range(1, 100):
            core.tick()
            if core.role is not Role.FOLLOWER:
                return tick
        raise AssertionError("never campaigned")

    timeouts = [ticks_until_campaign(seed) for seed in range(40)]
    assert all(10 <= t < 20 for t in timeouts)
    assert len(set(timeouts)) > 3  # spread out, so split votes resolve
    assert timeouts == [ticks_until_campaign(seed) for seed in range(40)]  # deterministic


def test_single_voter_elects_itself_and_commits_alone() -> None:
    net = Network((1,))
    net.elect(1)
    leader = net.core(1)
    _, index = leader.propose(b"x")
    assert leader.commit_index < index or leader.applied_index < index  # not yet durable
    net.stabilize()
    assert leader.commit_index == index == leader.applied_index
    assert net.nodes[1].data == [b"x"]


def test_prevote_does_not_increase_term() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    term = net.core(3).term
    net.isolate(3)
    for _ in range(100):
        net.tick([3])
        net.stabilize()
    assert net.core(3).term == term
    assert net.core(3).role is Role.PRE_CANDIDATE


def test_prevote_partitioned_node_does_not_disrupt_leader() -> None:
    def run(**config: object) -> tuple[int, int, int]:
        net = Network((1, 2, 3), **config)
        net.elect(1)
        term = net.core(1).term
        net.isolate(3)
        net.propose(1, b"while 3 was away")
        for _ in range(60):
            net.tick([3])
            net.stabilize()
        net.heal()
        net.tick_and_stabilize(3)
        leaders = net.leaders()
        return len(leaders), leaders[0] if leaders else 0, net.core(1).term - term

    assert run() == (1, 1, 0)
    # Without PreVote (and leases) the returning node's inflated term deposes the leader.
    _, _, term_bump = run(pre_vote=False, check_quorum=False)
    assert term_bump > 0


def test_check_quorum_leader_steps_down_without_quorum() -> None:
    def role_after_isolation(check_quorum: bool) -> Role:
        net = Network((1, 2, 3), check_quorum=check_quorum)
        net.elect(1)
        net.isolate(1)
        for _ in range(2 * 10 + 1):
            net.tick([1])
            net.stabilize()
        return net.core(1).role

    assert role_after_isolation(True) is Role.FOLLOWER
    assert role_after_isolation(False) is Role.LEADER


def test_check_quorum_leader_stays_while_quorum_answers() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    net.isolate(3)
    for _ in range(50):
        net.tick([1, 2])
        net.stabilize()
    assert net.core(1).role is Role.LEADER


def test_check_quorum_leader_lease_rejects_votes() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    follower = net.core(2)
    term = follower.term
    last = follower.last_index
    follower.step(_vote(3, 2, term + 1, last, term))
    assert follower.term == term and not follower.has_ready()  # ignored inside the lease

    follower.step(_vote(3, 2, term + 1, last, term, context=TRANSFER_CONTEXT))
    (answer,) = _answers(follower)
    assert not answer.reject and follower.term == term + 1 and follower.vote == 3

    net2 = Network((1, 2, 3))
    net2.elect(1)
    follower = net2.core(2)
    net2.isolate(1)
    for _ in range(10):  # the minimum election timeout passes without the leader
        follower.tick()
    if follower.role is Role.FOLLOWER:
        follower.step(_vote(3, 2, follower.term + 1, follower.last_index, follower.term))
        assert not _answers(follower)[0].reject
    else:
        # It timed out itself on the very same tick; the lease is over either way.
        assert follower.role is Role.PRE_CANDIDATE


def test_candidate_becomes_follower_when_a_quorum_rejects() -> None:
    net = Network.from_logs({1: [1], 2: [1, 2], 3: [1, 2]}, terms={1: 2, 2: 2, 3: 2})
    net.core(1).campaign()
    net.stabilize()
    assert net.core(1).role is Role.FOLLOWER
    assert net.core(1).term == 2  # the pre-vote failed, so no term was spent


def test_learner_and_non_member_never_campaign() -> None:
    net = Network((1, 2), learners=(3,), joining=(4,))
    for node in (3, 4):
        net.core(node).campaign()
        net.tick([node], times=100)
        assert net.core(node).role is Role.FOLLOWER
        assert not any(
            m.type in (MessageType.PRE_VOTE, MessageType.VOTE)
            for m in net.core(node).ready().messages
        )
