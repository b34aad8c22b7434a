"""The benchmark's output: medians over rounds, the triumvir/etcd ratios, text and JSON.

Each round measures every system once at every concurrency, the systems of one level right
after one another, so a ratio is first taken within a round (both figures measured seconds
apart) and only then summarised by its median: the machine's speed drifts between rounds,
and a ratio of medians would mix rounds.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.loadgen import LoadResult

NUMERATOR = "triumvir"
DENOMINATOR = "etcd"
MISSING = "-"
COLUMN_GAP = "  "


@dataclass(frozen=True, slots=True)
class Measurement:
    """One system at one concurrency, with each replica's memory peak so far."""

    result: LoadResult
    peak_mib_per_replica: tuple[float, ...]

    @property
    def peak_mib_max(self) -> float:
        return max(self.peak_mib_per_replica, default=math.nan)


@dataclass(frozen=True, slots=True)
class SystemReport:
    """One system's fresh cluster in one round (1-based)."""

    system: str
    measurements: tuple[Measurement, ...] = ()
    # Why the system was not (fully) measured; empty when every run completed.
    failure: str = ""
    round: int = 1


@dataclass(frozen=True, slots=True)
class Summary:
    """One table row: a system at one concurrency, summarised over the rounds that ran it."""

    system: str
    concurrency: int
    rounds: int
    throughput_ops_s: float
    latency_ms_p50: float
    latency_ms_p99: float
    errors: int
    peak_mib_max: float


@dataclass(frozen=True, slots=True)
class RoundRatio:
    """NUMERATOR / DENOMINATOR within one round; None when a denominator is zero or NaN."""

    round: int
    throughput: float | None
    latency_p50: float | None


@dataclass(frozen=True, slots=True)
class Ratio:
    """Median of the per-round ratios at one concurrency; None when no round had both."""

    concurrency: int
    throughput: float | None
    latency_p50: float | None
    per_round: tuple[RoundRatio, ...] = ()


def safe_ratio(numerator: float, denominator: float) -> float | None:
    if not (math.isfinite(numerator) and math.isfinite(denominator)) or denominator <= 0:
        return None
    return numerator / denominator


def median(values: Iterable[float | None]) -> float:
    """Median of the finite values; NaN when there are none (e.g. no run had a success)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return statistics.median(finite) if finite else math.nan


def _median_or_none(values: Iterable[float | None]) -> float | None:
    value = median(values)
    return value if math.isfinite(value) else None


def summarize_rounds(reports: Sequence[SystemReport]) -> tuple[Summary, ...]:
    """One row per (system, C): medians, total errors, max peak. Rows come system by system
    in the order the systems were first measured, each system's levels in the order run."""
    groups: dict[tuple[str, int], list[Measurement]] = {}
    for report in reports:
        for m in report.measurements:
            groups.setdefault((report.system, m.result.concurrency), []).append(m)
    systems = list(dict.fromkeys(system for system, _ in groups))
    by_system = sorted(groups.items(), key=lambda group: systems.index(group[0][0]))
    return tuple(
        Summary(
            system=system,
            concurrency=c,
            rounds=len(ms),
            throughput_ops_s=median(m.result.throughput_ops_s for m in ms),
            latency_ms_p50=median(m.result.latency_ms_p50 for m in ms),
            latency_ms_p99=median(m.result.latency_ms_p99 for m in ms),
            errors=sum(m.result.errors for m in ms),
            peak_mib_max=max((m.peak_mib_max for m in ms), default=math.nan),
        )
        for (system, c), ms in by_system
    )


def _by_round(reports: Sequence[SystemReport], system: str) -> dict[int, dict[int, LoadResult]]:
    """round -> concurrency -> result, for one system."""
    rounds: dict[int, dict[int, LoadResult]] = {}
    for report in reports:
        if report.system == system:
            by_c = rounds.setdefault(report.round, {})
            by_c.update((m.result.concurrency, m.result) for m in report.measurements)
    return rounds


def compute_ratios(
    reports: Sequence[SystemReport],
    numerator: str = NUMERATOR,
    denominator: str = DENOMINATOR,
) -> tuple[Ratio, ...]:
    """Per-round ratios at every concurrency either system ran, and their medians.

    A round where either system lacks that concurrency contributes nothing to it.
    """
    top = _by_round(reports, numerator)
    bottom = _by_round(reports, denominator)
    levels = {c for by_c in (*top.values(), *bottom.values()) for c in by_c}
    ratios = []
    for c in sorted(levels):
        per_round = []
        for round_number in sorted(top.keys() & bottom.keys()):
            a, b = top[round_number].get(c), bottom[round_number].get(c)
            if a is None or b is None:
                continue
            per_round.append(
                RoundRatio(
                    round_number,
                    safe_ratio(a.throughput_ops_s, b.throughput_ops_s),
                    safe_ratio(a.latency_ms_p50, b.latency_ms_p50),
                )
            )
        ratios.append(
            Ratio(
                c,
                _median_or_none(r.throughput for r in per_round),
                _median_or_none(r.latency_p50 for r in per_round),
                tuple(per_round),
            )
        )
    return tuple(ratios)


def align(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Columns padded to their widest cell: the first left-aligned, the rest right-aligned."""
    widths = [len(h) for h in header]
    for row in rows:
        assert len(row) == len(header)
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return COLUMN_GAP.join(padded).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _number(value: float | None, spec: str) -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    return format(value, spec)


def _times(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}x"


def format_table(reports: Sequence[SystemReport]) -> str:
    header = ["system", "C", "rounds", "ops/s", "p50 ms", "p99 ms", "errors", "peak MiB/replica"]
    rows = [
        [
            s.system,
            str(s.concurrency),
            str(s.rounds),
            _number(s.throughput_ops_s, ",.0f"),
            _number(s.latency_ms_p50, ".2f"),
            _number(s.latency_ms_p99, ".2f"),
            str(s.errors),
            _number(s.peak_mib_max, ".1f"),
        ]
        for s in summarize_rounds(reports)
    ]
    return "\n".join(align(header, rows))


def format_ratios(ratios: Sequence[Ratio]) -> str:
    """The median table, then the per-round throughput ratios at the highest C as the spread."""
    if not ratios:
        return "(no concurrency level was measured)"
    header = ["C", "throughput", "p50"]
    rows = [[str(r.concurrency), _times(r.throughput), _times(r.latency_p50)] for r in ratios]
    top = ratios[-1]
    spread = " ".join(_times(r.throughput) for r in top.per_round) or MISSING
    return "\n".join([*align(header, rows), f"per round at C={top.concurrency}: {spread}"])


def _failure_lines(reports: Sequence[SystemReport]) -> list[str]:
    return [
        f"{r.system}: NOT MEASURED in round {r.round} - {r.failure.strip().splitlines()[0]}"
        for r in reports
        if r.failure.strip()
    ]


def format_report(reports: Sequence[SystemReport]) -> str:
    """The whole printout: results table, failures, then one ratio section per engine."""
    parts = [format_table(reports)]
    failures = _failure_lines(reports)
    if failures:
        parts.append("\n".join(failures))
    for numerator in _numerators(reports):
        title = f"{numerator} / {DENOMINATOR} (median of per-round ratios)"
        parts.append(title + "\n" + format_ratios(compute_ratios(reports, numerator)))
    return "\n\n".join(parts) + "\n"


def _numerators(reports: Sequence[SystemReport]) -> list[str]:
    """Every system raced against the denominator; the default one even if it failed."""
    names = list(dict.fromkeys(r.system for r in reports if r.system != DENOMINATOR))
    return names or [NUMERATOR]


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _run_json(m: Measurement, round_number: int) -> dict[str, Any]:
    r = m.result
    return {
        "round": round_number,
        "concurrency": r.concurrency,
        "duration_s": r.duration_s,
        "ok": r.ok,
        "errors": r.errors,
        "error_codes": dict(r.error_codes),
        "throughput_ops_s": r.throughput_ops_s,
        "latency_ms_p50": _finite_or_none(r.latency_ms_p50),
        "latency_ms_p99": _finite_or_none(r.latency_ms_p99),
        "peak_mib_per_replica": list(m.peak_mib_per_replica),
        "peak_mib_max": _finite_or_none(m.peak_mib_max),
    }


def _ratio_json(ratio: Ratio) -> dict[str, Any]:
    return {
        "concurrency": ratio.concurrency,
        "throughput": ratio.throughput,
        "latency_p50": ratio.latency_p50,
        "per_round": [
            {"round": r.round, "throughput": r.throughput, "latency_p50": r.latency_p50}
            for r in ratio.per_round
        ],
    }


def to_json(reports: Sequence[SystemReport], settings: dict[str, Any]) -> dict[str, Any]:
    """A JSON-safe document: NaN becomes null so any JSON reader accepts it.

    One entry per system holding every round's runs; its failure names each failed round.
    """
    systems: dict[str, dict[str, Any]] = {}
    failures: dict[str, list[str]] = {}
    for report in reports:
        entry = systems.setdefault(
            report.system, {"system": report.system, "failure": "", "runs": []}
        )
        entry["runs"].extend(_run_json(m, report.round) for m in report.measurements)
        if report.failure:
            failures.setdefault(report.system, []).append(f"round {report.round}: {report.failure}")
    for name, lines in failures.items():
        systems[name]["failure"] = "\n".join(lines)
    sections = [
        {
            "numerator": numerator,
            "denominator": DENOMINATOR,
            "by_concurrency": [_ratio_json(r) for r in compute_ratios(reports, numerator)],
        }
        for numerator in _numerators(reports)
    ]
    return {"settings": settings, "systems": list(systems.values()), "ratios": sections}


def write_json(path: Path, reports: Sequence[SystemReport], settings: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = to_json(reports, settings)
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path
