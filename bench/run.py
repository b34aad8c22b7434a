"""`python -m bench.run`: interleaved rounds of every system, medians in one table.

Each round takes the concurrency levels in turn and, at each level, every system on a fresh
cluster, one right after the other: the figures a ratio compares are taken seconds apart,
not minutes, on this shared machine whose speed drifts. Odd rounds take the systems in the
given order, even rounds in reverse, so no system always runs right after another. Exits
non-zero when any requested system could not be measured in some round, so `make bench`
fails loudly instead of printing a table with a hole in it.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bench.etcd_cluster import EtcdCluster, EtcdUnavailable
from bench.loadgen import (
    EtcdTarget,
    LeaderNotFound,
    LoadSpec,
    PutTarget,
    TriumvirTarget,
    find_etcd_leader,
    find_triumvir_leader,
    run_load,
)
from bench.report import Measurement, SystemReport, format_report, write_json
from bench.triumvir_cluster import ENGINES, REPO_ROOT, TriumvirCluster, TriumvirUnavailable

SYSTEMS = ("triumvir", "triumvir-paxos", "etcd")
# The paxos column is the same server with --engine paxos; "triumvir" runs --engine.
PAXOS_SYSTEM = "triumvir-paxos"
DEFAULT_CONCURRENCY = (1, 16, 64)
RESULTS_PATH = REPO_ROOT / ".bench" / "results.json"
CONCURRENCY_LEVELS_MAX = 16
DEFAULT_ROUNDS = 3
ROUNDS_MAX = 100
# Failures that mean "this system could not be measured", as opposed to a bug in the bench.
SYSTEM_FAILURES = (TriumvirUnavailable, EtcdUnavailable, LeaderNotFound, OSError)


LeaderFinder = Callable[[], Awaitable[str]]
TargetOpener = Callable[[str], PutTarget]


class Cluster(Protocol):
    name: str

    @property
    def endpoints(self) -> tuple[str, ...]: ...

    def peak_mib_per_replica(self) -> tuple[float, ...]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True, slots=True)
class BenchSettings:
    duration_s: float
    warmup_s: float
    concurrency: tuple[int, ...]
    systems: tuple[str, ...]
    engine: str
    output: Path
    rounds: int = DEFAULT_ROUNDS
    # Each triumvir replica keeps its threads on one CPU, as `triumvir up` runs them.
    spread_cpus: bool = True

    def specs(self) -> tuple[LoadSpec, ...]:
        return tuple(LoadSpec(c, self.duration_s, self.warmup_s) for c in self.concurrency)

    def as_json(self) -> dict[str, object]:
        return {
            "duration_s": self.duration_s,
            "warmup_s": self.warmup_s,
            "concurrency": list(self.concurrency),
            "systems": list(self.systems),
            "engine": self.engine,
            "rounds": self.rounds,
            "spread_cpus": self.spread_cpus,
            "value_bytes": LoadSpec(1, 1.0, 0.0).value_bytes,
            "started_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from err
    if not values or len(values) > CONCURRENCY_LEVELS_MAX:
        raise argparse.ArgumentTypeError(f"give 1..{CONCURRENCY_LEVELS_MAX} concurrency levels")
    return values


def _rounds(text: str) -> int:
    try:
        value = int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from err
    if not 1 <= value <= ROUNDS_MAX:
        raise argparse.ArgumentTypeError(f"give 1..{ROUNDS_MAX} rounds")
    return value


def _system_list(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [n for n in names if n not in SYSTEMS]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"systems must be among {','.join(SYSTEMS)}")
    return names


def parse_args(argv: Sequence[str] | None = None) -> BenchSettings:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per C")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds first")
    parser.add_argument(
        "--rounds", type=_rounds, default=DEFAULT_ROUNDS, help="rounds of every system"
    )
    parser.add_argument(
        "--concurrency", type=_int_list, default=DEFAULT_CONCURRENCY, help="e.g. 1,16,64"
    )
    parser.add_argument(
        "--systems", type=_system_list, default=SYSTEMS, help="triumvir,triumvir-paxos,etcd"
    )
    parser.add_argument(
        "--engine", choices=ENGINES, default="raft", help="engine of the triumvir column"
    )
    parser.add_argument("--output", type=Path, default=RESULTS_PATH, help="results JSON path")
    parser.add_argument(
        "--spread-cpus",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="keep each triumvir replica on one CPU, in turn, as `triumvir up` does",
    )
    args = parser.parse_args(argv)
    settings = BenchSettings(
        duration_s=args.duration,
        warmup_s=args.warmup,
        concurrency=args.concurrency,
        systems=args.systems,
        engine=args.engine,
        output=args.output,
        rounds=args.rounds,
        spread_cpus=args.spread_cpus,
    )
    try:
        settings.specs()
    except ValueError as err:
        parser.error(str(err))
    return settings


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def round_order(systems: Sequence[str], round_number: int) -> tuple[str, ...]:
    """Odd rounds (1-based) take the systems as given, even rounds in reverse."""
    return tuple(systems) if round_number % 2 == 1 else tuple(reversed(systems))


def schedule(
    systems: Sequence[str], rounds: int, levels: Sequence[int]
) -> Iterator[tuple[int, int, str]]:
    """(round, concurrency, system) in the order they run."""
    for round_number in range(1, rounds + 1):
        for level in levels:
            for name in round_order(systems, round_number):
                yield round_number, level, name


async def _measure(
    label: str,
    cluster: Cluster,
    find_leader: LeaderFinder,
    open_target: TargetOpener,
    spec: LoadSpec,
    sink: list[Measurement],
) -> None:
    """Runs `spec` against the leader; the result lands in `sink` once it completes."""
    leader = await find_leader()
    _progress(f"{label}: leader at {leader}")
    target = open_target(leader)
    try:
        result = await run_load(target, spec)
        sink.append(Measurement(result, cluster.peak_mib_per_replica()))
        _progress(
            f"{label}: {result.throughput_ops_s:,.0f} ops/s, "
            f"p50 {result.latency_ms_p50:.2f} ms, p99 {result.latency_ms_p99:.2f} ms, "
            f"{result.errors} errors"
        )
    finally:
        await target.close()


def _triumvir_plan(engine: str, spread_cpus: bool) -> tuple[Cluster, LeaderFinder, TargetOpener]:
    cluster = TriumvirCluster(engine, spread_cpus=spread_cpus)

    async def find_leader() -> str:
        return await find_triumvir_leader(cluster.endpoints, cluster.addresses)

    return cluster, find_leader, TriumvirTarget


def _etcd_plan() -> tuple[Cluster, LeaderFinder, TargetOpener]:
    cluster = EtcdCluster()

    async def find_leader() -> str:
        return await find_etcd_leader(cluster.endpoints)

    return cluster, find_leader, EtcdTarget


def bench_system(
    name: str, settings: BenchSettings, round_number: int, spec: LoadSpec
) -> SystemReport:
    """One fresh cluster for `name`, measured at one concurrency in one round."""
    label = f"round {round_number}/{settings.rounds} C={spec.concurrency}: {name}"
    measurements: list[Measurement] = []
    if name == "triumvir":
        cluster, find_leader, open_target = _triumvir_plan(settings.engine, settings.spread_cpus)
    elif name == PAXOS_SYSTEM:
        cluster, find_leader, open_target = _triumvir_plan("paxos", settings.spread_cpus)
    else:
        cluster, find_leader, open_target = _etcd_plan()
    _progress(f"{label}: starting a 3-member cluster")
    try:
        cluster.start()
        try:
            asyncio.run(_measure(label, cluster, find_leader, open_target, spec, measurements))
        finally:
            cluster.stop()
    except SYSTEM_FAILURES as err:
        _progress(f"{label}: NOT MEASURED\n{err}")
        failure = str(err) or type(err).__name__
        return SystemReport(name, tuple(measurements), failure, round_number)
    return SystemReport(name, tuple(measurements), round=round_number)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(argv)
    specs = {spec.concurrency: spec for spec in settings.specs()}
    reports = [
        bench_system(name, settings, round_number, specs[level])
        for round_number, level, name in schedule(
            settings.systems, settings.rounds, settings.concurrency
        )
    ]
    print(format_report(reports), end="", flush=True)
    path = write_json(settings.output, reports, settings.as_json())
    print(f"\nresults written to {path}")
    return 1 if any(r.failure for r in reports) else 0


if __name__ == "__main__":
    sys.exit(main())
