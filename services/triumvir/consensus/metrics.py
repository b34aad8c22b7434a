"""What a consensus replica reports to Prometheus beyond its requests (see
`triumvir.common.metrics`): how long writes take to commit, how long the WAL's fsyncs take,
how often the leader changes, and where the replica stands (term, role, indexes)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from triumvir.common.metrics import LATENCY_BUCKETS_S
from triumvir.consensus.raft.core import Role
from triumvir.consensus.raft.types import NO_NODE


class DriverMetrics:
    """What the driver observes as it works; a driver made without a registry gets one of
    its own that nobody scrapes."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        registry = CollectorRegistry() if registry is None else registry
        self.commit_seconds = Histogram(
            "triumvir_commit_seconds",
            "On the leader, time from a write's proposal until it is applied: replicated "
            "to a quorum, durable there and applied.",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.fsync_seconds = Histogram(
            "triumvir_wal_fsync_seconds",
            "Time to flush one batch of the write-ahead log and fdatasync it.",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.leader_changes = Counter(
            "triumvir_leader_changes",
            "Times this replica saw the group's leader change (won elections, transfers, "
            "a leader lost).",
            registry=registry,
        )


def watch_core(registry: CollectorRegistry, core: Any) -> None:
    """Gauges read from the core when Prometheus scrapes, so they cost the replica nothing
    in between."""
    gauges = (
        ("triumvir_term", "The replica's current term (Paxos: ballot round).", lambda: core.term),
        (
            "triumvir_is_leader",
            "1 while this replica leads its group.",
            lambda: core.role is Role.LEADER,
        ),
        (
            "triumvir_has_leader",
            "1 while this replica knows a leader of its group.",
            lambda: core.leader_id != NO_NODE,
        ),
        ("triumvir_commit_index", "Highest log index known committed.", lambda: core.commit_index),
        ("triumvir_applied_index", "Highest log index applied.", lambda: core.applied_index),
    )
    for name, description, read in gauges:
        Gauge(name, description, registry=registry).set_function(read)
