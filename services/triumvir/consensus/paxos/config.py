"""Tunables of one Multi-Paxos core. Every window, batch and timer the core keeps is bounded
here."""

from __future__ import annotations

from dataclasses import dataclass

from triumvir.consensus.paxos.types import MAX_NODE_ID

# An acceptor takes values up to this many pipeline windows past its own chosen prefix, so a
# follower that learns of chosen slots a little late still accepts the leader's newest slots.
ACCEPT_WINDOW_FACTOR = 2


@dataclass(frozen=True, slots=True)
class PaxosConfig:
    node_id: int
    # A campaign starts after a randomized timeout in [election_ticks, 2 * election_ticks).
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    max_inflight_slots: int = 1024  # slots a leader has assigned but not seen chosen
    max_inflight_accepts: int = 64  # pipelined ACCEPT batches per peer
    max_accept_values: int = 256  # slots per ACCEPT
    max_catchup_values: int = 256  # chosen values per CATCHUP_RESP
    max_promise_values: int = 4096  # accepted values one PROMISE may report
    snapshot_threshold_entries: int = 10_000  # applied - snapshot slot that asks for one
    snapshot_chunk_bytes: int = 256 * 1024
    learner_catchup_entries: int = 100  # a learner may be promoted this close to chosen
    check_quorum: bool = True  # a leader that hears from no quorum for a timeout steps down

    def __post_init__(self) -> None:
        if not 0 < self.node_id <= MAX_NODE_ID:
            raise ValueError(f"node_id must be in [1, {MAX_NODE_ID}], got {self.node_id}")
        if self.heartbeat_ticks <= 0:
            raise ValueError("heartbeat_ticks must be positive")
        if self.election_ticks <= self.heartbeat_ticks:
            raise ValueError("election_ticks must be greater than heartbeat_ticks")
        for name in (
            "max_inflight_slots",
            "max_inflight_accepts",
            "max_accept_values",
            "max_catchup_values",
            "snapshot_threshold_entries",
            "snapshot_chunk_bytes",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        # A promise must be able to carry everything an acceptor may hold past its chosen
        # prefix, or a healthy group could never complete phase 1.
        if self.max_promise_values <= self.accept_window_slots:
            raise ValueError("max_promise_values must exceed the acceptor window")
        if self.learner_catchup_entries < 0:
            raise ValueError("learner_catchup_entries must not be negative")

    @property
    def accept_window_slots(self) -> int:
        """How far past its chosen prefix an acceptor accepts values."""
        return ACCEPT_WINDOW_FACTOR * self.max_inflight_slots
