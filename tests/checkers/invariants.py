"""Cluster-wide safety and liveness invariants of a replicated log, engine-neutral.

Replicas are described by plain values: log records (index, term, payload), applied
positions with a digest of the state machine, acknowledged client writes. `SafetyMonitor`
is fed observations while a run goes on (so a property that held only briefly is still
caught); the `check_*` functions judge snapshots of the cluster. Every check returns a list
of human-readable violations; an empty list means the property held.

"term" means whatever orders the engine's leaders: a Raft term, a Paxos ballot rank.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

MAX_VIOLATIONS_PER_CHECK = 20  # beyond this, more lines only bury the first cause


@dataclass(frozen=True, slots=True)
class LogRecord:
    index: int
    term: int
    payload: bytes  # everything that identifies the entry (kind and data)


@dataclass(frozen=True, slots=True)
class AckedWrite:
    """A write a client was told succeeded, and the log position it was told about."""

    op_id: int
    index: int
    term: int
    payload: bytes


def _short(payload: bytes) -> str:
    return payload[:24].hex() + ("…" if len(payload) > 24 else "")


class SafetyMonitor:
    """Invariants checked at every observation, across crashes, restarts and snapshots.

    - election safety: at most one leader per term over the whole run;
    - log matching (continuous half): one (index, term) never names two different entries,
      whichever node persisted them and whenever;
    - state-machine safety: no two nodes apply different entries at one index, and the
      state-machine digests after applying an index agree everywhere (which also covers
      nodes that skipped entries by installing a snapshot);
    - leader completeness: a new leader of term T holds every entry that was applied
      somewhere before any node reached term T (such an entry was committed in an earlier
      term, so the Leader Completeness Property says it must be there).
    """

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.leaders: dict[int, int] = {}  # term -> the node seen leading it
        self.persisted: dict[tuple[int, int], bytes] = {}  # (index, term) -> payload
        self.applied: dict[int, tuple[int, bytes]] = {}  # index -> (term, payload)
        self.digests: dict[int, bytes] = {}  # index -> state digest once it was applied
        self.max_term = 0
        self.max_applied = 0
        # term -> highest index applied anywhere before any node reached that term
        self._committed_before: dict[int, int] = {}

    def report(self, found: list[str]) -> list[str]:
        """Keep `found` among the run's violations (bounded) and hand it back."""
        room = MAX_VIOLATIONS_PER_CHECK * 4 - len(self.violations)
        if found and room > 0:
            self.violations.extend(found[:room])
        return found

    # -- terms and leaders -----------------------------------------------------------------

    def observe_term(self, term: int) -> None:
        """Call whenever a node's term may have grown, before that node applies anything."""
        if term <= self.max_term:
            return
        for reached in range(self.max_term + 1, term + 1):
            self._committed_before[reached] = self.max_applied
        self.max_term = term

    def observe_leader(self, node: int, term: int) -> tuple[bool, list[str]]:
        """Returns (first sighting of this leader in this term, violations)."""
        self.observe_term(term)
        seen = self.leaders.get(term)
        if seen is None:
            self.leaders[term] = node
            return True, []
        if seen != node:
            return False, self.report(
                [f"election safety: nodes {seen} and {node} both lead term {term}"]
            )
        return False, []

    def check_new_leader(
        self, node: int, term: int, snapshot_index: int, log: Sequence[LogRecord]
    ) -> list[str]:
        committed_through = self._committed_before.get(term, 0)
        return self.report(
            check_leader_completeness(
                node, term, snapshot_index, log, self.applied, committed_through
            )
        )

    # -- logs and state machines -----------------------------------------------------------

    def observe_persisted(self, node: int, records: Iterable[LogRecord]) -> list[str]:
        found: list[str] = []
        persisted = self.persisted
        for record in records:
            key = (record.index, record.term)
            known = persisted.get(key)
            if known is None:
                persisted[key] = record.payload
            elif known != record.payload:
                found.append(
                    f"log matching: node {node} persisted {_short(record.payload)} at index "
                    f"{record.index} term {record.term}, another node has {_short(known)}"
                )
        return self.report(found)

    def observe_apply(
        self, node: int, index: int, term: int, payload: bytes, digest: bytes
    ) -> list[str]:
        found: list[str] = []
        known = self.applied.get(index)
        if known is None:
            self.applied[index] = (term, payload)
            if index > self.max_applied:
                self.max_applied = index
        elif known != (term, payload):
            found.append(
                f"state-machine safety: node {node} applied term {term} {_short(payload)} at "
                f"index {index}, another node applied term {known[0]} {_short(known[1])}"
            )
        found.extend(self._digest(node, index, digest, "applying"))
        return self.report(found)

    def observe_state(self, node: int, index: int, digest: bytes, how: str) -> list[str]:
        """A node's state machine stands at `index` without applying it entry by entry
        (restored or taken a snapshot there)."""
        if index > self.max_applied:
            self.max_applied = index
        return self.report(self._digest(node, index, digest, how))

    def _digest(self, node: int, index: int, digest: bytes, how: str) -> list[str]:
        known = self.digests.get(index)
        if known is None:
            self.digests[index] = digest
            return []
        if known != digest:
            return [
                f"state-machine safety: node {node} state after {how} index {index} has "
                f"digest {digest.hex()}, another node had {known.hex()}"
            ]
        return []


def check_leader_completeness(
    node: int,
    term: int,
    snapshot_index: int,
    log: Sequence[LogRecord],
    applied: Mapping[int, tuple[int, bytes]],
    committed_through: int,
) -> list[str]:
    """The leader of `term` must hold every committed entry up to `committed_through`
    (entries at or below its snapshot are covered by the snapshot itself)."""
    found: list[str] = []
    last_index = log[-1].index if log else snapshot_index
    if last_index < committed_through:
        found.append(
            f"leader completeness: node {node} leads term {term} with log ending at "
            f"{last_index}, but index {committed_through} was committed in an earlier term"
        )
    first = log[0].index if log else snapshot_index + 1
    for index in range(max(first, snapshot_index + 1), min(last_index, committed_through) + 1):
        record = log[index - first]
        known = applied.get(index)
        if known is not None and (record.term, record.payload) != known:
            found.append(
                f"leader completeness: node {node} leads term {term} holding term "
                f"{record.term} at index {index}, but term {known[0]} was committed there"
            )
            if len(found) >= MAX_VIOLATIONS_PER_CHECK:
                break
    return found


def check_durable_promises(
    node: int, term: int, vote: int, promised_term: int, vote_promise: tuple[int, int] | None
) -> list[str]:
    """After a restart, a node still honours what its earlier incarnation told others: its
    term is not below any term it sent, and a vote it granted in its current term stands."""
    found: list[str] = []
    if term < promised_term:
        found.append(
            f"durability: node {node} restarted in term {term} after sending messages of "
            f"term {promised_term}"
        )
    if vote_promise is not None:
        vote_term, candidate = vote_promise
        if term == vote_term and vote != candidate:
            found.append(
                f"durability: node {node} granted its term-{vote_term} vote to {candidate}, "
                f"but restarted with its vote set to {vote or 'nobody'}"
            )
    return found


def check_log_matching(logs: Mapping[int, Sequence[LogRecord]]) -> list[str]:
    """Log Matching Property between every pair of logs: if both hold an entry with the
    same index and term, they hold identical entries at every index before it (as far back
    as both still hold entries)."""
    found: list[str] = []
    nodes = sorted(logs)
    for position, a in enumerate(nodes):
        log_a = logs[a]
        if not log_a:
            continue
        for b in nodes[position + 1 :]:
            log_b = logs[b]
            if not log_b:
                continue
            lo = max(log_a[0].index, log_b[0].index)
            hi = min(log_a[-1].index, log_b[-1].index)
            first_a, first_b = log_a[0].index, log_b[0].index
            # the highest index where the two agree on the term anchors the shared prefix
            anchor = 0
            for index in range(hi, lo - 1, -1):
                if log_a[index - first_a].term == log_b[index - first_b].term:
                    anchor = index
                    break
            for index in range(lo, anchor + 1):
                ra, rb = log_a[index - first_a], log_b[index - first_b]
                if ra != rb:
                    found.append(
                        f"log matching: nodes {a} and {b} agree at index {anchor} but differ "
                        f"at {index}: term {ra.term} {_short(ra.payload)} vs term {rb.term} "
                        f"{_short(rb.payload)}"
                    )
                    break
            if len(found) >= MAX_VIOLATIONS_PER_CHECK:
                return found
    return found


def check_acknowledged_writes(
    acked: Iterable[AckedWrite], applied: Mapping[int, tuple[int, bytes]], applied_through: int
) -> list[str]:
    """Every write a client saw succeed is in the applied history, at the position and with
    the contents it was acknowledged with, and the surviving replicas have applied past it."""
    found: list[str] = []
    for write in acked:
        known = applied.get(write.index)
        if known != (write.term, write.payload):
            what = "nothing" if known is None else f"term {known[0]} {_short(known[1])}"
            found.append(
                f"lost write: op {write.op_id} was acknowledged at index {write.index} term "
                f"{write.term}, but {what} was applied there"
            )
        elif write.index > applied_through:
            found.append(
                f"lost write: op {write.op_id} at index {write.index} is beyond what the "
                f"surviving replicas applied ({applied_through})"
            )
        if len(found) >= MAX_VIOLATIONS_PER_CHECK:
            break
    return found


def check_convergence(states: Mapping[int, tuple[int, bytes]]) -> list[str]:
    """After healing, every live member has applied the same index to the same state
    (node -> (applied index, state-machine digest))."""
    if not states:
        return ["convergence: no live members at the end of the run"]
    distinct = sorted({state for state in states.values()})
    if len(distinct) == 1:
        return []
    described = ", ".join(
        f"node {node} at {index} ({digest.hex()[:12]})"
        for node, (index, digest) in sorted(states.items())
    )
    return [f"convergence: live members did not converge: {described}"]


def check_liveness(
    healed_at: int, leader_at: int | None, committed_at: int | None, bound_ticks: int
) -> list[str]:
    """Once faults stop, a leader is elected and a new proposal commits within the bound."""
    deadline = healed_at + bound_ticks
    if leader_at is None or leader_at > deadline:
        return [f"liveness: no leader within {bound_ticks} ticks of healing at tick {healed_at}"]
    if committed_at is None or committed_at > deadline:
        return [
            f"liveness: leader elected at tick {leader_at} but no proposal committed within "
            f"{bound_ticks} ticks of healing at tick {healed_at}"
        ]
    return []
