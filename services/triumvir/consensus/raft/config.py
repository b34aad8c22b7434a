"""Tunables of one Raft core. Every queue, batch and timer the core keeps is bounded here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RaftConfig:
    node_id: int
    # An election starts after a randomized timeout in [election_ticks, 2 * election_ticks).
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    max_inflight_appends: int = 64  # pipelined APPENDs per follower
    max_append_entries: int = 256  # per APPEND message
    max_append_bytes: int = 1 << 20  # per APPEND message (at least one entry is always sent)
    max_uncommitted_entries: int = 10_000  # the leader refuses proposals beyond this
    snapshot_threshold_entries: int = 10_000  # applied - snapshot index that asks for one
    snapshot_chunk_bytes: int = 256 * 1024
    pre_vote: bool = True
    check_quorum: bool = True
    learner_catchup_entries: int = 100  # a learner may be promoted within this of last index
    # Thrifty replication: while a lone write is outstanding, it goes at once only to the
    # followers a quorum needs; the others get it when they answer their next heartbeat.
    thrifty: bool = False

    def __post_init__(self) -> None:
        if self.node_id <= 0:
            raise ValueError(f"node_id must be positive, got {self.node_id}")
        if self.heartbeat_ticks <= 0:
            raise ValueError("heartbeat_ticks must be positive")
        # Followers must hear several heartbeats per election timeout, or they campaign
        # against a healthy leader.
        if self.election_ticks <= self.heartbeat_ticks:
            raise ValueError("election_ticks must be greater than heartbeat_ticks")
        for name in (
            "max_inflight_appends",
            "max_append_entries",
            "max_append_bytes",
            "max_uncommitted_entries",
            "snapshot_threshold_entries",
            "snapshot_chunk_bytes",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")
        if self.learner_catchup_entries < 0:
            raise ValueError("learner_catchup_entries must not be negative")
