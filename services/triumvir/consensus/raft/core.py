"""The Raft algorithm as a pure, deterministic state machine (no clock, no I/O).

Time is `tick()`, input is `step(message)` plus the client calls (`propose`, `read_index`,
`transfer_leader`, ...), and output is a `Ready` batch the driver persists, sends and applies
before calling `advance()` (see `Ready` for the order). The role decides how messages are
handled: `_step` and `_tick` are swapped when the role changes rather than tested everywhere.

Membership takes effect when a CONF_CHANGE entry commits, one change at a time.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Sequence

from triumvir.consensus.raft.config import RaftConfig
from triumvir.consensus.raft.errors import (
    ConfChangeRejected,
    NotLeader,
    ProposalDropped,
    TransferRejected,
)
from triumvir.consensus.raft.log import RaftLog
from triumvir.consensus.raft.membership import apply_conf_change, conf_change_problem
from triumvir.consensus.raft.progress import Progress, ProgressState
from triumvir.consensus.raft.quorum import has_quorum, quorum_match_index, vote_outcome
from triumvir.consensus.raft.read_only import PendingRead, ReadIndexTracker
from triumvir.consensus.raft.snapshot_transfer import SnapshotAssembler, chunk_at
from triumvir.consensus.raft.types import (
    NO_NODE,
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    Message,
    MessageType,
    ReadState,
    Ready,
    Snapshot,
    SnapshotMeta,
)

TRANSFER_CONTEXT = b"transfer"  # marks a campaign started by TimeoutNow: overrides leases
MAX_COMMITTED_PER_READY = 4096  # committed entries handed to the driver in one Ready

_LEADER_CONTACT = frozenset({MessageType.APPEND, MessageType.HEARTBEAT, MessageType.SNAPSHOT})


class Role(enum.Enum):
    FOLLOWER = "follower"
    PRE_CANDIDATE = "pre_candidate"
    CANDIDATE = "candidate"
    LEADER = "leader"


class RaftCore:
    def __init__(
        self,
        config: RaftConfig,
        rng: random.Random,
        *,
        conf: ConfState | None = None,
        hard_state: HardState | None = None,
        snapshot: Snapshot | None = None,
        entries: Sequence[Entry] = (),
    ) -> None:
        self._config = config
        self._rng = rng
        self._id = config.node_id

        # Role state first: restoring the commit index applies membership changes, which
        # consults the role.
        self._role = Role.FOLLOWER
        self._leader_id = NO_NODE
        self._step: Callable[[Message], None] = self._step_follower
        self._tick: Callable[[], None] = self._tick_election
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._election_timeout = config.election_ticks  # randomized by every role change
        self._votes: dict[int, bool] = {}
        self._progress: dict[int, Progress] = {}
        self._transfer_target = NO_NODE
        self._pending_conf_index = 0
        self._reads = ReadIndexTracker()
        self._append_pending = False  # leader: new entries not yet offered to followers
        # leader: the commit index at the previous tick. A commit index rides on the next
        # APPEND that carries entries; one that waited a whole tick for such an APPEND goes
        # out alone. So under load, even one write at a time, a commit never costs a message
        # of its own, and an idle follower still learns it within two ticks.
        self._commit_at_last_tick = 0

        self._messages: list[Message] = []
        self._read_states: list[ReadState] = []
        self._snapshot_to_persist: Snapshot | None = None
        self._snapshot_requested = False  # asked the driver for one; reset by compact()
        self._assembler = SnapshotAssembler()

        meta = snapshot.meta if snapshot is not None else SnapshotMeta()
        restored = [entry for entry in entries if entry.index > meta.index]
        self._log = RaftLog(meta.index, meta.term, restored)
        # The latest snapshot, kept to send to followers that fell behind the compacted log.
        self._snapshot: Snapshot | None = snapshot if meta.index > 0 else None
        self._snapshot_meta = meta
        # What the driver has been handed and has confirmed: entries above _persist_sent
        # and committed entries above _apply_sent go into the next Ready.
        # invariant: _stable <= _persist_sent <= last_index; _applied <= _apply_sent <= commit
        self._persist_sent = self._log.last_index
        self._stable = self._log.last_index  # contiguous prefix the driver confirmed durable
        self._applied = meta.index
        self._apply_sent = meta.index

        state = hard_state or HardState()
        self._term = state.term
        self._vote = state.vote
        # invariant: applied <= commit <= last_index
        self._commit = meta.index
        self._conf = meta.conf
        self._last_hard_state = state
        fresh = state == HardState() and snapshot is None and not restored
        if fresh and conf is not None:
            self._bootstrap(conf)
        else:
            assert state.commit <= self._log.last_index, "hard state commits beyond the log"
            self._commit_to(max(state.commit, meta.index))
        self._become_follower(self._term, NO_NODE)
        self._check_invariants()

    def _bootstrap(self, conf: ConfState) -> None:
        """A brand-new group member writes the initial membership as committed CONF_CHANGE
        entries of term 1, identical on every founding member, so a node that joins later
        learns the whole membership from the log itself."""
        contexts = dict(conf.contexts)
        changes: list[ConfChange] = []
        for node in sorted(conf.voters):
            changes.append(ConfChange(ConfChangeKind.ADD_LEARNER, node, contexts.get(node, b"")))
            changes.append(ConfChange(ConfChangeKind.PROMOTE, node))
        for node in sorted(conf.learners - conf.voters):
            changes.append(ConfChange(ConfChangeKind.ADD_LEARNER, node, contexts.get(node, b"")))
        if not changes:
            return
        self._term = 1
        self._log.append(
            [
                Entry(1, index, EntryKind.CONF_CHANGE, change.encode())
                for index, change in enumerate(changes, start=1)
            ]
        )
        self._persist_sent = 0
        self._stable = 0
        self._commit_to(self._log.last_index)

    # -- read-only view ----------------------------------------------------------------------

    @property
    def node_id(self) -> int:
        return self._id

    @property
    def term(self) -> int:
        return self._term

    @property
    def vote(self) -> int:
        return self._vote

    @property
    def role(self) -> Role:
        return self._role

    @property
    def leader_id(self) -> int:
        return self._leader_id

    @property
    def commit_index(self) -> int:
        return self._commit

    @property
    def applied_index(self) -> int:
        return self._applied

    @property
    def last_index(self) -> int:
        return self._log.last_index

    @property
    def conf(self) -> ConfState:
        return self._conf

    @property
    def snapshot_meta(self) -> SnapshotMeta:
        return self._snapshot_meta

    def log_entries(self) -> tuple[Entry, ...]:
        return self._log.all_entries()

    def progress(self, node: int) -> Progress | None:
        """The leader's view of one member's log (None when not leader or not a member)."""
        return self._progress.get(node)

    def snapshot_meta_for(self, index: int) -> SnapshotMeta:
        """The metadata a snapshot of the state machine at `index` must carry: the term of
        that entry and the membership in force once it was applied."""
        if not self._log.snapshot_index <= index <= self._commit:
            raise ValueError(
                f"no snapshot possible at {index}: log holds "
                f"({self._log.snapshot_index}, {self._commit}] committed"
            )
        conf = self._snapshot_meta.conf
        for entry in self._log.slice(self._log.snapshot_index + 1, index + 1):
            if entry.kind is EntryKind.CONF_CHANGE:
                conf = _applied_conf(conf, entry)
        term = self._log.term(index)
        assert term is not None
        return SnapshotMeta(index=index, term=term, conf=conf)

    # -- inputs ------------------------------------------------------------------------------

    def tick(self) -> None:
        self._tick()
        self._check_invariants()

    def campaign(self) -> None:
        if self._role is Role.LEADER or not self._promotable():
            return
        self._start_election(transfer=False)
        self._check_invariants()

    def step(self, msg: Message) -> None:
        if msg.dst != self._id:
            return
        if msg.term > self._term:
            if (
                msg.type in (MessageType.PRE_VOTE, MessageType.VOTE)
                and msg.context != TRANSFER_CONTEXT
                and self._in_lease(msg.type)
            ):
                # A live leader exists: a node that merely timed out (partitioned, slow)
                # must not depose it.
                return
            if msg.type is MessageType.PRE_VOTE:
                pass  # a pre-vote is a question about the future; our term stays
            elif msg.type is MessageType.PRE_VOTE_RESP and not msg.reject:
                pass  # a granted pre-vote carries the term we would campaign in
            elif msg.type in _LEADER_CONTACT:
                self._become_follower(msg.term, msg.src)
            else:
                self._become_follower(msg.term, NO_NODE)
        elif msg.term < self._term:
            self._answer_stale(msg)
            return
        if msg.type in (MessageType.PRE_VOTE, MessageType.VOTE):
            self._handle_vote_request(msg)
        else:
            if msg.type in (MessageType.PRE_VOTE_RESP, MessageType.VOTE_RESP):
                self._learn_commit(msg)
            self._step(msg)
        self._check_invariants()

    def propose(self, data: bytes) -> tuple[int, int]:
        self._check_can_propose()
        index = self._append_own(EntryKind.NORMAL, data)
        return self._term, index

    def propose_conf_change(self, cc: ConfChange) -> tuple[int, int]:
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        if self._transfer_target != NO_NODE:
            raise ConfChangeRejected("leadership transfer in progress")
        if not self._committed_in_term():
            raise ConfChangeRejected("leader has not committed an entry of its term yet")
        if self._pending_conf_index > self._commit:
            raise ConfChangeRejected("another membership change is not committed yet")
        problem = conf_change_problem(self._conf, cc)
        if problem is not None:
            raise ConfChangeRejected(problem)
        if cc.kind is ConfChangeKind.PROMOTE:
            match = self._progress[cc.node_id].match
            needed = self._log.last_index - self._config.learner_catchup_entries
            if match < needed:
                raise ConfChangeRejected(
                    f"learner {cc.node_id} is not caught up (match {match}, needs {needed})"
                )
        self._check_can_propose()
        index = self._append_own(EntryKind.CONF_CHANGE, cc.encode())
        self._pending_conf_index = index
        return self._term, index

    def read_index(self, context: bytes) -> None:
        if self._role is Role.LEADER:
            if not self._leader_read(PendingRead(context, self._id)):
                raise ProposalDropped("too many reads pending")
            return
        if self._leader_id == NO_NODE:
            raise NotLeader(NO_NODE)
        self._send(MessageType.READ_INDEX, self._leader_id, context=context)

    def transfer_leader(self, target: int) -> None:
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        if target == self._id:
            return  # already there
        if target not in self._conf.voters:
            raise TransferRejected(f"node {target} is not a voter")
        if target == self._transfer_target:
            return
        self._transfer_target = target
        # The transfer is abandoned one election timeout from now.
        self._election_elapsed = 0
        if self._progress[target].match == self._log.last_index:
            self._send(MessageType.TIMEOUT_NOW, target)
        else:
            self._send_append(target, send_if_empty=True)

    def forget_snapshot_request(self) -> None:
        """The driver is done with the snapshot it was asked for (compacted, superseded by
        one from the leader, or failed): ask again once the log is long enough."""
        self._snapshot_requested = False

    def compact(self, snapshot: Snapshot) -> None:
        index = snapshot.meta.index
        if index <= self._log.snapshot_index:
            return
        if index > self._apply_sent:
            raise ValueError(f"snapshot at {index} is past what was applied ({self._apply_sent})")
        meta = self.snapshot_meta_for(index)
        self._log.compact(index)
        self._snapshot = Snapshot(meta, snapshot.data)
        self._snapshot_meta = meta
        self._snapshot_requested = False

    # -- output ------------------------------------------------------------------------------

    def has_ready(self) -> bool:
        if (
            self._messages
            or self._read_states
            or self._snapshot_to_persist is not None
            or self._persist_sent < self._log.last_index
            or self._apply_sent < self._commit
            or self._hard_state() != self._last_hard_state
        ):
            return True
        if self._role is Role.LEADER and (
            self._append_pending or (self._reads.has_unsent and self._committed_in_term())
        ):
            return True
        return self._wants_snapshot(self._apply_sent)

    def ready(self) -> Ready:
        if self._role is Role.LEADER:
            self._flush_leader_output()
        hard_state = self._hard_state()
        entries = self._log.slice(self._persist_sent + 1, self._log.last_index + 1)
        apply_to = min(self._commit, self._apply_sent + MAX_COMMITTED_PER_READY)
        # Committed entries are never compacted before the driver was handed them.
        assert self._apply_sent >= self._log.snapshot_index
        committed = self._log.slice(self._apply_sent + 1, apply_to + 1)
        wanted = self._wants_snapshot(apply_to)
        ready = Ready(
            hard_state=hard_state if hard_state != self._last_hard_state else None,
            entries=tuple(entries),
            snapshot=self._snapshot_to_persist,
            messages=tuple(self._messages),
            committed=tuple(committed),
            reads=tuple(self._read_states),
            snapshot_wanted=wanted,
        )
        self._last_hard_state = hard_state
        self._persist_sent = self._log.last_index
        self._apply_sent = apply_to
        self._snapshot_to_persist = None
        self._messages = []
        self._read_states = []
        if wanted:
            self._snapshot_requested = True
        return ready

    def advance(self, ready: Ready) -> None:
        if ready.snapshot is not None:
            self._stable = max(self._stable, ready.snapshot.meta.index)
        if ready.entries:
            last = ready.entries[-1]
            # A later truncation may have replaced what this Ready persisted.
            if self._log.matches(last.index, last.term):
                self._stable = max(self._stable, last.index)
        if ready.committed:
            self._applied = max(self._applied, ready.committed[-1].index)
        if self._role is Role.LEADER:
            # The leader counts its own log toward commit only once it is durable.
            own = self._progress[self._id]
            if own.acknowledge(self._stable):
                self._maybe_commit()
        self._check_invariants()

    # -- roles -------------------------------------------------------------------------------

    def _become_follower(self, term: int, leader: int) -> None:
        self._reset(term)
        self._role = Role.FOLLOWER
        self._leader_id = leader
        self._step = self._step_follower
        self._tick = self._tick_election

    def _become_pre_candidate(self) -> None:
        # Term and vote stay: a pre-campaign must not disturb anyone if it fails.
        self._reset(self._term)
        self._role = Role.PRE_CANDIDATE
        self._step = self._step_pre_candidate
        self._tick = self._tick_election
        self._votes = {self._id: True}
        if vote_outcome(self._conf.voters, self._votes):
            self._become_candidate(transfer=False)
            return
        for voter in sorted(self._conf.voters - {self._id}):
            self._send(
                MessageType.PRE_VOTE,
                voter,
                term=self._term + 1,
                log_term=self._log.last_term,
                index=self._log.last_index,
            )

    def _become_candidate(self, *, transfer: bool) -> None:
        self._reset(self._term + 1)
        self._vote = self._id
        self._role = Role.CANDIDATE
        self._step = self._step_candidate
        self._tick = self._tick_election
        self._votes = {self._id: True}
        if vote_outcome(self._conf.voters, self._votes):
            self._become_leader()
            return
        for voter in sorted(self._conf.voters - {self._id}):
            self._send(
                MessageType.VOTE,
                voter,
                log_term=self._log.last_term,
                index=self._log.last_index,
                context=TRANSFER_CONTEXT if transfer else b"",
            )

    def _become_leader(self) -> None:
        self._reset(self._term)
        self._role = Role.LEADER
        self._leader_id = self._id
        self._step = self._step_leader
        self._tick = self._tick_leader
        next_index = self._log.last_index + 1
        for node in self._conf.members() | {self._id}:
            self._progress[node] = Progress(next_index, self._config.max_inflight_appends)
        own = self._progress[self._id]
        own.acknowledge(self._stable)
        own.recent_active = True
        # Everything before the no-op may hold a membership change we cannot see is
        # committed; no new change until the no-op commits (then all of them did).
        self._pending_conf_index = self._log.last_index
        self._append_own(EntryKind.NOOP, b"")

    def _reset(self, term: int) -> None:
        if term != self._term:
            self._term = term
            self._vote = NO_NODE
        self._leader_id = NO_NODE
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        cfg = self._config
        self._election_timeout = cfg.election_ticks + self._rng.randrange(cfg.election_ticks)
        self._votes = {}
        self._progress = {}
        self._transfer_target = NO_NODE
        self._reads.clear()
        self._append_pending = False
        self._commit_at_last_tick = 0

    def _promotable(self) -> bool:
        return self._id in self._conf.voters

    def _start_election(self, *, transfer: bool) -> None:
        if self._config.pre_vote and not transfer:
            self._become_pre_candidate()
        else:
            self._become_candidate(transfer=transfer)

    def _in_lease(self, request: MessageType) -> bool:
        """Whether we heard from a live leader within the minimum election timeout."""
        if request is MessageType.VOTE and not self._config.check_quorum:
            return False
        return self._leader_id != NO_NODE and self._election_elapsed < self._config.election_ticks

    # -- ticks -------------------------------------------------------------------------------

    def _tick_election(self) -> None:
        self._election_elapsed += 1
        if self._promotable() and self._election_elapsed >= self._election_timeout:
            self._election_elapsed = 0
            self._start_election(transfer=False)

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= self._config.election_ticks:
            self._election_elapsed = 0
            if self._config.check_quorum and not self._quorum_active():
                self._become_follower(self._term, NO_NODE)
                return
            self._transfer_target = NO_NODE  # a transfer that took this long has failed
        settled, self._commit_at_last_tick = self._commit_at_last_tick, self._commit
        self._broadcast_commit(settled)
        if self._heartbeat_elapsed >= self._config.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            self._broadcast_heartbeat(self._reads.latest_tag())

    def _quorum_active(self) -> bool:
        active = {node for node, pr in self._progress.items() if pr.recent_active}
        active.add(self._id)
        for node, pr in self._progress.items():
            pr.recent_active = node == self._id
        return has_quorum(self._conf.voters, active)

    # -- messages common to every role -----------------------------------------------------

    def _answer_stale(self, msg: Message) -> None:
        """A message from an older term: tell the sender our term so it catches up."""
        if msg.type in _LEADER_CONTACT:
            self._send(MessageType.APPEND_RESP, msg.src, reject=True)
        elif msg.type is MessageType.PRE_VOTE:
            self._send(MessageType.PRE_VOTE_RESP, msg.src, reject=True)
        elif msg.type is MessageType.VOTE:
            self._send(MessageType.VOTE_RESP, msg.src, reject=True)

    def _handle_vote_request(self, msg: Message) -> None:
        pre = msg.type is MessageType.PRE_VOTE
        answer = MessageType.PRE_VOTE_RESP if pre else MessageType.VOTE_RESP
        can_vote = (
            self._vote == msg.src
            or (self._vote == NO_NODE and self._leader_id == NO_NODE)
            or (pre and msg.term > self._term)
        )
        up_to_date = (msg.log_term, msg.index) >= (self._log.last_term, self._log.last_index)
        # Every answer carries our commit point: a candidate whose membership is stale may
        # need it to learn that a change (even our own removal) committed.
        commit_term = self._log.term(self._commit)
        if can_vote and up_to_date:
            # A granted pre-vote answers in the candidate's future term so it counts there.
            self._send(
                answer, msg.src, term=msg.term, commit=self._commit, log_term=commit_term or 0
            )
            if not pre:
                self._vote = msg.src
                self._election_elapsed = 0
        else:
            self._send(answer, msg.src, reject=True, commit=self._commit, log_term=commit_term or 0)

    def _learn_commit(self, msg: Message) -> None:
        """Adopt a voter's commit index when our log holds its entry at that index: by Log
        Matching our prefix then equals its committed prefix. Without this a group could
        wait forever on a member that was removed after everyone else lost the news of it
        (it never campaigns, and its longer log makes it refuse our votes)."""
        if self._role is Role.LEADER or msg.commit <= self._commit:
            return
        if msg.commit <= self._log.last_index and self._log.matches(msg.commit, msg.log_term):
            self._commit_to(msg.commit)

    # -- follower ----------------------------------------------------------------------------

    def _step_follower(self, msg: Message) -> None:
        kind = msg.type
        if kind in _LEADER_CONTACT:
            self._election_elapsed = 0
            self._leader_id = msg.src
            if kind is MessageType.APPEND:
                self._handle_append(msg)
            elif kind is MessageType.HEARTBEAT:
                self._handle_heartbeat(msg)
            else:
                self._handle_snapshot(msg)
        elif kind is MessageType.TIMEOUT_NOW:
            if self._promotable():
                self._become_candidate(transfer=True)
        elif kind is MessageType.READ_INDEX_RESP and not msg.reject:
            self._read_states.append(ReadState(msg.context, msg.index))

    def _handle_append(self, msg: Message) -> None:
        if msg.index < self._commit:
            # Everything up to our commit index matches any current leader's log.
            self._send(MessageType.APPEND_RESP, msg.src, index=self._commit)
            return
        if self._log.matches(msg.index, msg.log_term):
            last_new = msg.index + len(msg.entries)
            conflict = self._log.find_conflict(msg.entries)
            if conflict:
                assert conflict > self._commit, f"leader overwrites committed entry {conflict}"
                self._truncate_and_append(msg.entries[conflict - msg.index - 1 :])
            # Only entries known to match the leader may be committed: beyond last_new our
            # log may still hold another leader's suffix.
            self._commit_to(min(msg.commit, last_new))
            self._send(MessageType.APPEND_RESP, msg.src, index=last_new)
            return
        # Point the leader at where our log might match, skipping a whole term at a time.
        if msg.index > self._log.last_index:
            hint, conflict_term = self._log.last_index + 1, 0
        else:
            conflict_term = self._log.term(msg.index) or 0
            hint = self._log.first_index_of_term(conflict_term, msg.index)
        self._send(
            MessageType.APPEND_RESP,
            msg.src,
            index=msg.index,
            reject=True,
            reject_hint=max(hint, self._commit + 1),
            conflict_term=conflict_term,
        )

    def _handle_heartbeat(self, msg: Message) -> None:
        # The leader sends min(match, commit), so this never reaches an unverified entry.
        self._commit_to(min(msg.commit, self._log.last_index))
        self._send(MessageType.HEARTBEAT_RESP, msg.src, context=msg.context)

    def _handle_snapshot(self, msg: Message) -> None:
        meta = msg.snapshot_meta
        if meta is None:
            return
        received = msg.offset + len(msg.chunk)
        if meta.index <= self._commit:
            # Nothing to install: what we have committed already covers it.
            self._send(MessageType.SNAPSHOT_RESP, msg.src, index=self._commit, offset=received)
            return
        held, rewind, snapshot = self._assembler.receive(meta, msg.offset, msg.chunk, msg.done)
        if snapshot is None:
            self._send(MessageType.SNAPSHOT_RESP, msg.src, offset=held, reject=rewind)
            return
        self._install_snapshot(snapshot)
        self._send(MessageType.SNAPSHOT_RESP, msg.src, index=meta.index, offset=held)

    def _truncate_and_append(self, entries: Sequence[Entry]) -> None:
        first = entries[0].index
        if first <= self._log.last_index:
            # The replaced suffix is neither durable nor to be persisted any more.
            self._persist_sent = min(self._persist_sent, first - 1)
            self._stable = min(self._stable, first - 1)
        self._log.truncate_and_append(entries)

    def _install_snapshot(self, snapshot: Snapshot) -> None:
        meta = snapshot.meta
        if self._log.matches(meta.index, meta.term):
            # Our log already runs through the snapshot point: committing is enough.
            self._commit_to(meta.index)
            return
        self._stable = min(self._stable, self._commit)
        self._log.reset(meta.index, meta.term)
        self._commit = meta.index
        self._applied = meta.index
        self._apply_sent = meta.index
        self._persist_sent = meta.index
        self._conf = meta.conf
        self._snapshot = snapshot
        self._snapshot_meta = meta
        self._snapshot_to_persist = snapshot
        self._snapshot_requested = False

    # -- candidates --------------------------------------------------------------------------

    def _step_pre_candidate(self, msg: Message) -> None:
        self._step_campaigning(msg, MessageType.PRE_VOTE_RESP)

    def _step_candidate(self, msg: Message) -> None:
        self._step_campaigning(msg, MessageType.VOTE_RESP)

    def _step_campaigning(self, msg: Message, answer: MessageType) -> None:
        if msg.type in _LEADER_CONTACT:
            # Someone already won this term.
            self._become_follower(self._term, msg.src)
            self._step(msg)
            return
        if msg.type is not answer:
            return
        if msg.src in self._conf.voters:
            self._votes.setdefault(msg.src, not msg.reject)
        if not self._promotable():
            # The answer taught us (see _learn_commit) that we are no longer a voter.
            self._become_follower(self._term, NO_NODE)
            return
        outcome = vote_outcome(self._conf.voters, self._votes)
        if outcome is None:
            return
        if not outcome:
            self._become_follower(self._term, NO_NODE)
        elif self._role is Role.PRE_CANDIDATE:
            self._become_candidate(transfer=False)
        else:
            self._become_leader()

    # -- leader ------------------------------------------------------------------------------

    def _step_leader(self, msg: Message) -> None:
        kind = msg.type
        if kind is MessageType.READ_INDEX:
            self._leader_read(PendingRead(msg.context, msg.src))
            return
        if kind is MessageType.PROPOSE:
            self._accept_forwarded(msg.entries)
            return
        pr = self._progress.get(msg.src)
        if pr is None or msg.src == self._id:
            return
        if kind is MessageType.APPEND_RESP:
            pr.recent_active = True
            self._handle_append_resp(msg, pr)
        elif kind is MessageType.HEARTBEAT_RESP:
            pr.recent_active = True
            self._handle_heartbeat_resp(msg, pr)
        elif kind is MessageType.SNAPSHOT_RESP:
            pr.recent_active = True
            self._handle_snapshot_resp(msg, pr)

    def _handle_append_resp(self, msg: Message, pr: Progress) -> None:
        peer = msg.src
        if msg.reject:
            if pr.reject(msg.index, self._next_after_rejection(msg)):
                self._send_append(peer, send_if_empty=True)
            return
        was_paused = pr.paused
        if pr.acknowledge(msg.index):
            if pr.state is ProgressState.PROBE:
                pr.become_replicate()
            elif pr.state is ProgressState.SNAPSHOT:
                if pr.match >= self._log.snapshot_index:
                    pr.become_replicate()
            else:
                pr.inflights.free_up_to(msg.index)
            self._maybe_commit()
            # A committed membership change may have removed the peer, or this leader.
            if (
                self._role is Role.LEADER
                and peer in self._progress
                and self._sends_at_once(peer, self._quorum_followers())
            ):
                self._send_appends(peer)
            if peer == self._transfer_target and pr.match == self._log.last_index:
                self._send(MessageType.TIMEOUT_NOW, peer)
        elif pr.state is ProgressState.REPLICATE:
            pr.inflights.free_up_to(msg.index)
            if was_paused and not pr.paused and self._sends_at_once(peer, self._quorum_followers()):
                self._send_appends(peer)

    def _next_after_rejection(self, msg: Message) -> int:
        """Where to probe next: after our last entry of the follower's conflicting term if
        we have that term, else the follower's own hint."""
        if msg.conflict_term:
            last_of_term = self._log.last_index_of_term(msg.conflict_term)
            if last_of_term:
                return last_of_term + 1
        return msg.reject_hint or msg.index

    def _handle_heartbeat_resp(self, msg: Message, pr: Progress) -> None:
        pr.probe_sent = False
        if pr.state is ProgressState.REPLICATE and pr.inflights.full:
            pr.inflights.free_first()  # an APPEND may be lost; let one more through
        if pr.state is not ProgressState.SNAPSHOT and pr.match < self._log.last_index:
            self._send_append(msg.src, send_if_empty=True)
        if msg.context:
            self._reads.acknowledge(msg.src, msg.context)
            self._release_confirmed_reads()

    def _handle_snapshot_resp(self, msg: Message, pr: Progress) -> None:
        if pr.state is not ProgressState.SNAPSHOT:
            if msg.index > 0 and pr.acknowledge(msg.index):
                self._maybe_commit()
            return
        pr.snapshot_answered = True
        if msg.index > 0:
            pr.acknowledge(msg.index)
            pr.become_probe()
            if not self._maybe_commit():
                self._send_append(msg.src, send_if_empty=True)
            return
        if msg.reject or msg.offset > pr.snapshot_offset:
            pr.snapshot_offset = msg.offset
            self._send_snapshot_chunk(msg.src, pr)

    def _accept_forwarded(self, entries: Sequence[Entry]) -> None:
        for entry in entries:
            if entry.kind is not EntryKind.NORMAL:
                continue  # membership changes must go through propose_conf_change's checks
            try:
                self.propose(entry.data)
            except (NotLeader, ProposalDropped):
                return

    def _check_can_propose(self) -> None:
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        if self._transfer_target != NO_NODE:
            raise ProposalDropped("leadership transfer in progress")
        if self._log.last_index - self._commit >= self._config.max_uncommitted_entries:
            raise ProposalDropped("too many uncommitted entries")

    def _append_own(self, kind: EntryKind, data: bytes) -> int:
        index = self._log.last_index + 1
        self._log.append([Entry(self._term, index, kind, data)])
        self._append_pending = True
        return index

    def _counting_may_commit(self, index: int) -> bool:
        """Figure 2 / §5.4.2: a leader commits by counting replicas only an entry of its own
        term; earlier entries commit with it, by the Log Matching property."""
        return self._log.term(index) == self._term

    def _maybe_commit(self) -> bool:
        """Advance commit to what a quorum of voters hold durably. True if it moved."""
        advanced = False
        # Each pass applies membership changes that may shrink the quorum; the commit index
        # only rises, so this ends within (last_index - commit) passes.
        while self._role is Role.LEADER:
            matches = {node: pr.match for node, pr in self._progress.items()}
            index = quorum_match_index(self._conf.voters, matches)
            if index <= self._commit or not self._counting_may_commit(index):
                break
            self._commit_to(index)
            advanced = True
        if not advanced:
            return False
        self._release_confirmed_reads()
        if self._id not in self._conf.members():
            # Our own removal committed: tell the others, then stand down for good.
            self._flush_leader_output()
            self._broadcast_commit(self._commit)
            self._become_follower(self._term, NO_NODE)
        return True

    def _commit_to(self, index: int) -> None:
        """Raise the commit index, applying committed membership changes on the way."""
        if index <= self._commit:
            return
        assert index <= self._log.last_index, f"commit {index} beyond log {self._log.last_index}"
        for entry in self._log.slice(self._commit + 1, index + 1):
            if entry.kind is EntryKind.CONF_CHANGE:
                self._set_conf(_applied_conf(self._conf, entry))
        self._commit = index

    def _set_conf(self, conf: ConfState) -> None:
        if conf == self._conf:
            return
        self._conf = conf
        if self._role is not Role.LEADER:
            return
        members = conf.members() | {self._id}
        for node in list(self._progress):
            if node not in members:
                del self._progress[node]
        for node in members - self._progress.keys():
            self._progress[node] = Progress(
                self._log.last_index + 1, self._config.max_inflight_appends
            )
            self._append_pending = True
        if self._transfer_target not in conf.voters:
            self._transfer_target = NO_NODE

    def _committed_in_term(self) -> bool:
        return self._log.term(self._commit) == self._term

    # -- leader: sending ---------------------------------------------------------------------

    def _flush_leader_output(self) -> None:
        """Offer new entries (and a changed commit index) to every follower at once, so a
        burst of proposals leaves as one APPEND per follower."""
        if self._append_pending:
            at_once = self._quorum_followers()
            for peer in sorted(self._progress):
                if peer != self._id and self._sends_at_once(peer, at_once):
                    self._send_appends(peer)
            self._append_pending = False
        if self._reads.has_unsent and self._committed_in_term():
            self._start_read_round()

    def _quorum_followers(self) -> frozenset[int] | None:
        """Under thrifty replication, the voters a lone write is sent to at once; None when
        every follower gets every new entry at once.

        A lone write's latency is the round trip to a quorum. Sending it to more voters than
        the quorum needs makes each of them spend a receive, an fsync and an answer on it,
        and on a shared host that CPU slows the round trip itself. The voters furthest along
        are chosen, so the same ones stay chosen while they keep up; if one stalls, another
        overtakes it at its next heartbeat and is chosen instead. As soon as several writes
        are outstanding every follower gets every batch at once again, so under load a commit
        waits only for the fastest quorum.
        """
        if not self._config.thrifty or self._log.last_index - self._commit > 1:
            return None
        others = sorted(
            (node for node in self._conf.voters if node != self._id),
            key=lambda node: (-self._progress[node].match, node),
        )
        needed = len(self._conf.voters) // 2 + 1 - (self._id in self._conf.voters)
        return frozenset(others[:needed])

    def _sends_at_once(self, peer: int, quorum_followers: frozenset[int] | None) -> bool:
        """Whether `peer` gets new entries as soon as they exist (see _quorum_followers).
        Learners and a transfer target must catch up, and a follower far behind catches up
        at full speed, so they always do."""
        return (
            quorum_followers is None
            or peer in quorum_followers
            or peer not in self._conf.voters
            or peer == self._transfer_target
            or self._log.last_index - self._progress[peer].match > self._config.max_append_entries
        )

    def _broadcast_commit(self, settled: int) -> None:
        """An APPEND without entries to each follower not yet told commit index `settled`."""
        for peer, pr in sorted(self._progress.items()):
            if peer != self._id and pr.sent_commit < settled:
                self._send_append(peer, send_if_empty=False, commit_alone=settled)

    def _send_appends(self, peer: int) -> bool:
        """Pipeline as many APPENDs as the follower's window allows."""
        sent = False
        for _ in range(self._config.max_inflight_appends):
            if not self._send_append(peer, send_if_empty=False):
                break
            sent = True
        return sent

    def _send_append(self, peer: int, *, send_if_empty: bool, commit_alone: int = 0) -> bool:
        """One APPEND from the follower's next index. Sent when it carries entries, when
        `send_if_empty` (a probe), or when commit index `commit_alone` is news to it."""
        pr = self._progress[peer]
        if pr.paused:
            return False
        prev_index = pr.next - 1
        prev_term = self._log.term(prev_index)
        if prev_term is None:
            assert prev_index < self._log.snapshot_index, f"next {pr.next} is beyond the log"
            return self._start_snapshot(peer, pr)
        if pr.next <= self._log.last_index:
            entries = self._log.batch_from(
                pr.next, self._config.max_append_entries, self._config.max_append_bytes
            )
        else:
            entries = []
        # A follower may only commit what an APPEND verified, so a commit index is worth
        # sending only up to the entries it is known (or about to be known) to match.
        last_sent = entries[-1].index if entries else prev_index
        commit_news = min(commit_alone, last_sent) > pr.sent_commit
        if not entries and not send_if_empty and not commit_news:
            return False
        self._send(
            MessageType.APPEND,
            peer,
            log_term=prev_term,
            index=prev_index,
            entries=tuple(entries),
            commit=self._commit,
        )
        if entries:
            pr.sent_entries(entries[-1].index)
        elif pr.state is ProgressState.PROBE:
            pr.probe_sent = True
        pr.sent_commit = max(pr.sent_commit, min(self._commit, last_sent))
        return True

    def _start_snapshot(self, peer: int, pr: Progress) -> bool:
        snapshot = self._snapshot
        assert snapshot is not None, "log compacted without a snapshot to send"
        pr.become_snapshot(snapshot)
        self._send_snapshot_chunk(peer, pr)
        return True

    def _send_snapshot_chunk(self, peer: int, pr: Progress) -> None:
        snapshot = pr.snapshot
        assert snapshot is not None
        chunk, done = chunk_at(snapshot, pr.snapshot_offset, self._config.snapshot_chunk_bytes)
        self._send(
            MessageType.SNAPSHOT,
            peer,
            snapshot_meta=snapshot.meta,
            offset=pr.snapshot_offset,
            chunk=chunk,
            done=done,
        )

    def _broadcast_heartbeat(self, context: bytes) -> None:
        for peer in sorted(self._progress):
            if peer == self._id:
                continue
            pr = self._progress[peer]
            commit = min(pr.match, self._commit)
            self._send(MessageType.HEARTBEAT, peer, commit=commit, context=context)
            pr.sent_commit = max(pr.sent_commit, commit)
            if pr.state is ProgressState.SNAPSHOT:
                # Stop-and-wait: a chunk unanswered for a whole heartbeat interval is resent.
                if not pr.snapshot_answered:
                    self._send_snapshot_chunk(peer, pr)
                pr.snapshot_answered = False

    # -- leader: reads -----------------------------------------------------------------------

    def _leader_read(self, read: PendingRead) -> bool:
        # Rounds start when the next Ready is built, so reads that arrive together share one.
        return self._reads.queue(read)

    def _start_read_round(self) -> None:
        if self._conf.voters <= {self._id}:
            for read in self._reads.take_unsent():
                self._answer_read(read, self._commit)
            return
        self._broadcast_heartbeat(self._reads.start_round(self._commit))

    def _release_confirmed_reads(self) -> None:
        for read, index in self._reads.confirmed(self._conf.voters, self._id):
            self._answer_read(read, index)

    def _answer_read(self, read: PendingRead, index: int) -> None:
        if read.requester == self._id:
            self._read_states.append(ReadState(read.context, index))
        else:
            self._send(
                MessageType.READ_INDEX_RESP, read.requester, index=index, context=read.context
            )
            if read.requester in self._progress:
                # The follower serves the read once it has applied `index`: let it learn
                # that commit now rather than on the next tick.
                self._send_append(read.requester, send_if_empty=False, commit_alone=self._commit)

    # -- helpers -----------------------------------------------------------------------------

    def _send(
        self,
        kind: MessageType,
        dst: int,
        *,
        term: int | None = None,
        log_term: int = 0,
        index: int = 0,
        entries: tuple[Entry, ...] = (),
        commit: int = 0,
        reject: bool = False,
        reject_hint: int = 0,
        conflict_term: int = 0,
        context: bytes = b"",
        snapshot_meta: SnapshotMeta | None = None,
        offset: int = 0,
        chunk: bytes = b"",
        done: bool = False,
    ) -> None:
        self._messages.append(
            Message(
                type=kind,
                src=self._id,
                dst=dst,
                term=self._term if term is None else term,
                log_term=log_term,
                index=index,
                entries=entries,
                commit=commit,
                reject=reject,
                reject_hint=reject_hint,
                conflict_term=conflict_term,
                context=context,
                snapshot_meta=snapshot_meta,
                offset=offset,
                chunk=chunk,
                done=done,
            )
        )

    def _hard_state(self) -> HardState:
        return HardState(term=self._term, vote=self._vote, commit=self._commit)

    def _wants_snapshot(self, applied: int) -> bool:
        return (
            not self._snapshot_requested
            and applied - self._log.snapshot_index >= self._config.snapshot_threshold_entries
        )

    def _check_invariants(self) -> None:
        assert self._applied <= self._commit <= self._log.last_index, (
            f"applied {self._applied} <= commit {self._commit} <= last {self._log.last_index}"
        )
        assert self._log.snapshot_index <= self._apply_sent <= self._commit


def _applied_conf(conf: ConfState, entry: Entry) -> ConfState:
    try:
        change = ConfChange.decode(entry.data)
    except ValueError:
        return conf  # not a change any leader proposed; every replica skips it alike
    return apply_conf_change(conf, change)
