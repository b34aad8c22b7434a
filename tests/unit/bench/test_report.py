import json
import math

from bench.loadgen import LoadResult
from bench.report import (
    Measurement,
    SystemReport,
    align,
    compute_ratios,
    format_report,
    format_table,
    safe_ratio,
    write_json,
)


def result(system: str, c: int, ops: float, p50: float, p99: float, errors: int = 0):
    return LoadResult(system, c, 10.0, int(ops * 10), errors, ops, p50, p99)


def measured(system: str, rows: list[tuple[int, float, float, float]]) -> SystemReport:
    return SystemReport(
        system,
        tuple(
            Measurement(result(system, c, ops, p50, p99), (40.0, 52.5, 47.0))
            for c, ops, p50, p99 in rows
        ),
    )


ETCD = measured("etcd", [(1, 1070.0, 0.90, 1.5), (16, 4852.0, 3.1, 9.0), (64, 7596.0, 7.9, 20.3)])
TRIUMVIR = measured("triumvir", [(1, 535.0, 1.8, 3.0), (16, 4852.0, 1.55, 5.0)])


def test_ratio_is_triumvir_over_etcd_at_each_concurrency():
    ratios = {r.concurrency: r for r in compute_ratios([ETCD, TRIUMVIR])}
    assert ratios[1].throughput == 0.5
    assert ratios[1].latency_p50 == 2.0
    assert ratios[16].throughput == 1.0
    assert ratios[16].latency_p50 == 0.5
    # etcd was run at C=64 but triumvir was not: no ratio to show.
    assert ratios[64].throughput is None
    assert ratios[64].latency_p50 is None


def test_ratio_does_not_depend_on_report_order():
    assert compute_ratios([ETCD, TRIUMVIR]) == compute_ratios([TRIUMVIR, ETCD])


def test_safe_ratio_refuses_zero_and_nan_denominators():
    assert safe_ratio(1.0, 0.0) is None
    assert safe_ratio(1.0, math.nan) is None
    assert safe_ratio(math.nan, 2.0) is None
    assert safe_ratio(0.0, 2.0) == 0.0


def test_peak_is_the_largest_replica():
    assert ETCD.measurements[0].peak_mib_max == 52.5


def test_align_pads_columns_so_every_line_has_the_same_width():
    lines = align(["name", "n"], [["a", "1"], ["longer", "12345"]])
    assert len({len(line) for line in lines}) == 1
    assert lines[0] == "name        n"
    assert lines[2] == "a           1"
    assert lines[3] == "longer  12345"


def test_table_has_a_row_per_system_and_concurrency():
    lines = format_table([TRIUMVIR, ETCD]).splitlines()
    assert lines[0].split()[:3] == ["system", "C", "ops/s"]
    body = lines[2:]
    assert len(body) == 5
    assert body[0].split() == ["triumvir", "1", "535", "1.80", "3.00", "0", "52.5"]
    assert body[-1].split() == ["etcd", "64", "7,596", "7.90", "20.30", "0", "52.5"]
    # Right-aligned numbers end in the same column on every row.
    assert len({len(line) for line in lines}) == 1


def test_missing_latency_prints_as_a_dash():
    empty = SystemReport(
        "triumvir", (Measurement(result("triumvir", 1, 0.0, math.nan, math.nan), ()),)
    )
    row = format_table([empty]).splitlines()[2].split()
    assert row == ["triumvir", "1", "0", "-", "-", "0", "-"]


def test_report_shows_failures_and_ratios():
    failed = SystemReport("triumvir", failure="server cannot be started\nTraceback ...")
    text = format_report([failed, ETCD])
    assert "triumvir: NOT MEASURED - server cannot be started" in text
    assert "Traceback" not in text
    assert "triumvir / etcd" in text
    ratio_lines = text.split("triumvir / etcd\n", 1)[1].splitlines()
    assert ratio_lines[2].split() == ["1", "-", "-"]

    text = format_report([TRIUMVIR, ETCD])
    ratio_lines = text.split("triumvir / etcd\n", 1)[1].splitlines()
    assert ratio_lines[2].split() == ["1", "0.50x", "2.00x"]
    assert ratio_lines[3].split() == ["16", "1.00x", "0.50x"]


def test_json_round_trips_with_nan_as_null(tmp_path):
    empty = SystemReport(
        "triumvir",
        (Measurement(result("triumvir", 1, 0.0, math.nan, math.nan, errors=3), (41.0,)),),
        failure="leader lost",
    )
    path = write_json(tmp_path / "out" / "results.json", [empty, ETCD], {"duration_s": 10.0})
    doc = json.loads(path.read_text())
    assert doc["settings"] == {"duration_s": 10.0}
    systems = {s["system"]: s for s in doc["systems"]}
    assert systems["triumvir"]["failure"] == "leader lost"
    assert systems["triumvir"]["runs"][0]["latency_ms_p50"] is None
    assert systems["triumvir"]["runs"][0]["errors"] == 3
    assert systems["etcd"]["runs"][2]["throughput_ops_s"] == 7596.0
    assert systems["etcd"]["runs"][0]["peak_mib_per_replica"] == [40.0, 52.5, 47.0]
    assert [section["numerator"] for section in doc["ratios"]] == ["triumvir"]
    ratios = doc["ratios"][0]["by_concurrency"]
    assert ratios[0] == {"concurrency": 1, "throughput": 0.0, "latency_p50": None}


def test_every_triumvir_engine_gets_its_own_ratio_section():
    paxos = measured("triumvir-paxos", [(1, 214.0, 3.6, 6.0)])
    text = format_report([TRIUMVIR, paxos, ETCD])
    assert "triumvir / etcd" in text and "triumvir-paxos / etcd" in text
    section = text.split("triumvir-paxos / etcd")[1]
    assert "0.20x" in section  # 214 / 1070 ops/s at C=1
