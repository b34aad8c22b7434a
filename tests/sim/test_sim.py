"""The deterministic simulator against the real Raft and Multi-Paxos cores, plus proof its
checkers bite.

Seeds run in chunks so pytest-xdist spreads them across workers; a failing chunk lists every
failing seed with its violations and the command that replays it.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import pytest

from tests.sim.engine import Applied, RaftEngine, RaftReplica, SimLimits
from tests.sim.run import replay_command
from tests.sim.simulation import run_seed

SEED_CHUNKS = 10
SEEDS_PER_CHUNK = 30
# Membership removals are rare draws: this many seeds see every fault kind at least once.
SEEDS_FOR_COVERAGE = 24
ENGINES_UNDER_TEST = ("raft", "paxos")


@pytest.mark.parametrize("engine", ENGINES_UNDER_TEST)
@pytest.mark.parametrize("chunk", range(SEED_CHUNKS))
def test_seeds_hold_every_invariant(chunk: int, engine: str) -> None:
    failures: list[str] = []
    sizes: set[int] = set()
    for seed in range(chunk * SEEDS_PER_CHUNK, (chunk + 1) * SEEDS_PER_CHUNK):
        result = run_seed(seed, engine)
        sizes.add(result.members)
        assert result.ops > 0, f"seed {seed} ran no client operations"
        if not result.ok:
            failures.append(
                f"seed {seed}: "
                + " | ".join(result.violations[:4])
                + f"\n  replay: {replay_command(seed, engine)}"
            )
    assert sizes == {3, 5}, f"chunk {chunk} should mix group sizes, ran {sorted(sizes)}"
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("engine", ENGINES_UNDER_TEST)
def test_same_seed_same_trace_hash(engine: str) -> None:
    first = run_seed(12, engine)
    again = run_seed(12, engine)
    other = run_seed(13, engine)
    assert first.trace_hash == again.trace_hash
    assert (first.ticks, first.ops, first.stats) == (again.ticks, again.ops, again.stats)
    assert first.trace_hash != other.trace_hash


def test_runs_exercise_the_faults_they_claim() -> None:
    """Across a few seeds every kind of fault and every expensive code path happened."""
    totals: dict[str, int] = {}
    points: set[str] = set()
    for seed in range(SEEDS_FOR_COVERAGE):
        result = run_seed(seed)
        assert result.ok, result.violations
        for name, value in result.stats:
            if isinstance(value, int):
                totals[name] = totals.get(name, 0) + value
            elif isinstance(value, dict):
                points.update(value)
    for name in (
        "crashes",
        "restarts",
        "partitions",
        "snapshots_taken",
        "snapshots_installed",
        "membership_applied",
        "transfers",
        "retired",
    ):
        assert totals[name] > 0, f"no {name} in {SEEDS_FOR_COVERAGE} seeds: {totals}"
    assert {"torn-write", "before-sync", "after-apply"} <= points, points


# --- a deliberately broken replica the checkers must catch ----------------------------------


class _EagerFollower:
    """Wraps a correct replica but hands the state machine every entry as soon as it is in
    the log, committed or not: the classic bug of applying on receipt."""

    def __init__(self, inner: RaftReplica) -> None:
        self._inner = inner
        self.core = inner.core
        self._applied_through = inner.core.applied_index

    def committed(self, ready: Any) -> list[Applied]:
        fresh = [a for a in self._inner.committed(ready) if a.index > self._applied_through]
        if fresh:
            self._applied_through = fresh[-1].index
        eager = [
            Applied(e.index, e.term, e.data, e.kind == 0, e.kind == 2, bytes([e.kind]) + e.data)
            for e in self.core.log_entries()
            if e.index > self._applied_through
        ]
        if eager:
            self._applied_through = eager[-1].index
        return fresh + eager

    def ready_snapshot(self, ready: Any) -> tuple[int, int, bytes] | None:
        restored = self._inner.ready_snapshot(ready)
        if restored is not None:
            self._applied_through = restored[0]
        return restored

    def snapshot_wanted(self, ready: Any) -> bool:
        return False  # its state machine runs ahead of commit: no consistent snapshot exists

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _EagerFollowerEngine(RaftEngine):
    def start(
        self,
        node_id: int,
        rng: random.Random,
        storage: Any,
        limits: SimLimits,
        founders: Sequence[int] | None,
    ) -> Any:
        return _EagerFollower(super().start(node_id, rng, storage, limits, founders))


def test_checkers_catch_a_node_applying_uncommitted_entries() -> None:
    # An entry applied before it commits may later be overwritten: another node then applies
    # a different entry at that index (state-machine safety), or a leader is elected without
    # an entry some node already applied (leader completeness).
    safety = ("state-machine safety", "leader completeness")
    caught = []
    for seed in range(16):
        result = run_seed(seed, engine=_EagerFollowerEngine())
        if any(v.startswith(safety) for v in result.violations):
            caught.append(seed)
    assert len(caught) >= 10, f"applying uncommitted entries was caught only in seeds {caught}"
