"""Log replication: Figure 2's AppendEntries rules, commit, back-off, pipelining, batching."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.unit.raft.harness import MessageFilter, Network
from triumvir.consensus.raft.core import RaftCore, Role
from triumvir.consensus.raft.errors import NotLeader, ProposalDropped
from triumvir.consensus.raft.types import Entry, EntryKind, Message, MessageType


def _append(
    src: int,
    dst: int,
    term: int,
    prev: tuple[int, int],
    entries: list[tuple[int, int]],
    commit: int,
) -> Message:
    return Message(
        MessageType.APPEND,
        src,
        dst,
        term,
        log_term=prev[1],
        index=prev[0],
        entries=tuple(Entry(t, i) for i, t in entries),
        commit=commit,
    )


def _single_answer(core: RaftCore) -> Message:
    (answer,) = core.ready().messages
    return answer


def test_figure2_append_rejects_on_log_mismatch() -> None:
    net = Network.from_logs({1: [1, 1, 2], 2: [1, 1, 1]}, terms={1: 3, 2: 3})
    follower = net.core(2)
    follower.step(_append(1, 2, 3, (3, 2), [(4, 3)], commit=0))
    answer = _single_answer(follower)
    assert answer.reject and answer.index == 3
    assert answer.conflict_term == 1 and answer.reject_hint == 1  # first index of term 1
    assert net.log_terms(2) == [1, 1, 1]

    follower.step(_append(1, 2, 3, (7, 3), [(8, 3)], commit=0))
    answer = _single_answer(follower)
    assert answer.reject and answer.reject_hint == 4 and answer.conflict_term == 0
    assert net.log_terms(2) == [1, 1, 1]


def test_figure2_conflicting_entries_are_deleted() -> None:
    net = Network.from_logs({1: [1, 1, 2], 2: [1, 1, 1, 1]}, terms={1: 3, 2: 3}, commit=1)
    follower = net.core(2)
    follower.step(_append(1, 2, 3, (2, 1), [(3, 2)], commit=1))
    assert not _single_answer(follower).reject
    assert net.log_terms(2) == [1, 1, 2]  # index 3 replaced, index 4 gone with it
    # An APPEND whose entries are all already present truncates nothing.
    follower.step(_append(1, 2, 3, (1, 1), [(2, 1)], commit=1))
    assert _single_answer(follower).index == 2
    assert net.log_terms(2) == [1, 1, 2]


def test_figure2_conflict_truncation_is_persisted_as_overwrite() -> None:
    net = Network.from_logs({1: [1, 1, 2], 2: [1, 1, 1, 1]}, terms={1: 3, 2: 3}, commit=1)
    follower = net.core(2)
    follower.step(_append(1, 2, 3, (2, 1), [(3, 2)], commit=1))
    ready = follower.ready()
    assert [(e.index, e.term) for e in ready.entries] == [(3, 2)]  # storage overwrites from 3


def test_figure2_commit_is_min_of_leader_commit_and_last_new_entry() -> None:
    net = Network.from_logs({1: [1, 1, 1, 1, 1], 2: [1, 1, 1, 1, 1]}, terms={1: 2, 2: 2})
    follower = net.core(2)
    follower.step(_append(1, 2, 2, (1, 1), [(2, 1)], commit=5))
    assert follower.commit_index == 2  # entries 3..5 were not verified by this APPEND
    follower.step(_append(1, 2, 2, (2, 1), [], commit=1))
    assert follower.commit_index == 2  # commit never goes back


def test_figure2_leader_commits_only_current_term_entries_by_counting() -> None:
    net = Network.from_logs(
        {1: [1, 2], 2: [1], 3: [1]}, terms={1: 2, 2: 2, 3: 2}, commit=1, max_append_entries=1
    )

    def only_old_entry(msg: Message) -> Message:
        return replace(msg, entries=tuple(e for e in msg.entries if e.term != 3))

    net.elect(1, keep=only_old_entry)  # term 3, appends its no-op at index 3
    leader = net.core(1)
    assert leader.term == 3 and leader.log_entries()[-1].kind is EntryKind.NOOP
    net.tick_and_stabilize(3, keep=only_old_entry)
    assert net.log_terms(2) == [1, 2] and net.log_terms(3) == [1, 2]
    assert leader.commit_index == 1  # index 2 is on all three, but of term 2
    net.tick_and_stabilize(3)
    assert leader.commit_index == 3  # the no-op commits, and index 2 with it
    assert all(net.core(n).commit_index == 3 for n in (1, 2, 3))


def test_figure2_applied_never_exceeds_commit() -> None:
    net = Network((1, 2, 3), max_append_entries=2)
    net.elect(1)
    for round_ in range(20):
        net.core(1).propose(b"v%d" % round_)
        for node in net.live():
            core = net.core(node)
            ready = core.ready()
            if ready.committed:
                assert ready.committed[-1].index <= core.commit_index
                assert [e.index for e in ready.committed] == list(
                    range(ready.committed[0].index, ready.committed[-1].index + 1)
                )
            core.advance(ready)
            net.queue.extend(ready.messages)
            assert core.applied_index <= core.commit_index <= core.last_index
        net.deliver()
    net.spread_commit()
    assert net.core(3).applied_index == net.core(1).commit_index


def test_leader_appends_noop_of_its_term_on_election() -> None:
    net = Network((1, 2, 3))
    net.elect(2)
    last = net.core(2).log_entries()[-1]
    assert last.kind is EntryKind.NOOP and last.term == net.core(2).term
    net.spread_commit()
    assert all(net.core(n).commit_index == last.index for n in (1, 2, 3))


def test_leader_counts_its_own_entry_only_once_durable() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    leader = net.core(1)
    _, index = leader.propose(b"y")
    ready = leader.ready()
    net.queue.extend(ready.messages)  # APPENDs leave while the leader's own fsync runs
    net.crash(2)
    net.deliver()
    net.process_ready(3)
    net.deliver()  # node 3 acknowledged; the leader's copy is not durable yet: 1 of 3
    assert leader.commit_index < index
    leader.advance(ready)  # the driver reports the leader's write durable: 2 of 3
    assert leader.commit_index == index


def test_follower_answers_append_only_through_ready() -> None:
    net = Network.from_logs({1: [1], 2: [1]}, terms={1: 2, 2: 2})
    follower = net.core(2)
    follower.step(_append(1, 2, 2, (1, 1), [(2, 2)], commit=1))
    ready = follower.ready()
    assert [(e.index, e.term) for e in ready.entries] == [(2, 2)]
    assert [m.type for m in ready.messages] == [MessageType.APPEND_RESP]
    follower.advance(ready)
    assert not follower.has_ready()


def test_fast_backoff_skips_conflicting_term() -> None:
    prefix = [1] * 5
    net = Network.from_logs(
        {1: prefix + [3] * 10, 2: prefix + [2] * 50, 3: prefix + [3] * 10},
        terms={1: 3, 2: 3, 3: 3},
        commit=5,
    )
    net.elect(1)
    net.stabilize()
    rejections = [
        m for m in net.delivered if m.type is MessageType.APPEND_RESP and m.src == 2 and m.reject
    ]
    assert 1 <= len(rejections) <= 2  # not one per stale entry
    assert net.log_terms(2) == net.log_terms(1)
    net.spread_commit()
    assert net.core(2).commit_index == net.core(1).commit_index == net.core(1).last_index


def test_fast_backoff_uses_leader_term_knowledge() -> None:
    # The follower's conflicting term also exists on the leader: resume right after the
    # leader's last entry of that term.
    net = Network.from_logs(
        {1: [1, 2, 2, 4, 4], 2: [1, 2, 2, 2, 2, 2, 3], 3: [1, 2, 2, 4]},
        terms={1: 4, 2: 4, 3: 4},
        commit=1,
    )
    net.elect(1)
    net.stabilize()
    assert net.log_terms(2) == net.log_terms(1)
    rejections = [m for m in net.delivered if m.type is MessageType.APPEND_RESP and m.reject]
    assert len(rejections) <= 3


def test_pipelining_bounded_by_max_inflight() -> None:
    net = Network((1, 2, 3), max_inflight_appends=2, max_append_entries=1)
    net.elect(1)
    leader = net.core(1)
    for i in range(10):
        leader.propose(b"%d" % i)
    sent = net.process_ready(1)
    to_two = [m for m in sent if m.type is MessageType.APPEND and m.dst == 2]
    assert len(to_two) == 2 and all(len(m.entries) == 1 for m in to_two)
    net.deliver(keep=lambda m: m.dst == 2)
    net.process_ready(2)
    replies = [m for m in net.queue if m.src == 2]
    net.queue = [replies[0]]
    net.deliver()
    more = [m for m in net.process_ready(1) if m.type is MessageType.APPEND and m.dst == 2]
    assert len(more) == 1  # one acknowledged, one more may go
    net.queue = []  # the rest is lost; heartbeats recover it
    net.tick_and_stabilize(3)
    assert net.core(2).last_index == leader.last_index


def test_batches_bounded_by_max_append_entries_and_bytes() -> None:
    net = Network((1, 2), max_append_entries=3, max_append_bytes=150)
    net.elect(1)
    leader = net.core(1)
    for i in range(7):
        leader.propose(b"%d" % i)
    appends = [m for m in net.process_ready(1) if m.type is MessageType.APPEND]
    assert [len(m.entries) for m in appends] == [3, 3, 1]
    net.queue = []
    net.stabilize()
    for _ in range(3):
        leader.propose(bytes(100))
    appends = [m for m in net.process_ready(1) if m.type is MessageType.APPEND]
    assert [len(m.entries) for m in appends] == [1, 1, 1]  # two 124-byte entries exceed 150
    net.queue = []
    net.stabilize()
    leader.propose(bytes(1000))  # larger than the byte limit alone: still sent, by itself
    appends = [m for m in net.process_ready(1) if m.type is MessageType.APPEND]
    assert [len(m.entries) for m in appends] == [1]


def test_lost_appends_are_recovered_by_heartbeats() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    for i in range(5):
        net.core(1).propose(b"%d" % i)
    net.stabilize(keep=lambda m: not (m.type is MessageType.APPEND and m.dst == 3))
    assert net.core(3).last_index < net.core(1).last_index
    net.tick_and_stabilize(2)
    assert net.core(3).log_entries() == net.core(1).log_entries()
    assert net.core(3).commit_index == net.core(1).commit_index


def test_follower_proposal_raises_not_leader_with_hint() -> None:
    net = Network((1, 2, 3))
    with pytest.raises(NotLeader) as unknown:
        net.core(2).propose(b"x")
    assert unknown.value.leader_id == 0
    net.elect(1)
    with pytest.raises(NotLeader) as known:
        net.core(2).propose(b"x")
    assert known.value.leader_id == 1


def test_proposal_dropped_beyond_max_uncommitted() -> None:
    net = Network((1, 2, 3), max_uncommitted_entries=3)
    net.elect(1)
    net.isolate(1)
    for i in range(3):
        net.core(1).propose(b"%d" % i)
    with pytest.raises(ProposalDropped):
        net.core(1).propose(b"one too many")
    net.heal()
    net.tick_and_stabilize(1)
    net.core(1).propose(b"fits again")


def test_forwarded_proposal_is_appended_by_leader() -> None:
    net = Network((1, 2, 3))
    net.elect(1)
    term = net.core(2).term
    net.core(1).step(Message(MessageType.PROPOSE, 2, 1, term, entries=(Entry(0, 0, data=b"f"),)))
    net.stabilize()
    net.spread_commit()
    assert net.nodes[3].data == [b"f"]


def test_figure8_previous_term_entry_not_committed_by_counting() -> None:
    """Raft paper, Figure 8 (§5.4.2), with S1..S5 as nodes 1..5."""
    net, index = _figure8_until_s1_replicated_term2_entry(RaftCore)
    s1 = net.core(1)
    assert [net.core(n).log_entries()[index - 1].term for n in (1, 2, 3)] == [2, 2, 2]
    assert s1.commit_index < index  # (c): on a majority, yet not committed
    # (d): S1 crashes; S5 may still win (its last term 3 beats the others' 2) and replace
    # the entry. That is legal precisely because it was never committed.
    net.crash(1)
    net.restart(5)
    _campaign_until_leader(net, 5)
    net.stabilize()
    assert [net.core(n).log_entries()[index - 1].term for n in (2, 3, 5)] == [3, 3, 3]
    assert net.apply_conflicts == []


def test_figure8_current_term_entry_commits_the_previous_term_entry() -> None:
    net, index = _figure8_until_s1_replicated_term2_entry(RaftCore)
    s1 = net.core(1)
    # (e): S1 replicates an entry of its own term to a majority; both now commit.
    for _ in range(3):
        net.tick([1])
        net.stabilize(keep=lambda m: m.dst in (1, 2, 3) and m.src in (1, 2, 3))
    assert s1.commit_index == index + 1
    net.crash(1)
    net.restart(5)
    for _ in range(5):
        net.core(5).campaign()
        net.stabilize()
    assert net.core(5).role is not Role.LEADER  # S2 and S3 hold a newer log now
    assert all(net.core(n).log_entries()[index - 1].term == 2 for n in (2, 3))
    assert net.apply_conflicts == []


class _CountsOldTerms(RaftCore):
    """The broken rule Figure 8 warns about: commit whatever a majority holds."""

    def _counting_may_commit(self, index: int) -> bool:
        return True


def test_figure8_counting_previous_term_entries_would_lose_committed_entry() -> None:
    net, index = _figure8_until_s1_replicated_term2_entry(_CountsOldTerms)
    assert net.core(1).commit_index >= index  # the broken rule commits it
    assert net.nodes[1].applied[-1].index >= index  # and S1 applies it
    net.crash(1)
    net.restart(5)
    _campaign_until_leader(net, 5)
    net.stabilize()
    # S5 overwrote an entry S1 had applied: the safety violation the real rule prevents.
    assert net.apply_conflicts, "expected the broken commit rule to lose an applied entry"


def _campaign_until_leader(net: Network, node: int, keep: MessageFilter | None = None) -> None:
    for _ in range(5):
        net.core(node).campaign()
        net.stabilize(keep)
        if net.core(node).role is Role.LEADER:
            return
    raise AssertionError(f"node {node} never won")


def _figure8_until_s1_replicated_term2_entry(core_class: type[RaftCore]) -> tuple[Network, int]:
    net = Network(
        (1, 2, 3, 4, 5),
        core_class=core_class,
        pre_vote=False,
        check_quorum=False,
        max_append_entries=1,
    )
    net.elect(1)
    assert net.core(1).term == 2
    # (a) S1, leader of term 2, replicates a new entry to S2 only.
    _, index = net.core(1).propose(b"term 2 entry")
    net.stabilize(keep=lambda m: m.type is not MessageType.APPEND or m.dst == 2)
    assert net.core(2).last_index == index and net.core(3).last_index == index - 1
    # (b) S1 crashes; S5 wins term 3 with votes from S3 and S4 and appends its no-op at
    # the same index, which reaches nobody before S5 crashes too.
    net.crash(1)
    net.core(5).campaign()
    net.stabilize(keep=lambda m: m.type is not MessageType.APPEND)
    assert net.core(5).role is Role.LEADER and net.core(5).term == 3
    assert net.core(5).log_entries()[index - 1].term == 3
    net.crash(5)
    # (c) S1 restarts and wins term 4 (S2, S3 vote), then sends the term-2 entry to S3,
    # while its own term-4 no-op is held back.
    net.restart(1)

    def only_term2(msg: Message) -> bool | Message:
        # S4 and S5 are unreachable; S1's term-4 entries and its commit notices are lost.
        if msg.dst not in (1, 2, 3):
            return False
        return replace(
            msg,
            entries=tuple(e for e in msg.entries if e.term != 4),
            commit=min(msg.commit, index - 1),
        )

    _campaign_until_leader(net, 1, keep=only_term2)
    assert net.core(1).term == 4

    for _ in range(4):
        net.tick([1])
        net.stabilize(keep=only_term2)
    return net, index


def _appends_without_entries(messages: list[Message]) -> list[Message]:
    return [m for m in messages if m.type is MessageType.APPEND and not m.entries]


# Heartbeats, which also carry the commit index, stay out of the way in these two.
QUIET = {"heartbeat_ticks": 10, "election_ticks": 30}


def test_commit_rides_on_the_next_append_while_writes_keep_coming() -> None:
    net = Network((1, 2, 3), **QUIET)
    net.elect(1)
    net.spread_commit()
    leader = net.core(1)
    for i in range(6):
        net.propose(1, b"%d" % i)  # replicated and committed; followers not yet told
        net.tick([1])  # one tick between writes: the commit waits for the next APPEND
        assert _appends_without_entries(net.process_ready(1)) == []
        net.stabilize()
    # The followers learned every commit but the last from the APPENDs themselves.
    assert net.core(2).commit_index == leader.commit_index - 1


def test_idle_follower_learns_the_commit_index_within_two_ticks() -> None:
    net = Network((1, 2, 3), **QUIET)
    net.elect(1)
    net.spread_commit()
    net.propose(1, b"x")
    leader = net.core(1)
    assert net.core(2).commit_index < leader.commit_index
    net.tick([1])
    assert _appends_without_entries(net.process_ready(1)) == []
    net.stabilize()
    net.tick([1])
    alone = _appends_without_entries(net.process_ready(1))
    assert sorted(m.dst for m in alone) == [2, 3]
    assert all(m.commit == leader.commit_index for m in alone)
    net.stabilize()
    assert net.core(2).commit_index == net.core(3).commit_index == leader.commit_index
