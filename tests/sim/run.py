"""Command line for the deterministic simulator.

    python -m tests.sim.run --seeds 5000 [--start S] [--engine raft] [--jobs J]
    python -m tests.sim.run --seed 1234 [--engine raft] [--trace-file F] [--history-file F]

Many seeds: runs them in J worker processes, prints one summary line, then every failing
seed with its violations and the one-line command that replays it; exits 1 on any failure.
One seed: replays it verbosely (scenario, statistics, trace hash, violations).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from tests.sim.engine import ENGINES
from tests.sim.simulation import SimResult, run_seed
from tests.sim.trace import Trace

SEEDS_PER_TASK = 8  # seeds handed to a worker at once: amortizes inter-process overhead
MAX_VIOLATION_LINES = 12  # per failing seed in the summary


def replay_command(seed: int, engine: str) -> str:
    return (
        f"make sim SEED={seed} ENGINE={engine}   "
        f"(or: .venv/bin/python -m tests.sim.run --seed {seed} --engine {engine})"
    )


def _run_batch(seeds: Sequence[int], engine: str) -> list[SimResult]:
    return [run_seed(seed, engine) for seed in seeds]


def _batches(start: int, count: int) -> Iterator[list[int]]:
    for first in range(start, start + count, SEEDS_PER_TASK):
        yield list(range(first, min(first + SEEDS_PER_TASK, start + count)))


def run_many(start: int, count: int, engine: str, jobs: int) -> list[SimResult]:
    batches = list(_batches(start, count))
    if jobs <= 1:
        return [result for batch in batches for result in _run_batch(batch, engine)]
    results: list[SimResult] = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for done in pool.map(_run_batch, batches, [engine] * len(batches)):
            results.extend(done)
    return results


def _print_failure(result: SimResult) -> None:
    print(f"FAIL seed={result.seed} engine={result.engine} members={result.members}")
    for line in result.violations[:MAX_VIOLATION_LINES]:
        print(f"  {line}")
    if len(result.violations) > MAX_VIOLATION_LINES:
        print(f"  ... {len(result.violations) - MAX_VIOLATION_LINES} more")
    print(f"  replay: {replay_command(result.seed, result.engine)}")


def _replay(seed: int, engine: str, trace_file: str | None, history_file: str | None) -> int:
    trace = Trace(keep=trace_file is not None)
    kept: dict[str, Any] = {}
    started = time.perf_counter()
    result = run_seed(seed, engine, trace=trace, keep=kept)
    elapsed = time.perf_counter() - started
    print(f"sim engine={engine} seed={seed} members={result.members} ok={result.ok}")
    print(f"scenario: {result.scenario}")
    print(f"ticks={result.ticks} ops={result.ops} events={trace.events} elapsed={elapsed:.2f}s")
    print("stats: " + " ".join(f"{name}={value}" for name, value in result.stats))
    print(f"trace_hash={result.trace_hash}")
    if trace_file is not None:
        with open(trace_file, "w", encoding="utf-8") as out:
            out.write("\n".join(trace.lines()) + "\n")
        print(f"trace written to {trace_file}")
    if history_file is not None:
        with open(history_file, "w", encoding="utf-8") as out:
            out.write(kept["history"].to_jsonl())
        print(f"history written to {history_file}")
    if result.ok:
        print("violations: none")
        return 0
    print("violations:")
    for line in result.violations:
        print(f"  {line}")
    print(f"replay: {replay_command(seed, engine)}")
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim.run", description=__doc__)
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument("--engine", default="raft", choices=sorted(ENGINES))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed", type=int, default=None, help="replay one seed verbosely")
    parser.add_argument("--trace-file", default=None, help="with --seed: write the trace")
    parser.add_argument("--history-file", default=None, help="with --seed: write the history")
    args = parser.parse_args(argv)
    if args.seed is not None:
        return _replay(args.seed, args.engine, args.trace_file, args.history_file)
    if args.seeds <= 0:
        parser.error("--seeds must be positive")
    started = time.perf_counter()
    results = run_many(args.start, args.seeds, args.engine, max(1, args.jobs))
    elapsed = time.perf_counter() - started
    failures = [result for result in results if not result.ok]
    sizes = ",".join(str(size) for size in sorted({result.members for result in results}))
    ops = sum(result.ops for result in results)
    print(
        f"sim engine={args.engine} seeds={len(results)} members={sizes} "
        f"failures={len(failures)} ops={ops} elapsed={elapsed:.1f}s"
    )
    for result in failures:
        _print_failure(result)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
