"""Multi-Paxos as a pure, deterministic state machine (no clock, no I/O), behind the same
contract as the Raft core: `tick()`, `step(msg)`, `propose()`, `read_index()`, then a `Ready`
the driver persists, sends and applies before calling `advance()`.

Roles. Every node is an acceptor and a learner. A voter whose election timer (randomized from
the injected rng) runs out without hearing a leader becomes a candidate: it picks a ballot
above every ballot it has seen and runs phase 1 once, for every slot from its first unchosen
one (PREPARE -> PROMISE). With promises from a quorum it becomes the distinguished proposer
(leader): it re-proposes, per slot, the value reported under the highest ballot and fills gaps
with no-ops, then runs phase 2 (ACCEPT -> ACCEPTED) for each new slot, pipelined within
`max_inflight_slots`. Heartbeats keep followers from campaigning; any higher ballot (a NACK,
a PREPARE, a leader's message) makes a leader or candidate step down, and a failed candidate
backs off for a fresh random timeout, so duelling proposers separate.

Acceptor rules (the safety core). A node never accepts or promises below its promise, and
its promise and accepted values are part of the Ready that must be durable before any reply
that depends on them leaves (the driver sends messages only after persisting). Under one
ballot an acceptor accepts slots in order: it takes an ACCEPT batch only if it continues its
run of that ballot's values, so an acknowledged value of the current ballot is never
rewritten. Values of slots it knows chosen are never rewritten either.

Chosen values. A slot is chosen once a quorum of the voters governing it accepted it under
one ballot; the leader counts an acceptor for a slot only inside the run the acceptor
reported, and itself only once its own write is durable. The chosen prefix is announced in
ACCEPT, CHOSEN and HEARTBEAT; a follower marks a slot chosen when it holds that leader's
ballot there, and otherwise fetches chosen values (CATCHUP_REQ/RESP, bounded batches) or, past
the sender's compacted log, a chunked snapshot.

Membership (single-server changes only: add learner, promote, remove, one at a time). A
change chosen at slot s governs the slots after s, and a leader assigns no slot after s until
s is chosen, so every slot in flight is governed by the configuration after the chosen prefix.
Consecutive configurations differ by one voter, so their quorums intersect. A leader's
promisers must include a quorum of every configuration governing a slot it proposes in: it
checks the whole sequence before leading, and refuses a change whose resulting configuration
its promisers do not cover (a learner must have promised before it is promoted). Learners
accept values but never count toward quorums or campaign. A removed leader steps down once
its removal is chosen; changes that leave no voters are refused.

Torn writes. Storage replaces everything after the first index an append touches, so
rewriting an interior slot re-emits the suffix after it, and a crash in the middle of that
write (a torn tail) can lose values that were durable and acknowledged before. To notice,
`HardState.vote` records the last slot of the log whenever the hard state is written (it is
written after the entries). A node that restarts with a shorter log than that suffered such a
loss: until it learns every slot up to the recorded one as chosen it neither promises nor
campaigns, since it can no longer vouch for what it accepted there.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from triumvir.consensus.paxos.config import PaxosConfig
from triumvir.consensus.paxos.peers import PeerProgress
from triumvir.consensus.paxos.phase1 import (
    apply_change,
    config_sequence,
    covers_quorums,
    merge_reports,
    reproposals,
)
from triumvir.consensus.paxos.slots import SlotLog
from triumvir.consensus.paxos.transfer import Chunk, SnapshotStreams
from triumvir.consensus.paxos.types import (
    BOOTSTRAP_BALLOT,
    MAX_NODE_ID,
    NO_BALLOT,
    PaxosMessage,
    PaxosMessageType,
    ballot_round,
    committed_form,
    make_ballot,
    same_value,
    tag_value,
)
from triumvir.consensus.raft.core import Role
from triumvir.consensus.raft.errors import (
    ConfChangeRejected,
    NotLeader,
    ProposalDropped,
    TransferRejected,
)
from triumvir.consensus.raft.membership import apply_conf_change, conf_change_problem
from triumvir.consensus.raft.quorum import has_quorum, quorum_size
from triumvir.consensus.raft.read_only import PendingRead, ReadIndexTracker
from triumvir.consensus.raft.types import (
    NO_NODE,
    ConfChange,
    ConfChangeKind,
    ConfState,
    Entry,
    EntryKind,
    HardState,
    ReadState,
    Ready,
    Snapshot,
    SnapshotMeta,
)

T = PaxosMessageType
TRANSFER_CONTEXT = b"campaign-now"  # a heartbeat carrying this asks its receiver to campaign
MAX_COMMITTED_PER_READY = 4096  # chosen values handed to the driver in one Ready


class PaxosCore:
    def __init__(
        self,
        config: PaxosConfig,
        rng: random.Random,
        *,
        conf: ConfState | None = None,
        hard_state: HardState | None = None,
        snapshot: Snapshot | None = None,
        entries: Sequence[Entry] = (),
    ) -> None:
        assert config.node_id <= MAX_NODE_ID, "node ids must fit the low 16 bits of a ballot"
        self._config = config
        self._rng = rng
        self._id = config.node_id

        self._role = Role.FOLLOWER
        self._leader_id = NO_NODE
        self._answer: Callable[[PaxosMessage], None] = self._answer_as_follower
        self._tick_role: Callable[[], None] = self._tick_follower
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._election_timeout = config.election_ticks
        self._catchup_cooldown = 0  # ticks before another unprompted CATCHUP_REQ
        self._reads = ReadIndexTracker()
        self._reset_proposer()

        self._messages: list[PaxosMessage] = []
        self._read_states: list[ReadState] = []
        self._snapshot_to_persist: Snapshot | None = None
        self._snapshot_requested = False  # asked the driver for one; reset by compact()
        self._streams = SnapshotStreams(config.snapshot_chunk_bytes)
        self._handlers: dict[PaxosMessageType, Callable[[PaxosMessage], None]] = {
            T.PREPARE: self._on_prepare,
            T.PROMISE: self._on_answer,
            T.ACCEPT: self._on_accept,
            T.ACCEPTED: self._on_answer,
            T.CHOSEN: self._on_chosen,
            T.HEARTBEAT: self._on_heartbeat,
            T.HEARTBEAT_RESP: self._on_answer,
            T.CATCHUP_REQ: self._on_catchup_req,
            T.CATCHUP_RESP: self._on_catchup_resp,
            T.SNAPSHOT: self._on_snapshot,
            T.SNAPSHOT_RESP: self._on_snapshot_resp,
            T.READ_CONFIRM: self._on_read_confirm,
            T.READ_CONFIRM_RESP: self._on_answer,
            T.NACK: self._on_nack,
        }

        meta = snapshot.meta if snapshot is not None else SnapshotMeta()
        self._log = SlotLog(meta.index, entries)
        self._snapshot: Snapshot | None = snapshot if meta.index > 0 else None
        self._snapshot_meta = meta
        # invariant: every slot <= _stable_through is durable (the leader counts itself
        # toward choosing a slot only then)
        self._stable_through = self._log.last
        state = hard_state or HardState()
        # A torn write may have made values durable without the promise written after them.
        self._promised = max([state.term, *(e.term for e in self._log.stored())])
        # invariant: applied <= apply_sent <= chosen <= log.last; base <= apply_sent
        self._chosen = meta.index
        self._applied = meta.index
        self._apply_sent = meta.index
        self._conf = meta.conf
        self._amnesia_through = state.vote if state.vote > self._log.last else 0
        fresh = state == HardState() and snapshot is None and self._log.last == 0
        if fresh and conf is not None:
            self._bootstrap(conf)
        else:
            assert state.commit <= self._log.last, "hard state chose beyond the log"
            self._commit_to(max(state.commit, meta.index))
        self._last_hard_state = state
        self._reset_timer()
        self._check_invariants()

    def _bootstrap(self, conf: ConfState) -> None:
        """A founding member writes the initial membership as chosen CONF_CHANGE values of the
        bootstrap ballot, identical on every founder, so a node that joins later learns the
        membership from the log itself."""
        contexts = dict(conf.contexts)
        changes: list[ConfChange] = []
        for node in sorted(conf.voters):
            changes.append(ConfChange(ConfChangeKind.ADD_LEARNER, node, contexts.get(node, b"")))
            changes.append(ConfChange(ConfChangeKind.PROMOTE, node))
        for node in sorted(conf.learners - conf.voters):
            changes.append(ConfChange(ConfChangeKind.ADD_LEARNER, node, contexts.get(node, b"")))
        if not changes:
            return
        self._promised = BOOTSTRAP_BALLOT
        for slot, change in enumerate(changes, start=1):
            data = tag_value(BOOTSTRAP_BALLOT, change.encode())
            self._put(Entry(BOOTSTRAP_BALLOT, slot, EntryKind.CONF_CHANGE, data))
        self._commit_to(len(changes))

    # -- read-only view ----------------------------------------------------------------------

    @property
    def node_id(self) -> int:
        return self._id

    @property
    def term(self) -> int:
        """The promised ballot: the highest ballot this node has seen and bound itself to."""
        return self._promised

    @property
    def vote(self) -> int:
        return NO_NODE  # Paxos has promises, not votes

    @property
    def role(self) -> Role:
        return self._role

    @property
    def leader_id(self) -> int:
        return self._leader_id

    @property
    def ballot(self) -> int:
        """The ballot this node campaigns or leads with (NO_BALLOT as a follower)."""
        return self._ballot

    @property
    def commit_index(self) -> int:
        return self._chosen

    @property
    def applied_index(self) -> int:
        return self._applied

    @property
    def last_index(self) -> int:
        return self._log.last

    @property
    def conf(self) -> ConfState:
        return self._conf

    @property
    def snapshot_meta(self) -> SnapshotMeta:
        return self._snapshot_meta

    @property
    def amnesic(self) -> bool:
        """Whether a torn write lost acknowledged values this node must relearn first."""
        return self._amnesia_through > 0

    def log_entries(self) -> tuple[Entry, ...]:
        """Accepted values after the snapshot, as stored (term = accepted ballot)."""
        return self._log.stored()

    def chosen_entries(self) -> tuple[Entry, ...]:
        """The chosen prefix after the snapshot as the state machine sees it."""
        return tuple(
            committed_form(self._value(slot))
            for slot in range(self._log.base + 1, self._chosen + 1)
        )

    def assigned_entries(self) -> tuple[Entry, ...]:
        """The chosen prefix, then (on a leader) every value it has assigned a slot since,
        all as the state machine would see them: the log a leader stands for."""
        chosen = self.chosen_entries()
        if self._role is not Role.LEADER:
            return chosen
        own = [self._value(slot) for slot in range(self._chosen + 1, self._written_through + 1)]
        own.extend(self._backlog[slot] for slot in sorted(self._backlog))
        return chosen + tuple(committed_form(value) for value in own)

    def snapshot_meta_for(self, index: int) -> SnapshotMeta:
        """Metadata for a state-machine snapshot at chosen slot `index`: the membership in
        force after it and the ballot stored there (which storage compares with its own
        entry to decide whether the log after the snapshot stays)."""
        base = self._log.base
        if not base <= index <= self._chosen:
            raise ValueError(
                f"no snapshot possible at {index}: log holds ({base}, {self._chosen}] chosen"
            )
        conf = self._snapshot_meta.conf
        for slot in range(base + 1, index + 1):
            value = self._value(slot)
            if value.kind is EntryKind.CONF_CHANGE:
                conf = apply_change(conf, value)
        term = self._log.ballot_at(index) if index > base else self._snapshot_meta.term
        return SnapshotMeta(index=index, term=term, conf=conf)

    # -- inputs ------------------------------------------------------------------------------

    def tick(self) -> None:
        if self._catchup_cooldown > 0:
            self._catchup_cooldown -= 1
        self._tick_role()
        self._check_invariants()

    def campaign(self) -> None:
        if self._role is Role.LEADER or not self._can_campaign():
            return
        self._start_campaign()
        self._check_invariants()

    def step(self, msg: PaxosMessage) -> None:
        if msg.dst != self._id:
            return
        self._handlers[msg.type](msg)
        self._check_invariants()

    def propose(self, data: bytes) -> tuple[int, int]:
        self._check_can_propose()
        return self._ballot, self._append_own(EntryKind.NORMAL, data)

    def propose_conf_change(self, cc: ConfChange) -> tuple[int, int]:
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        if self._backlog or self._pending_conf_slot > self._chosen:
            raise ConfChangeRejected("another membership change is not chosen yet")
        problem = conf_change_problem(self._conf, cc)
        if problem is not None:
            raise ConfChangeRejected(problem)
        after = apply_conf_change(self._conf, cc)
        if not has_quorum(after.voters, self._promisers):
            raise ConfChangeRejected(
                f"too few members of the resulting group have promised ballot {self._ballot}"
            )
        if cc.kind is ConfChangeKind.PROMOTE:
            peer = self._peers.get(cc.node_id)
            known = peer.first_unchosen - 1 if peer is not None else 0
            needed = self._chosen - self._config.learner_catchup_entries
            if known < needed:
                raise ConfChangeRejected(
                    f"learner {cc.node_id} is not caught up (chosen {known}, needs {needed})"
                )
        self._check_can_propose()
        slot = self._append_own(EntryKind.CONF_CHANGE, cc.encode())
        self._pending_conf_slot = slot
        return self._ballot, slot

    def read_index(self, context: bytes) -> None:
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        # Rounds start when the next Ready is built, so reads that arrive together share one.
        if not self._reads.queue(PendingRead(context, self._id)):
            raise ProposalDropped("too many reads pending")

    def transfer_leader(self, target: int) -> None:
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        if target == self._id:
            return
        if target not in self._conf.voters:
            raise TransferRejected(f"node {target} is not a voter")
        self._send(
            T.HEARTBEAT,
            target,
            slot=self._first_own,
            chosen_upto=self._chosen,
            context=TRANSFER_CONTEXT,
        )

    def forget_snapshot_request(self) -> None:
        """The driver is done with the snapshot it was asked for (compacted, superseded by
        one from the leader, or failed): ask again once the log is long enough."""
        self._snapshot_requested = False

    def compact(self, snapshot: Snapshot) -> None:
        index = snapshot.meta.index
        if index <= self._log.base:
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
            or self._log.dirty_from is not None
            or self._apply_sent < self._chosen
            or self._hard_state() != self._last_hard_state
        ):
            return True
        if self._role is Role.LEADER and (self._send_pending or self._reads.has_unsent):
            return True
        return self._wants_snapshot(self._apply_sent)

    def ready(self) -> Ready:
        if self._role is Role.LEADER:
            self._flush_leader_output()
        hard_state = self._hard_state()
        entries = self._log.take_dirty()
        apply_to = min(self._chosen, self._apply_sent + MAX_COMMITTED_PER_READY)
        # Chosen values are never compacted before the driver was handed them.
        assert self._apply_sent >= self._log.base
        committed = tuple(
            committed_form(self._value(slot)) for slot in range(self._apply_sent + 1, apply_to + 1)
        )
        wanted = self._wants_snapshot(apply_to)
        ready = Ready(
            hard_state=hard_state if hard_state != self._last_hard_state else None,
            entries=tuple(entries),
            snapshot=self._snapshot_to_persist,
            messages=tuple(self._messages),  # type: ignore[arg-type]
            committed=committed,
            reads=tuple(self._read_states),
            snapshot_wanted=wanted,
        )
        self._last_hard_state = hard_state
        self._apply_sent = apply_to
        self._snapshot_to_persist = None
        self._messages = []
        self._read_states = []
        if wanted:
            self._snapshot_requested = True
        return ready

    def advance(self, ready: Ready) -> None:
        if ready.entries:
            dirty = self._log.dirty_from
            durable = ready.entries[-1].index
            if dirty is not None:
                durable = min(durable, dirty - 1)  # changed again since: not durable yet
            self._stable_through = max(self._stable_through, durable)
        if ready.committed:
            self._applied = max(self._applied, ready.committed[-1].index)
        if self._role is Role.LEADER:
            self._maybe_choose()
        self._check_invariants()

    # -- roles -------------------------------------------------------------------------------

    def _reset_proposer(self) -> None:
        """Forget everything that belongs to a campaign or a leadership."""
        self._ballot = NO_BALLOT
        self._prepare_slot = 0
        self._reports: dict[int, tuple[Entry, ...]] = {}  # promiser -> values it reported
        self._promisers: set[int] = set()
        self._asked: set[int] = set()  # members a PREPARE of this ballot went to
        self._peers: dict[int, PeerProgress] = {}
        self._first_own = 0  # the leader's first slot: it proposes nothing below
        self._written_through = 0  # the leader's own values are in the log up to here
        self._last_assigned = 0  # highest slot the leader gave a value (log or backlog)
        # re-proposals waiting behind a membership change that is not chosen yet
        self._backlog: dict[int, Entry] = {}
        self._pending_conf_slot = 0
        self._send_pending = False  # new own values not yet offered to peers
        # The chosen prefix end at the previous tick. A grown prefix rides on the next ACCEPT;
        # one that waited a whole tick for an ACCEPT goes out alone in CHOSEN, so under load,
        # even one write at a time, it never costs a message of its own, and an idle acceptor
        # still learns it within two ticks.
        self._chosen_at_last_tick = 0
        self._reads.clear()

    def _become_follower(self, leader: int) -> None:
        self._reset_proposer()
        self._role = Role.FOLLOWER
        self._leader_id = leader
        self._answer = self._answer_as_follower
        self._tick_role = self._tick_follower
        self._reset_timer()

    def _start_campaign(self) -> None:
        self._reset_proposer()
        ballot = make_ballot(ballot_round(self._promised) + 1, self._id)
        self._promised = ballot
        self._ballot = ballot
        self._role = Role.CANDIDATE
        self._leader_id = NO_NODE
        self._answer = self._answer_as_candidate
        self._tick_role = self._tick_candidate
        self._reset_timer()
        self._prepare_slot = self._chosen + 1
        self._promisers = {self._id}
        self._evaluate_promises()

    def _become_leader(self, values: list[Entry]) -> None:
        self._role = Role.LEADER
        self._leader_id = self._id
        self._answer = self._answer_as_leader
        self._tick_role = self._tick_leader
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        self._first_own = self._chosen + 1
        self._written_through = self._chosen
        self._backlog = {value.index: value for value in values}
        self._last_assigned = values[-1].index if values else self._chosen
        for node in self._conf.members() - {self._id}:
            self._peers[node] = PeerProgress(next=self._first_own)
        self._flush_backlog()
        self._broadcast_heartbeat()

    def _reset_timer(self) -> None:
        self._election_elapsed = 0
        self._heartbeat_elapsed = 0
        cfg = self._config
        self._election_timeout = cfg.election_ticks + self._rng.randrange(cfg.election_ticks)

    def _can_campaign(self) -> bool:
        return self._id in self._conf.voters and not self._amnesia_through

    # -- ticks -------------------------------------------------------------------------------

    def _tick_follower(self) -> None:
        self._election_elapsed += 1
        if self._election_elapsed < self._election_timeout:
            return
        if self._can_campaign():
            self._start_campaign()
            return
        # A learner, or a node that cannot vouch for its log, may hold a stale view of the
        # group (it may even be the newest group's only voter): ask around for what is chosen.
        self._reset_timer()
        for node in sorted(self._conf.members() - {self._id}):
            self._send(T.CATCHUP_REQ, node, first_unchosen=self._chosen + 1)

    def _tick_candidate(self) -> None:
        self._election_elapsed += 1
        self._heartbeat_elapsed += 1
        if self._election_elapsed >= self._election_timeout:
            # Phase 1 failed to gather a quorum in time: try again with a higher ballot.
            if self._can_campaign():
                self._start_campaign()
            else:
                self._become_follower(NO_NODE)
            return
        if self._heartbeat_elapsed >= self._config.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            for node in sorted(self._asked - self._promisers):
                self._send(T.PREPARE, node, slot=self._prepare_slot)

    def _tick_leader(self) -> None:
        self._heartbeat_elapsed += 1
        self._election_elapsed += 1
        if self._election_elapsed >= self._config.election_ticks:
            self._election_elapsed = 0
            if self._config.check_quorum and not self._quorum_active():
                self._become_follower(NO_NODE)
                return
        settled, self._chosen_at_last_tick = self._chosen_at_last_tick, self._chosen
        self._announce_chosen(settled)
        if self._heartbeat_elapsed >= self._config.heartbeat_ticks:
            self._heartbeat_elapsed = 0
            self._broadcast_heartbeat()

    def _quorum_active(self) -> bool:
        """Whether a quorum answered within the last election timeout, and the promisers
        still cover the current membership."""
        active = {node for node, peer in self._peers.items() if peer.active}
        active.add(self._id)
        for peer in self._peers.values():
            peer.active = False
        voters = self._conf.voters
        return has_quorum(voters, active) and has_quorum(voters, self._promisers)

    # -- phase 1 -----------------------------------------------------------------------------

    def _plan(self) -> tuple[list[Entry], list[ConfState]]:
        """What this candidate would re-propose, and the configurations governing it."""
        own = self._log.values_from(self._chosen + 1, self._config.max_promise_values)
        merged = merge_reports([own, *self._reports.values()], self._chosen)
        values = reproposals(merged, self._chosen, self._ballot)
        return values, config_sequence(self._conf, values)

    def _evaluate_promises(self) -> None:
        values, confs = self._plan()
        wanted: set[int] = set()
        for conf in confs:
            wanted |= conf.members()
        for node in sorted(wanted - self._asked - {self._id}):
            self._asked.add(node)
            self._send(T.PREPARE, node, slot=self._prepare_slot)
        if covers_quorums(confs, self._promisers):
            self._become_leader(values)

    def _answer_as_candidate(self, msg: PaxosMessage) -> None:
        if msg.type is not T.PROMISE:
            return
        if msg.reject:
            # It compacted slots we lack (or holds too many): its report cannot count, but
            # it can bring us up to date.
            self._request_catchup(msg.src, force=True)
            return
        self._install_chosen(msg.values, msg.chosen_upto)
        if self._role is not Role.CANDIDATE:
            return
        if not self._can_campaign():
            self._become_follower(NO_NODE)  # the chosen prefix says we are no voter
            return
        self._reports[msg.src] = msg.values
        self._promisers.add(msg.src)
        self._evaluate_promises()

    # -- leader ------------------------------------------------------------------------------

    def _answer_as_leader(self, msg: PaxosMessage) -> None:
        kind = msg.type
        if kind is T.PROMISE:
            self._handle_late_promise(msg)
            return
        peer = self._peers.get(msg.src)
        if peer is None:
            return
        if kind is T.ACCEPTED:
            peer.acknowledge(msg.slot, msg.first_unchosen)
            if msg.reject:
                peer.rewind(self._send_floor())
            else:
                peer.inflight = max(0, peer.inflight - 1)
            self._maybe_choose()
        elif kind is T.HEARTBEAT_RESP:
            peer.acknowledge(msg.slot, msg.first_unchosen)
            if peer.stalled() and peer.match < self._written_through:
                # Nothing arrived for a whole interval: probe again even if a probe is out.
                peer.probing = False
                peer.rewind(self._send_floor())
            self._maybe_choose()
        elif kind is T.READ_CONFIRM_RESP:
            peer.active = True
            self._reads.acknowledge(msg.src, msg.context)
            for read, index in self._reads.confirmed(self._conf.voters, self._id):
                self._read_states.append(ReadState(read.context, index))
            return
        if self._role is Role.LEADER and msg.src in self._peers:
            self._send_accepts(msg.src)
            if peer.first_unchosen > self._chosen + 1:
                self._request_catchup(msg.src)  # it knows chosen slots we do not

    def _handle_late_promise(self, msg: PaxosMessage) -> None:
        """A promise that arrives after phase 1 completed (or from a member added since):
        values past what we assigned are re-proposed before anything new, then it counts."""
        peer = self._peers.get(msg.src)
        if peer is not None:
            peer.active = True
        if msg.reject or msg.src in self._promisers:
            return
        merged = merge_reports([msg.values], self._last_assigned)
        for value in reproposals(merged, self._last_assigned, self._ballot):
            self._backlog[value.index] = value
            self._last_assigned = value.index
        self._promisers.add(msg.src)
        self._flush_backlog()

    def _check_can_propose(self) -> None:
        if self._role is not Role.LEADER:
            raise NotLeader(self._leader_id)
        if self._backlog:
            raise ProposalDropped("the new leader is still re-proposing earlier values")
        if self._pending_conf_slot > self._chosen:
            raise ProposalDropped("a membership change is not chosen yet")
        if self._last_assigned - self._chosen >= self._config.max_inflight_slots:
            raise ProposalDropped("too many unchosen slots")
        if not has_quorum(self._conf.voters, self._promisers):
            raise ProposalDropped("too few members of the group have promised our ballot")

    def _append_own(self, kind: EntryKind, data: bytes) -> int:
        slot = self._last_assigned + 1
        self._write_own(Entry(self._ballot, slot, kind, tag_value(self._ballot, data)))
        self._last_assigned = slot
        return slot

    def _write_own(self, value: Entry) -> None:
        assert value.index == self._written_through + 1, "own values are written in order"
        self._put(value)
        self._written_through = value.index
        self._send_pending = True

    def _flush_backlog(self) -> None:
        """Move re-proposals into the log in slot order, stopping after a membership change
        until it is chosen, and only while the promisers cover the governing membership."""
        while self._backlog:
            if self._pending_conf_slot > self._chosen:
                return
            if not has_quorum(self._conf.voters, self._promisers):
                return
            value = self._backlog.pop(self._written_through + 1)
            self._write_own(value)
            if value.kind is EntryKind.CONF_CHANGE:
                self._pending_conf_slot = value.index

    def _maybe_choose(self) -> None:
        """Advance the chosen prefix over slots a quorum of voters accepted in our ballot."""
        if self._role is not Role.LEADER:
            return
        advanced = False
        for slot in range(self._chosen + 1, self._written_through + 1):
            value = self._log.get(slot)
            if value is None or value.term != self._ballot:
                break
            voters = self._conf.voters
            acks = 0
            for voter in voters:
                if voter == self._id:
                    acks += slot <= self._stable_through
                else:
                    peer = self._peers.get(voter)
                    acks += peer is not None and peer.counts_for(slot)
            if acks < quorum_size(len(voters)):
                break
            self._commit_to(slot)
            advanced = True
        if not advanced:
            return
        if self._id not in self._conf.members():
            # Our own removal is chosen: tell the others, then stand down for good.
            self._announce_chosen(self._chosen)
            self._become_follower(NO_NODE)
            return
        self._flush_backlog()

    def _on_conf_chosen(self) -> None:
        """The leader keeps one progress record per member and asks new members to
        promise, so a learner can be promoted without a new phase 1."""
        members = self._conf.members()
        for node in list(self._peers):
            if node not in members:
                del self._peers[node]
        for node in sorted(members - self._peers.keys() - {self._id}):
            self._peers[node] = PeerProgress(next=self._first_own)
            self._send(T.PREPARE, node, slot=self._last_assigned + 1)

    def _send_floor(self) -> int:
        return max(self._first_own, self._log.base + 1)

    def _flush_leader_output(self) -> None:
        """Offer new values (and a grown chosen prefix) to every peer at once, so a burst of
        proposals leaves as one ACCEPT per peer."""
        if self._send_pending:
            for node in sorted(self._peers):
                self._send_accepts(node)
            self._send_pending = False
        if self._reads.has_unsent:
            self._start_read_round()

    def _announce_chosen(self, settled: int) -> None:
        """CHOSEN to every acceptor not yet told the prefix through `settled`."""
        for node, peer in sorted(self._peers.items()):
            if peer.told_chosen < settled:
                self._send(T.CHOSEN, node, slot=self._first_own, chosen_upto=self._chosen)
                peer.told_chosen = self._chosen

    def _send_accepts(self, node: int) -> bool:
        """Pipeline as many ACCEPT batches as the peer's window allows."""
        peer = self._peers[node]
        cfg = self._config
        sent = False
        window = peer.window(cfg.max_inflight_accepts)
        for _ in range(window):
            if peer.inflight >= window:
                break
            start = max(peer.next, peer.first_unchosen, self._send_floor())
            if start > self._written_through:
                break
            end = min(self._written_through, start + cfg.max_accept_values - 1)
            values = tuple(self._value(slot) for slot in range(start, end + 1))
            self._send(
                T.ACCEPT, node, slot=self._first_own, values=values, chosen_upto=self._chosen
            )
            peer.told_chosen = self._chosen
            peer.next = end + 1
            peer.inflight += 1
            sent = True
        return sent

    def _broadcast_heartbeat(self) -> None:
        for node, peer in sorted(self._peers.items()):
            self._send(T.HEARTBEAT, node, slot=self._first_own, chosen_upto=self._chosen)
            peer.told_chosen = self._chosen
        tag = self._reads.latest_tag()
        if tag:
            for voter in sorted(self._conf.voters - {self._id}):
                self._send(T.READ_CONFIRM, voter, context=tag)
        # A promise lost on the way is asked for again.
        for node in sorted(self._conf.members() - self._promisers - {self._id}):
            self._send(T.PREPARE, node, slot=self._last_assigned + 1)

    def _start_read_round(self) -> None:
        # Every value chosen before the read started sits at or below the highest slot we
        # assigned: phase 1 saw every earlier choice, and we assigned everything since.
        index = max(self._last_assigned, self._chosen)
        if self._conf.voters <= {self._id}:
            for read in self._reads.take_unsent():
                self._read_states.append(ReadState(read.context, index))
            return
        tag = self._reads.start_round(index)
        for voter in sorted(self._conf.voters - {self._id}):
            self._send(T.READ_CONFIRM, voter, context=tag)

    # -- acceptor and learner ----------------------------------------------------------------

    def _on_answer(self, msg: PaxosMessage) -> None:
        if self._ballot != NO_BALLOT and msg.ballot == self._ballot:
            self._answer(msg)

    def _answer_as_follower(self, msg: PaxosMessage) -> None:
        """A follower runs no ballot, so no answer is meant for it."""

    def _adopt(self, msg: PaxosMessage) -> bool:
        """Bind ourselves to a proposer's ballot if it is not below our promise (a leader or
        candidate of a lower ballot steps down); NACK it otherwise."""
        if msg.ballot < self._promised:
            self._send(T.NACK, msg.src, ballot=self._promised, slot=msg.slot)
            return False
        if msg.ballot > self._promised:
            self._promised = msg.ballot
            if self._role is not Role.FOLLOWER:
                self._become_follower(NO_NODE)
        return True

    def _heard_leader(self, msg: PaxosMessage) -> bool:
        """A message only a leader sends: adopt its ballot and follow it."""
        if not self._adopt(msg):
            return False
        if self._role is Role.FOLLOWER:
            self._leader_id = msg.src
            self._election_elapsed = 0
        return True

    def _on_prepare(self, msg: PaxosMessage) -> None:
        if self._amnesia_through:
            return  # it cannot vouch for what it accepted; staying silent is safe
        if msg.src not in self._conf.voters:
            # A removed node that never heard of its removal would otherwise depose every
            # leader in turn; a voter we do not know of yet loses nothing (others campaign).
            # Pointing it at our chosen prefix lets it learn where it stands.
            self._send(T.CATCHUP_RESP, msg.src, chosen_upto=self._chosen)
            return
        raised = msg.ballot > self._promised
        if not self._adopt(msg):
            return
        if raised and self._role is Role.FOLLOWER:
            self._leader_id = NO_NODE  # whoever led before is being replaced
            self._reset_timer()
        first = msg.slot
        limit = self._config.max_promise_values
        values = self._log.values_from(max(first, self._log.base + 1), limit + 1)
        incomplete = (first <= self._log.base and first <= self._chosen) or len(values) > limit
        self._send(
            T.PROMISE,
            msg.src,
            ballot=msg.ballot,
            slot=first,
            values=() if incomplete else tuple(values),
            chosen_upto=self._chosen,
            reject=incomplete,
        )

    def _on_accept(self, msg: PaxosMessage) -> None:
        if not self._heard_leader(msg):
            return
        ballot = msg.ballot
        run_end = self._run_end(ballot, msg.slot)
        refused = False
        if msg.values:
            if msg.values[0].index > run_end + 1:
                refused = True  # an earlier batch is missing: accept in order only
            else:
                limit = self._chosen + self._config.accept_window_slots
                for value in msg.values:
                    if value.index > limit or value.term != ballot:
                        break
                    if value.index > run_end:
                        self._put(value)
        self._learn_chosen(ballot, msg.chosen_upto, msg.src)
        self._send(
            T.ACCEPTED,
            msg.src,
            ballot=ballot,
            slot=self._run_end(ballot, msg.slot),
            first_unchosen=self._chosen + 1,
            reject=refused,
        )

    def _run_end(self, ballot: int, first_own: int) -> int:
        """Last slot of our unbroken run of `ballot`'s values from the first slot that counts
        (past our chosen prefix and the leader's first own slot); one before it if none."""
        slot = max(self._chosen + 1, first_own, self._log.base + 1)
        last = self._log.last
        while slot <= last and self._log.ballot_at(slot) == ballot:
            slot += 1
        return slot - 1

    def _on_chosen(self, msg: PaxosMessage) -> None:
        if self._heard_leader(msg):
            self._learn_chosen(msg.ballot, msg.chosen_upto, msg.src)

    def _on_heartbeat(self, msg: PaxosMessage) -> None:
        if not self._heard_leader(msg):
            return
        self._learn_chosen(msg.ballot, msg.chosen_upto, msg.src)
        self._send(
            T.HEARTBEAT_RESP,
            msg.src,
            ballot=msg.ballot,
            slot=self._run_end(msg.ballot, msg.slot),
            first_unchosen=self._chosen + 1,
        )
        if msg.context == TRANSFER_CONTEXT and self._can_campaign():
            self._start_campaign()

    def _on_read_confirm(self, msg: PaxosMessage) -> None:
        if self._heard_leader(msg):
            self._send(T.READ_CONFIRM_RESP, msg.src, ballot=msg.ballot, context=msg.context)

    def _on_nack(self, msg: PaxosMessage) -> None:
        if msg.ballot > self._promised:
            self._promised = msg.ballot
        if self._role is not Role.FOLLOWER and msg.ballot > self._ballot:
            # Preempted: back off for a fresh random timeout before trying again.
            self._become_follower(NO_NODE)

    def _learn_chosen(self, ballot: int, chosen_upto: int, source: int) -> None:
        """A leader of `ballot` says everything through `chosen_upto` is chosen: where we hold
        its ballot's value, that value is the chosen one."""
        target = min(chosen_upto, self._log.last)
        slot = self._chosen + 1
        while slot <= target and self._log.ballot_at(slot) == ballot:
            slot += 1
        self._commit_to(slot - 1)
        if self._chosen < chosen_upto:
            self._request_catchup(source)

    def _request_catchup(self, node: int, *, force: bool = False) -> None:
        if self._catchup_cooldown > 0 and not force:
            return
        self._catchup_cooldown = self._config.heartbeat_ticks
        self._send(T.CATCHUP_REQ, node, first_unchosen=self._chosen + 1)

    def _on_catchup_req(self, msg: PaxosMessage) -> None:
        first = msg.first_unchosen
        if first > self._log.base:
            self._streams.forget(msg.src)  # past any snapshot we were streaming it
        if first > self._chosen:
            return
        if first <= self._log.base:
            if self._snapshot is not None:
                self._send_chunk(msg.src, self._streams.resume(msg.src, self._snapshot))
            return
        last = min(self._chosen, first + self._config.max_catchup_values - 1)
        values = tuple(self._value(slot) for slot in range(first, last + 1))
        self._send(T.CATCHUP_RESP, msg.src, values=values, chosen_upto=self._chosen)

    def _on_catchup_resp(self, msg: PaxosMessage) -> None:
        before = self._chosen
        self._install_chosen(msg.values, msg.chosen_upto)
        if self._chosen < msg.chosen_upto:
            # After progress ask for the next batch at once; otherwise not too often.
            self._request_catchup(msg.src, force=self._chosen > before)

    def _install_chosen(self, values: Sequence[Entry], chosen_upto: int) -> None:
        """Take values a peer knows chosen (those through its `chosen_upto`) that extend our
        chosen prefix. Our own value stays where it is the same proposal."""
        stale_leader = False
        for value in values:
            slot = value.index
            if slot > chosen_upto or slot > self._chosen + 1 or value.term == NO_BALLOT:
                break
            if slot <= self._chosen:
                continue
            mine = self._log.get(slot)
            if mine is None or not same_value(mine, value):
                # A leader whose proposal lost to another value has been superseded.
                stale_leader = stale_leader or self._role is Role.LEADER
                self._put(value)
            self._commit_to(slot)
        if stale_leader and self._role is Role.LEADER:
            self._become_follower(NO_NODE)

    # -- snapshots ---------------------------------------------------------------------------

    def _send_chunk(self, node: int, chunk: Chunk | None) -> None:
        if chunk is not None:
            self._send(
                T.SNAPSHOT,
                node,
                snapshot_meta=chunk.meta,
                offset=chunk.offset,
                chunk=chunk.data,
                done=chunk.done,
            )

    def _on_snapshot(self, msg: PaxosMessage) -> None:
        meta = msg.snapshot_meta
        if meta is None:
            return
        received = msg.offset + len(msg.chunk)
        if meta.index <= self._chosen:
            # Nothing to install: what we know chosen already covers it.
            self._send(T.SNAPSHOT_RESP, msg.src, slot=self._chosen, offset=received)
            return
        taken = self._streams.receive(msg.src, meta, msg.offset, msg.chunk, msg.done)
        if taken is None:
            return  # too many streams at once: the sender retries
        held, rewind, snapshot = taken
        if snapshot is None:
            self._send(T.SNAPSHOT_RESP, msg.src, offset=held, reject=rewind)
            return
        self._install_snapshot(snapshot)
        self._send(T.SNAPSHOT_RESP, msg.src, slot=meta.index, offset=held)

    def _on_snapshot_resp(self, msg: PaxosMessage) -> None:
        chunk = self._streams.answered(
            msg.src, msg.offset, rewind=msg.reject, installed=msg.slot > 0
        )
        self._send_chunk(msg.src, chunk)

    def _install_snapshot(self, snapshot: Snapshot) -> None:
        if self._role is not Role.FOLLOWER:
            self._become_follower(NO_NODE)  # we were behind: someone else must lead
        index = snapshot.meta.index
        # Storage keeps the accepted values after the snapshot only when the snapshot's term
        # matches its own entry there, so the term must be ours, not the sender's.
        local = SnapshotMeta(index, self._log.ballot_at(index), snapshot.meta.conf)
        self._log.compact(index)
        self._mark_unstable()
        self._chosen = index
        self._applied = index
        self._apply_sent = index
        self._conf = local.conf
        self._snapshot = Snapshot(local, snapshot.data)
        self._snapshot_meta = local
        self._snapshot_to_persist = self._snapshot
        self._snapshot_requested = False
        if self._amnesia_through <= index:
            self._amnesia_through = 0

    # -- helpers -----------------------------------------------------------------------------

    def _put(self, value: Entry) -> None:
        self._log.put(value)
        self._mark_unstable()

    def _mark_unstable(self) -> None:
        dirty = self._log.dirty_from
        if dirty is not None:
            self._stable_through = min(self._stable_through, dirty - 1)

    def _value(self, slot: int) -> Entry:
        value = self._log.get(slot)
        assert value is not None, f"no value held at slot {slot}"
        return value

    def _commit_to(self, slot: int) -> None:
        """Extend the chosen prefix, adopting chosen membership changes on the way."""
        if slot <= self._chosen:
            return
        conf_changed = False
        for index in range(self._chosen + 1, slot + 1):
            value = self._value(index)
            if value.kind is EntryKind.CONF_CHANGE:
                conf = apply_change(self._conf, value)
                conf_changed = conf_changed or conf != self._conf
                self._conf = conf
        self._chosen = slot
        if self._amnesia_through and self._chosen >= self._amnesia_through:
            self._amnesia_through = 0
        if self._role is Role.LEADER and conf_changed:
            self._on_conf_chosen()

    def _send(
        self,
        kind: PaxosMessageType,
        dst: int,
        *,
        ballot: int | None = None,
        slot: int = 0,
        values: tuple[Entry, ...] = (),
        first_unchosen: int = 0,
        chosen_upto: int = 0,
        reject: bool = False,
        context: bytes = b"",
        snapshot_meta: SnapshotMeta | None = None,
        offset: int = 0,
        chunk: bytes = b"",
        done: bool = False,
    ) -> None:
        if ballot is None:
            # A proposer speaks in its own ballot; anyone else in its promise.
            ballot = self._ballot if self._ballot != NO_BALLOT else self._promised
        self._messages.append(
            PaxosMessage(
                type=kind,
                src=self._id,
                dst=dst,
                ballot=ballot,
                slot=slot,
                values=values,
                first_unchosen=first_unchosen,
                chosen_upto=chosen_upto,
                reject=reject,
                context=context,
                snapshot_meta=snapshot_meta,
                offset=offset,
                chunk=chunk,
                done=done,
            )
        )

    def _hard_state(self) -> HardState:
        # vote: the last slot of the log once this hard state is durable (see the module
        # docstring), never lowered while a loss is still being repaired.
        last = max(self._log.last, self._amnesia_through)
        return HardState(term=self._promised, vote=last, commit=self._chosen)

    def _wants_snapshot(self, applied: int) -> bool:
        return (
            not self._snapshot_requested
            and applied - self._log.base >= self._config.snapshot_threshold_entries
        )

    def _check_invariants(self) -> None:
        assert self._applied <= self._apply_sent <= self._chosen <= self._log.last, (
            f"applied {self._applied} <= sent {self._apply_sent} <= chosen {self._chosen} "
            f"<= last {self._log.last}"
        )
        assert self._log.base <= self._apply_sent
        assert self._ballot <= self._promised, "a proposer is bound by its own promise"
