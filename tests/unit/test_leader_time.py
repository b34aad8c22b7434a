"""Leader time, which lease expiry and idle client sessions are measured in, starts at the
wall clock and then follows the monotonic clock only."""

from __future__ import annotations

import time

import pytest

from triumvir.consensus import replica

HOUR_NS = 3_600 * 10**9


def test_leader_time_starts_at_the_wall_clock() -> None:
    assert abs(replica.now_ms() - time.time_ns() // 1_000_000) < 1_000


@pytest.mark.parametrize("step_ns", [HOUR_NS, -HOUR_NS])
def test_a_step_of_the_wall_clock_does_not_move_leader_time(
    step_ns: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = replica.now_ms()
    stepped = time.time_ns() + step_ns
    monkeypatch.setattr(time, "time_ns", lambda: stepped)
    after = replica.now_ms()
    assert 0 <= after - before < 1_000


def test_leader_time_follows_the_monotonic_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    before = replica.now_ms()
    ahead = time.monotonic_ns() + HOUR_NS
    monkeypatch.setattr(time, "monotonic_ns", lambda: ahead)
    assert replica.now_ms() - before >= HOUR_NS // 1_000_000
