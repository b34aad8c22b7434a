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
    median,
    safe_ratio,
    summarize_rounds,
    write_json,
)


def result(system: str, c: int, ops: float, p50: float, p99: float, errors: int = 0):
    return LoadResult(system, c, 10.0, int(ops * 10), errors, ops, p50, p99)


def measured(
    system: str, rows: list[tuple[int, float, float, float]], round_number: int = 1
) -> SystemReport:
    return SystemReport(
        system,
        tuple(
            Measurement(result(system, c, ops, p50, p99), (40.0, 52.5, 47.0))
            for c, ops, p50, p99 in rows
        ),
        round=round_number,
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
    assert lines[0].split()[:4] == ["system", "C", "rounds", "ops/s"]
    body = lines[2:]
    assert len(body) == 5
    assert body[0].split() == ["triumvir", "1", "1", "535", "1.80", "3.00", "0", "52.5"]
    assert body[-1].split() == ["etcd", "64", "1", "7,596", "7.90", "20.30", "0", "52.5"]
    # Right-aligned numbers end in the same column on every row.
    assert len({len(line) for line in lines}) == 1


def test_missing_latency_prints_as_a_dash():
    empty = SystemReport(
        "triumvir", (Measurement(result("triumvir", 1, 0.0, math.nan, math.nan), ()),)
    )
    row = format_table([empty]).splitlines()[2].split()
    assert row == ["triumvir", "1", "1", "0", "-", "-", "0", "-"]


RATIO_TITLE = "triumvir / etcd (median of per-round ratios)\n"


def test_report_shows_failures_and_ratios():
    failed = SystemReport("triumvir", failure="server cannot be started\nTraceback ...", round=2)
    text = format_report([failed, ETCD])
    assert "triumvir: NOT MEASURED in round 2 - server cannot be started" in text
    assert "Traceback" not in text
    ratio_lines = text.split(RATIO_TITLE, 1)[1].splitlines()
    assert ratio_lines[2].split() == ["1", "-", "-"]
    assert ratio_lines[-1] == "per round at C=64: -"

    text = format_report([TRIUMVIR, ETCD])
    ratio_lines = text.split(RATIO_TITLE, 1)[1].splitlines()
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
    assert systems["triumvir"]["failure"] == "round 1: leader lost"
    assert systems["triumvir"]["runs"][0]["latency_ms_p50"] is None
    assert systems["triumvir"]["runs"][0]["round"] == 1
    assert systems["triumvir"]["runs"][0]["errors"] == 3
    assert systems["etcd"]["runs"][2]["throughput_ops_s"] == 7596.0
    assert systems["etcd"]["runs"][0]["peak_mib_per_replica"] == [40.0, 52.5, 47.0]
    assert [section["numerator"] for section in doc["ratios"]] == ["triumvir"]
    ratios = doc["ratios"][0]["by_concurrency"]
    assert ratios[0] == {
        "concurrency": 1,
        "throughput": 0.0,
        "latency_p50": None,
        "per_round": [{"round": 1, "throughput": 0.0, "latency_p50": None}],
    }


def test_every_triumvir_engine_gets_its_own_ratio_section():
    paxos = measured("triumvir-paxos", [(1, 214.0, 3.6, 6.0)])
    text = format_report([TRIUMVIR, paxos, ETCD])
    assert "triumvir / etcd" in text and "triumvir-paxos / etcd" in text
    section = text.split("triumvir-paxos / etcd")[1]
    assert "0.20x" in section  # 214 / 1070 ops/s at C=1


def one_level(system: str, c: int, rounds: list[tuple[float, float, float]]) -> list[SystemReport]:
    """`system` at concurrency `c` once per round: (ops/s, p50, p99) for rounds 1, 2, ..."""
    return [measured(system, [(c, *row)], n) for n, row in enumerate(rounds, start=1)]


def test_median_of_odd_and_even_counts_skips_nan_and_none():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([5.0, math.nan, None, 1.0]) == 3.0
    assert math.isnan(median([]))
    assert math.isnan(median([math.nan]))


def test_table_row_is_the_median_over_an_odd_number_of_rounds():
    reports = one_level("etcd", 16, [(100.0, 2.0, 9.0), (300.0, 1.0, 4.0), (200.0, 3.0, 5.0)])
    reports[1] = SystemReport(
        "etcd",
        (Measurement(result("etcd", 16, 300.0, 1.0, 4.0, errors=2), (40.0, 80.5)),),
        round=2,
    )
    (row,) = summarize_rounds(reports)
    assert (row.system, row.concurrency, row.rounds) == ("etcd", 16, 3)
    assert row.throughput_ops_s == 200.0
    assert row.latency_ms_p50 == 2.0
    assert row.latency_ms_p99 == 5.0
    assert row.errors == 2
    # Memory is a peak: the largest replica of any round, not a median.
    assert row.peak_mib_max == 80.5


def test_table_row_is_the_median_over_an_even_number_of_rounds():
    reports = one_level("triumvir", 1, [(100.0, 2.0, 9.0), (400.0, 1.0, 3.0)])
    (row,) = summarize_rounds(reports)
    assert row.rounds == 2
    assert row.throughput_ops_s == 250.0
    assert row.latency_ms_p50 == 1.5
    assert row.latency_ms_p99 == 6.0
    body = format_table(reports).splitlines()[2]
    assert body.split() == ["triumvir", "1", "2", "250", "1.50", "6.00", "0", "52.5"]


def test_rounds_column_counts_only_rounds_that_measured_the_level():
    reports = [
        measured("etcd", [(1, 10.0, 1.0, 1.0), (64, 30.0, 1.0, 1.0)], 1),
        # Round 2's cluster died after C=1.
        SystemReport("etcd", measured("etcd", [(1, 20.0, 1.0, 1.0)]).measurements, "down", 2),
    ]
    rows = {r.concurrency: r for r in summarize_rounds(reports)}
    assert (rows[1].rounds, rows[1].throughput_ops_s) == (2, 15.0)
    assert (rows[64].rounds, rows[64].throughput_ops_s) == (1, 30.0)


def test_rows_come_system_by_system_when_levels_were_measured_in_turn():
    reports = [
        measured("triumvir", [(1, 10.0, 1.0, 1.0)]),
        measured("etcd", [(1, 20.0, 1.0, 1.0)]),
        measured("triumvir", [(64, 30.0, 1.0, 1.0)]),
        measured("etcd", [(64, 40.0, 1.0, 1.0)]),
    ]
    rows = [(r.system, r.concurrency) for r in summarize_rounds(reports)]
    assert rows == [("triumvir", 1), ("triumvir", 64), ("etcd", 1), ("etcd", 64)]
    ratios = [(r.concurrency, r.throughput) for r in compute_ratios(reports)]
    assert ratios == [(1, 0.5), (64, 0.75)]


def test_ratio_is_the_median_of_per_round_ratios_not_the_ratio_of_medians():
    triumvir = one_level("triumvir", 64, [(100.0, 4.0, 1.0), (300.0, 1.0, 1.0), (200.0, 6.0, 1.0)])
    etcd = one_level("etcd", 64, [(100.0, 2.0, 1.0), (100.0, 4.0, 1.0), (400.0, 3.0, 1.0)])
    (ratio,) = compute_ratios([*triumvir, *etcd])
    assert [(r.round, r.throughput, r.latency_p50) for r in ratio.per_round] == [
        (1, 1.0, 2.0),
        (2, 3.0, 0.25),
        (3, 0.5, 2.0),
    ]
    assert ratio.throughput == 1.0
    assert ratio.latency_p50 == 2.0
    # The medians alone (200 / 100 ops/s, 4 / 3 ms) would have said 2.00x and 1.33x.
    medians = {r.system: r for r in summarize_rounds([*triumvir, *etcd])}
    assert medians["triumvir"].throughput_ops_s / medians["etcd"].throughput_ops_s == 2.0
    text = format_report([*triumvir, *etcd])
    assert "per round at C=64: 1.00x 3.00x 0.50x" in text


def test_rounds_missing_on_either_side_are_skipped():
    triumvir = one_level("triumvir", 16, [(100.0, 1.0, 1.0), (900.0, 1.0, 1.0), (300.0, 1.0, 1.0)])
    etcd = one_level("etcd", 16, [(100.0, 1.0, 1.0), (100.0, 1.0, 1.0), (100.0, 1.0, 1.0)])
    # etcd could not start in round 2; triumvir measured nothing at C=16 in round 3.
    etcd[1] = SystemReport("etcd", failure="no leader", round=2)
    triumvir[2] = measured("triumvir", [(1, 50.0, 1.0, 1.0)], 3)
    by_c = {r.concurrency: r for r in compute_ratios([*triumvir, *etcd])}
    assert [r.round for r in by_c[16].per_round] == [1]
    assert by_c[16].throughput == 1.0
    # C=1 was only run by triumvir: shown, with no ratio.
    assert by_c[1].per_round == ()
    assert by_c[1].throughput is None


def test_json_lists_every_round_with_per_round_ratios(tmp_path):
    triumvir = one_level("triumvir", 1, [(50.0, 2.0, 3.0), (60.0, 2.0, 3.0)])
    etcd = one_level("etcd", 1, [(100.0, 1.0, 2.0), (100.0, 4.0, 2.0)])
    etcd[1] = SystemReport("etcd", etcd[1].measurements, "lost a member", 2)
    doc = json.loads(write_json(tmp_path / "r.json", [*triumvir, *etcd], {"rounds": 2}).read_text())
    assert doc["settings"] == {"rounds": 2}
    systems = {s["system"]: s for s in doc["systems"]}
    assert len(doc["systems"]) == 2
    assert [run["round"] for run in systems["etcd"]["runs"]] == [1, 2]
    assert [run["throughput_ops_s"] for run in systems["triumvir"]["runs"]] == [50.0, 60.0]
    assert systems["etcd"]["failure"] == "round 2: lost a member"
    assert systems["triumvir"]["failure"] == ""
    (entry,) = doc["ratios"][0]["by_concurrency"]
    assert entry["per_round"] == [
        {"round": 1, "throughput": 0.5, "latency_p50": 2.0},
        {"round": 2, "throughput": 0.6, "latency_p50": 0.5},
    ]
    assert entry["throughput"] == 0.55
    assert entry["latency_p50"] == 1.25
