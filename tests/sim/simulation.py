"""One seed, one run: build a cluster, inject faults, heal, and judge the outcome.

Everything random comes from a single `random.Random(seed)`: the scenario's knobs, the
fault schedule, the network, every core's own Random (derived from it in a fixed order) and
the clients. Replaying a seed therefore replays the run exactly, which the trace hash
proves.

A run has two phases. In the fault phase nodes crash (at any point of the Ready sequence)
and restart, the network loses, duplicates, delays and partitions messages, the group
changes membership and transfers leadership, while clients keep working. In the heal phase
every node comes back, the network is reliable and no more faults happen: a leader must be
elected and a fresh proposal committed within a bounded number of ticks, and the replicas
must converge. The checkers of tests.checkers judge both phases.
"""

from __future__ import annotations

import random
import traceback
from dataclasses import dataclass
from typing import Any

from tests.checkers.history import History
from tests.checkers.invariants import (
    SafetyMonitor,
    check_acknowledged_writes,
    check_convergence,
    check_liveness,
    check_log_matching,
)
from tests.checkers.linearizability import check_linearizable
from tests.sim.cluster import CRASH_POINTS, MAX_NODES, Cluster
from tests.sim.engine import ENGINES, Engine, SimLimits
from tests.sim.network import NetworkFaults
from tests.sim.trace import Trace
from tests.sim.workload import Workload

FAULT_TICKS_MIN = 500
FAULT_TICKS_MAX = 1200
LIVENESS_ELECTIONS = 20  # after healing, a commit must happen within this many timeouts
CONVERGE_ELECTIONS = 30  # ... and replicas must converge within this many more
LOG_MATCHING_EVERY_TICKS = 50
DOWNTIME_TICKS_MIN = 1
DOWNTIME_TICKS_MAX = 80
PARTITION_TICKS_MIN = 10
PARTITION_TICKS_MAX = 120
LEADER_CRASH_SHARE = 0.5  # of crashes aimed at the current leader
MIN_VOTERS = 3  # removals never shrink the group below this
LINEARIZABILITY_STATES_MAX = 500_000
TICK_RATES = (3, 4, 4, 4, 5)  # quarters of a tick per global tick: clock skew


@dataclass(frozen=True, slots=True)
class Scenario:
    """The knobs of one run, all drawn from its seed."""

    members: int
    fault_ticks: int
    loss: float
    duplication: float
    delay_ticks_max: int
    crash_per_tick: float
    partition_per_tick: float
    membership_per_tick: float
    transfer_per_tick: float
    clients: int
    keys: int
    tick_rates: tuple[int, ...]

    def describe(self) -> str:
        return (
            f"members={self.members} ticks={self.fault_ticks} loss={self.loss} "
            f"dup={self.duplication} delay<={self.delay_ticks_max} crash={self.crash_per_tick} "
            f"partition={self.partition_per_tick} membership={self.membership_per_tick} "
            f"transfer={self.transfer_per_tick} clients={self.clients} keys={self.keys} "
            f"rates={self.tick_rates}"
        )


def draw_scenario(rng: random.Random, members: int) -> Scenario:
    return Scenario(
        members=members,
        fault_ticks=rng.randint(FAULT_TICKS_MIN, FAULT_TICKS_MAX),
        loss=rng.choice((0.0, 0.01, 0.05, 0.15)),
        duplication=rng.choice((0.0, 0.02, 0.1)),
        delay_ticks_max=rng.choice((1, 2, 3, 6)),
        crash_per_tick=rng.choice((0.0, 0.005, 0.015, 0.03)),
        partition_per_tick=rng.choice((0.0, 0.005, 0.012)),
        membership_per_tick=rng.choice((0.0, 0.005, 0.012)),
        transfer_per_tick=rng.choice((0.0, 0.004)),
        clients=rng.randint(3, 6),
        keys=rng.randint(2, 4),
        tick_rates=tuple(rng.choice(TICK_RATES) for _ in range(MAX_NODES)),
    )


@dataclass(frozen=True, slots=True)
class SimResult:
    seed: int
    engine: str
    members: int
    ok: bool
    violations: tuple[str, ...]
    trace_hash: str
    ticks: int
    ops: int
    scenario: str
    stats: tuple[tuple[str, object], ...]


def limits_for(seed: int) -> SimLimits:
    """Every other pair of seeds allows a single APPEND in flight per follower (the
    tightest setting the servers accept), the rest pipeline several; every other four
    seeds replicate thriftily (the servers' default), so each mix of the two is run."""
    return SimLimits(
        max_inflight_appends=1 if (seed // 2) % 2 == 0 else 4, thrifty=(seed // 4) % 2 == 0
    )


def members_for(seed: int) -> int:
    """Seeds alternate between a 3-member and a 5-member group."""
    return 3 if seed % 2 == 0 else 5


class _Run:
    def __init__(
        self, seed: int, engine: Engine, members: int, limits: SimLimits, trace: Trace
    ) -> None:
        self.rng = random.Random(seed)
        self.scenario = draw_scenario(self.rng, members)
        self.limits = limits
        self.trace = trace
        self.monitor = SafetyMonitor()
        scenario = self.scenario
        self.workload = Workload(
            self.rng,
            engine,
            trace,
            clients=scenario.clients,
            keys=[f"k{n}" for n in range(scenario.keys)],
        )
        faults = NetworkFaults(scenario.loss, scenario.duplication, scenario.delay_ticks_max)
        self.cluster = Cluster(
            engine,
            self.rng,
            limits,
            members,
            faults,
            trace,
            self.monitor,
            self.workload,
            scenario.tick_rates,
        )
        self.violations: list[str] = []
        self._restart_at: dict[int, int] = {}
        self._heal_partition_at: int | None = None

    @property
    def history(self) -> History:
        return self.workload.history

    def unsafe(self) -> bool:
        return bool(self.monitor.violations or self.workload.violations or self.violations)

    # -- fault phase -------------------------------------------------------------------------

    def fault_phase(self) -> None:
        cluster = self.cluster
        for _ in range(self.scenario.fault_ticks):
            cluster.tick(issuing=True)
            self._inject_faults()
            if cluster.now % LOG_MATCHING_EVERY_TICKS == 0:
                self._check_logs()
            if self.unsafe():
                return

    def _inject_faults(self) -> None:
        rng = self.rng
        cluster = self.cluster
        scenario = self.scenario
        now = cluster.now
        for node_id in sorted(self._restart_at):
            if self._restart_at[node_id] <= now and not cluster.nodes[node_id].up:
                del self._restart_at[node_id]
                cluster.restart(node_id)
        if rng.random() < scenario.crash_per_tick:
            self._crash_one()
        if self._heal_partition_at is not None:
            if self._heal_partition_at <= now:
                self._heal_partition_at = None
                cluster.heal()
        elif rng.random() < scenario.partition_per_tick:
            kind = rng.randrange(3)
            if kind == 0:
                cluster.partition_halves()
            elif kind == 1:
                cluster.isolate_leader()
            else:
                cluster.one_way()
            self._heal_partition_at = now + rng.randint(PARTITION_TICKS_MIN, PARTITION_TICKS_MAX)
        if rng.random() < scenario.membership_per_tick:
            action = rng.randrange(3)
            if action == 0:
                cluster.add_learner(rng.choice(TICK_RATES))
            elif action == 1:
                cluster.promote()
            else:
                cluster.remove(MIN_VOTERS)
        if rng.random() < scenario.transfer_per_tick:
            cluster.transfer()

    def _crash_one(self) -> None:
        cluster = self.cluster
        active = [n for n, node in cluster.nodes.items() if not node.retired]
        unavailable = [n for n in active if not cluster.nodes[n].up or cluster.nodes[n].crash_point]
        # keep a majority able to run, so the fault phase still makes progress
        if len(unavailable) >= (len(active) - 1) // 2:
            return
        candidates = [n for n in active if n not in unavailable]
        leader = cluster.leader()
        # Leaders are the interesting victims: they hold entries nobody else has yet, and
        # their crash forces an election over logs that disagree.
        if leader in candidates and self.rng.random() < LEADER_CRASH_SHARE:
            node_id = leader
        else:
            node_id = self.rng.choice(candidates)
        point = self.rng.choice(CRASH_POINTS)
        cluster.arm_crash(node_id, point)
        downtime = self.rng.randint(DOWNTIME_TICKS_MIN, DOWNTIME_TICKS_MAX)
        self._restart_at[node_id] = cluster.now + downtime

    def _check_logs(self) -> None:
        cluster = self.cluster
        logs = {n: cluster.replica(n).log() for n in cluster.live()}
        self.violations.extend(check_log_matching(logs))

    # -- heal phase --------------------------------------------------------------------------

    def heal_phase(self) -> None:
        cluster = self.cluster
        cluster.heal()
        faults = cluster.network.faults
        cluster.network.faults = NetworkFaults(delay_ticks_max=min(faults.delay_ticks_max, 2))
        cluster.disarm_crashes()
        for node_id in cluster.down():
            cluster.restart(node_id)
        self._restart_at.clear()
        cluster.retire_non_members()
        healed_at = cluster.now
        bound = LIVENESS_ELECTIONS * self.limits.election_ticks
        leader_at: int | None = None
        probe = self.workload.probe
        while cluster.now < healed_at + bound and probe.committed_at is None:
            cluster.tick(issuing=True)
            leader = cluster.leader()
            if leader is not None:
                if leader_at is None:
                    leader_at = cluster.now
                self.workload.propose_probe(leader, cluster.replica(leader), cluster.now)
        self.violations.extend(check_liveness(healed_at, leader_at, probe.committed_at, bound))
        if probe.committed_at is None:
            return
        self._converge()

    def _converge(self) -> None:
        cluster = self.cluster
        deadline = cluster.now + CONVERGE_ELECTIONS * self.limits.election_ticks
        while cluster.now < deadline:
            cluster.tick(issuing=False)
            cluster.retire_non_members()
            if self.workload.pending() == 0 and self._converged():
                break
        else:
            self.violations.append(
                f"liveness: replicas did not converge within "
                f"{CONVERGE_ELECTIONS * self.limits.election_ticks} ticks: {self._progress()}"
            )
            return
        live = cluster.live()
        logs = {n: cluster.replica(n).log() for n in live}
        self.violations.extend(check_log_matching(logs))
        states: dict[int, tuple[int, bytes]] = {}
        for node_id in live:
            kv = cluster.nodes[node_id].kv
            assert kv is not None
            states[node_id] = (kv.applied_index, kv.chain)
        self.violations.extend(check_convergence(states))
        through = min(index for index, _ in states.values())
        self.violations.extend(
            check_acknowledged_writes(self.workload.acked, self.monitor.applied, through)
        )

    def _converged(self) -> bool:
        cluster = self.cluster
        leader = cluster.leader()
        if leader is None:
            return False
        view = cluster.view(leader)
        if view.commit_index != view.last_index:
            return False
        for node_id in cluster.live():
            kv = cluster.nodes[node_id].kv
            if kv is None or kv.applied_index != view.commit_index:
                return False
        return True

    def _progress(self) -> str:
        cluster = self.cluster
        parts = []
        for node_id in cluster.live():
            view = cluster.view(node_id)
            parts.append(
                f"node {node_id} term {view.term} leader={view.is_leader} commit "
                f"{view.commit_index} applied {view.applied_index} last {view.last_index}"
            )
        return "; ".join(parts)

    # -- verdict -----------------------------------------------------------------------------

    def judge(self) -> list[str]:
        self.workload.close(self.cluster.now)
        found = list(self.monitor.violations) + list(self.workload.violations) + self.violations
        if not found:
            verdict = check_linearizable(
                self.history, max_states_per_key=LINEARIZABILITY_STATES_MAX
            )
            if not verdict.ok:
                why = "search budget exhausted" if verdict.exhausted else verdict.reason
                found.append(f"linearizability: key {verdict.key!r}: {why}")
        return found


def _engine(engine: str | Engine) -> Engine:
    if isinstance(engine, str):
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}; known: {', '.join(sorted(ENGINES))}")
        return ENGINES[engine]()
    return engine


def run_seed(
    seed: int,
    engine: str | Engine = "raft",
    members: int | None = None,
    *,
    limits: SimLimits | None = None,
    trace: Trace | None = None,
    keep: dict[str, Any] | None = None,
) -> SimResult:
    """Run one seed. `keep`, when given, receives the run's history (for saving failures)."""
    chosen = _engine(engine)
    size = members if members is not None else members_for(seed)
    trace = trace if trace is not None else Trace()
    run = _Run(seed, chosen, size, limits or limits_for(seed), trace)
    try:
        run.fault_phase()
        if not run.unsafe():
            run.heal_phase()
        violations = run.judge()
    except Exception as error:  # any crash of core or simulator is a failing seed
        lines = traceback.format_exception(error)
        violations = [
            f"exception at tick {run.cluster.now}: {type(error).__name__}: {error}",
            "".join(lines[-6:]).rstrip(),
        ]
    if keep is not None:
        keep["history"] = run.history
    stats = run.cluster.stats
    summary: list[tuple[str, object]] = [
        (name, getattr(stats, name))
        for name in stats.__slots__  # type: ignore[attr-defined]
    ]
    return SimResult(
        seed=seed,
        engine=chosen.name,
        members=size,
        ok=not violations,
        violations=tuple(violations),
        trace_hash=trace.hexdigest(),
        ticks=run.cluster.now,
        ops=len(run.history.events) // 2,
        scenario=run.scenario.describe(),
        stats=tuple(summary),
    )
