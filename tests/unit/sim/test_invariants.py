"""The cluster invariant checkers, fed fabricated observations: each must flag a violation
and stay quiet on the legal counterpart."""

from __future__ import annotations

from tests.checkers.invariants import (
    MAX_VIOLATIONS_PER_CHECK,
    AckedWrite,
    LogRecord,
    SafetyMonitor,
    check_acknowledged_writes,
    check_convergence,
    check_durable_promises,
    check_leader_completeness,
    check_liveness,
    check_log_matching,
)


def _log(*terms: int, start: int = 1, tag: bytes = b"") -> list[LogRecord]:
    return [
        LogRecord(index, term, b"%d/%d" % (index, term) + tag)
        for index, term in enumerate(terms, start=start)
    ]


def test_election_safety_flags_two_leaders_in_one_term() -> None:
    monitor = SafetyMonitor()
    assert monitor.observe_leader(1, 3) == (True, [])
    first, found = monitor.observe_leader(2, 3)
    assert not first
    assert found == ["election safety: nodes 1 and 2 both lead term 3"]
    assert monitor.violations == found


def test_election_safety_accepts_one_leader_per_term() -> None:
    monitor = SafetyMonitor()
    assert monitor.observe_leader(1, 3)[0]
    assert monitor.observe_leader(1, 3) == (False, [])
    assert monitor.observe_leader(2, 4) == (True, [])
    assert monitor.violations == []


def test_log_matching_flags_a_different_entry_below_a_shared_one() -> None:
    a = _log(1, 1, 2, 3)
    b = _log(1, 1, 2, 3)
    b[1] = LogRecord(2, 1, b"something else")
    found = check_log_matching({1: a, 2: b})
    assert len(found) == 1
    assert "nodes 1 and 2 agree at index 4 but differ at 2" in found[0]


def test_log_matching_allows_suffixes_that_diverge_after_the_last_shared_entry() -> None:
    a = _log(1, 1, 2, 2)
    b = _log(1, 1, 3, 3)
    c = _log(1, 1, 2, start=1)[1:]  # a log compacted below index 2
    assert check_log_matching({1: a, 2: b, 3: c}) == []


def test_persisted_entries_with_one_index_and_term_must_be_identical() -> None:
    monitor = SafetyMonitor()
    assert monitor.observe_persisted(1, _log(1, 2)) == []
    assert monitor.observe_persisted(2, _log(1, 2)) == []
    found = monitor.observe_persisted(3, [LogRecord(2, 2, b"forged")])
    assert len(found) == 1 and found[0].startswith("log matching: node 3 persisted")


def test_state_machine_safety_flags_two_entries_applied_at_one_index() -> None:
    monitor = SafetyMonitor()
    assert monitor.observe_apply(1, 5, 2, b"put a", b"d1") == []
    assert monitor.observe_apply(2, 5, 2, b"put a", b"d1") == []
    found = monitor.observe_apply(3, 5, 3, b"put b", b"d2")
    assert any(v.startswith("state-machine safety: node 3 applied term 3") for v in found)
    assert any("digest" in v for v in found)


def test_state_machine_safety_compares_restored_snapshots_by_digest() -> None:
    monitor = SafetyMonitor()
    monitor.observe_apply(1, 7, 2, b"x", b"digest-7")
    assert monitor.observe_state(2, 7, b"digest-7", "installing a snapshot at") == []
    found = monitor.observe_state(3, 7, b"other", "restarting from")
    assert len(found) == 1 and "after restarting from index 7" in found[0]
    assert monitor.max_applied == 7


def test_leader_completeness_flags_a_leader_missing_an_earlier_commit() -> None:
    monitor = SafetyMonitor()
    monitor.observe_term(2)
    for index, term in enumerate((1, 2, 2), start=1):
        record = _log(1, 2, 2)[index - 1]
        monitor.observe_apply(1, index, term, record.payload, b"d%d" % index)
    monitor.observe_term(3)  # entries 1..3 were applied before anyone reached term 3
    found = monitor.check_new_leader(2, 3, 0, _log(1, 2))
    assert found == [
        "leader completeness: node 2 leads term 3 with log ending at 2, but index 3 was "
        "committed in an earlier term"
    ]
    assert monitor.check_new_leader(3, 3, 0, _log(1, 2, 2, 3)) == []


def test_leader_completeness_ignores_entries_committed_after_the_term_began() -> None:
    monitor = SafetyMonitor()
    monitor.observe_term(4)
    monitor.observe_apply(1, 1, 4, b"late", b"d")
    assert monitor.check_new_leader(2, 4, 0, []) == []


def test_leader_completeness_flags_a_conflicting_committed_entry() -> None:
    applied = {1: (1, b"1/1"), 2: (2, b"2/2")}
    found = check_leader_completeness(5, 3, 0, _log(1, 1), applied, 2)
    assert found == [
        "leader completeness: node 5 leads term 3 holding term 1 at index 2, but term 2 was "
        "committed there"
    ]
    assert check_leader_completeness(5, 3, 1, _log(2, start=2), applied, 2) == []


def test_acknowledged_writes_must_survive() -> None:
    applied = {3: (2, b"put x"), 4: (2, b"put y")}
    kept = AckedWrite(1, 3, 2, b"put x")
    overwritten = AckedWrite(2, 4, 1, b"put z")
    missing = AckedWrite(3, 9, 2, b"put w")
    assert check_acknowledged_writes([kept], applied, 4) == []
    found = check_acknowledged_writes([kept, overwritten, missing], applied, 4)
    assert [v.split(" was ")[0] for v in found] == ["lost write: op 2", "lost write: op 3"]
    beyond = check_acknowledged_writes([AckedWrite(4, 4, 2, b"put y")], applied, 3)
    assert len(beyond) == 1 and "beyond what the surviving replicas applied" in beyond[0]


def test_convergence_requires_equal_applied_state() -> None:
    assert check_convergence({1: (9, b"d"), 2: (9, b"d")}) == []
    found = check_convergence({1: (9, b"d"), 2: (9, b"e")})
    assert len(found) == 1 and found[0].startswith("convergence: live members did not")
    assert check_convergence({1: (9, b"d"), 2: (8, b"d")}) != []
    assert check_convergence({}) == ["convergence: no live members at the end of the run"]


def test_liveness_after_heal_is_bounded() -> None:
    assert check_liveness(100, 120, 130, 200) == []
    assert check_liveness(100, None, None, 200)[0].startswith("liveness: no leader")
    assert check_liveness(100, 350, 360, 200)[0].startswith("liveness: no leader")
    assert "no proposal committed" in check_liveness(100, 120, None, 200)[0]


def test_durable_promises_survive_a_restart() -> None:
    assert check_durable_promises(1, 5, 2, 5, (5, 2)) == []
    assert check_durable_promises(1, 6, 0, 5, (5, 2)) == []  # a later term frees the vote
    regressed = check_durable_promises(1, 4, 0, 5, None)
    assert regressed == ["durability: node 1 restarted in term 4 after sending messages of term 5"]
    forgot = check_durable_promises(1, 5, 0, 5, (5, 2))
    assert forgot == [
        "durability: node 1 granted its term-5 vote to 2, but restarted with its vote set to nobody"
    ]


def test_monitor_keeps_a_bounded_number_of_violations() -> None:
    monitor = SafetyMonitor()
    monitor.observe_leader(1, 1)
    for node in range(2, 1000):
        monitor.observe_leader(node, 1)
    assert 0 < len(monitor.violations) <= MAX_VIOLATIONS_PER_CHECK * 4
