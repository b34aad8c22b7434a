"""The benchmark's output: an aligned plain-text table, the triumvir/etcd ratios, and JSON."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
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
    system: str
    measurements: tuple[Measurement, ...] = ()
    # Why the system was not (fully) measured; empty when every run completed.
    failure: str = ""


@dataclass(frozen=True, slots=True)
class Ratio:
    """NUMERATOR / DENOMINATOR at one concurrency; None when either side is missing."""

    concurrency: int
    throughput: float | None
    latency_p50: float | None


def safe_ratio(numerator: float, denominator: float) -> float | None:
    if not (math.isfinite(numerator) and math.isfinite(denominator)) or denominator <= 0:
        return None
    return numerator / denominator


def _by_concurrency(report: SystemReport | None) -> dict[int, LoadResult]:
    if report is None:
        return {}
    return {m.result.concurrency: m.result for m in report.measurements}


def compute_ratios(
    reports: Sequence[SystemReport],
    numerator: str = NUMERATOR,
    denominator: str = DENOMINATOR,
) -> tuple[Ratio, ...]:
    """Throughput and p50 ratios at every concurrency either system was run at."""
    named = {r.system: r for r in reports}
    top = _by_concurrency(named.get(numerator))
    bottom = _by_concurrency(named.get(denominator))
    ratios = []
    for c in sorted(top.keys() | bottom.keys()):
        a, b = top.get(c), bottom.get(c)
        if a is None or b is None:
            ratios.append(Ratio(c, None, None))
            continue
        ratios.append(
            Ratio(
                c,
                safe_ratio(a.throughput_ops_s, b.throughput_ops_s),
                safe_ratio(a.latency_ms_p50, b.latency_ms_p50),
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
    header = ["system", "C", "ops/s", "p50 ms", "p99 ms", "errors", "peak MiB/replica"]
    rows = [
        [
            report.system,
            str(m.result.concurrency),
            _number(m.result.throughput_ops_s, ",.0f"),
            _number(m.result.latency_ms_p50, ".2f"),
            _number(m.result.latency_ms_p99, ".2f"),
            str(m.result.errors),
            _number(m.peak_mib_max, ".1f"),
        ]
        for report in reports
        for m in report.measurements
    ]
    return "\n".join(align(header, rows))


def format_ratios(ratios: Sequence[Ratio]) -> str:
    if not ratios:
        return "(no concurrency level was measured)"
    header = ["C", "throughput", "p50"]
    rows = [[str(r.concurrency), _times(r.throughput), _times(r.latency_p50)] for r in ratios]
    return "\n".join(align(header, rows))


def format_report(reports: Sequence[SystemReport]) -> str:
    """The whole printout: results table, failures, then the ratio section."""
    parts = [format_table(reports)]
    failures = [
        f"{r.system}: NOT MEASURED - {r.failure.strip().splitlines()[0]}"
        for r in reports
        if r.failure.strip()
    ]
    if failures:
        parts.append("\n".join(failures))
    for numerator in _numerators(reports):
        ratios = compute_ratios(reports, numerator)
        parts.append(f"{numerator} / {DENOMINATOR}\n" + format_ratios(ratios))
    return "\n\n".join(parts) + "\n"


def _numerators(reports: Sequence[SystemReport]) -> list[str]:
    """Every system raced against the denominator; the default one even if it failed."""
    names = [r.system for r in reports if r.system != DENOMINATOR]
    return names or [NUMERATOR]


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def to_json(reports: Sequence[SystemReport], settings: dict[str, Any]) -> dict[str, Any]:
    """A JSON-safe document: NaN becomes null so any JSON reader accepts it."""
    systems = []
    for report in reports:
        runs = []
        for m in report.measurements:
            r = m.result
            runs.append(
                {
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
            )
        systems.append({"system": report.system, "failure": report.failure, "runs": runs})
    sections = [
        {
            "numerator": numerator,
            "denominator": DENOMINATOR,
            "by_concurrency": [
                {
                    "concurrency": r.concurrency,
                    "throughput": r.throughput,
                    "latency_p50": r.latency_p50,
                }
                for r in compute_ratios(reports, numerator)
            ],
        }
        for numerator in _numerators(reports)
    ]
    return {"settings": settings, "systems": systems, "ratios": sections}


def write_json(path: Path, reports: Sequence[SystemReport], settings: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    document = to_json(reports, settings)
    path.write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path
