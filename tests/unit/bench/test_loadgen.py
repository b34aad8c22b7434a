import asyncio
import math
import types
from collections.abc import Generator

import grpc
import pytest

from bench.loadgen import (
    KEYS_PER_CALLER,
    VALUE_BYTES,
    LoadSpec,
    bench_value,
    key_for,
    percentile,
    run_load,
    summarize,
)


def test_key_names_follow_the_workload_shape():
    assert key_for(0, 0) == b"k0-0"
    assert key_for(7, 42) == b"k7-42"
    assert key_for(63, 999) == b"k63-999"


def test_each_caller_cycles_through_its_own_thousand_keys():
    keys = {key_for(3, i) for i in range(3 * KEYS_PER_CALLER)}
    assert len(keys) == KEYS_PER_CALLER
    assert key_for(3, KEYS_PER_CALLER + 5) == key_for(3, 5)
    assert key_for(1, 11) != key_for(11, 1)


def test_value_is_256_bytes():
    assert VALUE_BYTES == 256
    assert len(bench_value()) == 256


def test_nearest_rank_percentiles_on_one_to_hundred():
    samples = [float(x) for x in range(1, 101)]
    assert percentile(samples, 50) == 50.0
    assert percentile(samples, 99) == 99.0
    assert percentile(samples, 100) == 100.0
    assert percentile(samples, 1) == 1.0


def test_percentiles_on_small_samples_are_observed_values():
    samples = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0]
    assert percentile(samples, 50) == 5.0
    assert percentile(samples, 99) == 10.0
    assert percentile([4.2], 99) == 4.2
    assert percentile([1.0, 3.0], 50) == 1.0


def test_percentile_of_nothing_is_nan_and_bad_q_is_rejected():
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 0)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize_converts_to_ms_and_counts_errors_by_code():
    latencies_s = [0.004, 0.001, 0.002, 0.003]
    codes = ["UNAVAILABLE", "DEADLINE_EXCEEDED", "UNAVAILABLE"]
    result = summarize("etcd", 16, 2.0, latencies_s, codes)
    assert result.system == "etcd"
    assert result.concurrency == 16
    assert result.ok == 4
    assert result.errors == 3
    assert result.throughput_ops_s == 2.0
    assert result.latency_ms_p50 == pytest.approx(2.0)
    assert result.latency_ms_p99 == pytest.approx(4.0)
    assert result.error_codes == (("UNAVAILABLE", 2), ("DEADLINE_EXCEEDED", 1))


def test_summarize_with_no_successes_reports_zero_throughput_and_nan_latency():
    result = summarize("triumvir", 1, 5.0, [], ["UNAVAILABLE"])
    assert result.ok == 0
    assert result.throughput_ops_s == 0.0
    assert math.isnan(result.latency_ms_p50)


@pytest.mark.parametrize(
    ("concurrency", "duration_s", "warmup_s"), [(0, 1.0, 0.0), (1, 0.0, 0.0), (1, 1.0, -1.0)]
)
def test_load_spec_rejects_nonsense(concurrency, duration_s, warmup_s):
    with pytest.raises(ValueError):
        LoadSpec(concurrency, duration_s, warmup_s)


class FakeClock:
    """Time moves only when the fake target finishes a request."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@types.coroutine
def _switch() -> Generator[None, None, None]:
    # A bare yield hands control back to the event loop, letting the other callers run.
    yield


class FakeTarget:
    name = "fake"
    address = "fake:0"

    def __init__(self, clock: FakeClock, step_s: float, fail_every: int = 0) -> None:
        self.clock = clock
        self.step_s = step_s
        self.fail_every = fail_every
        self.calls: list[tuple[bytes, bytes, float]] = []

    async def put(self, key: bytes, value: bytes) -> None:
        await _switch()
        self.clock.now += self.step_s
        self.calls.append((key, value, self.clock.now))
        if self.fail_every and len(self.calls) % self.fail_every == 0:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata()
            )

    async def close(self) -> None:
        return None


def test_only_requests_completing_in_the_window_count():
    # Steps of 0.5 s are exact in binary floating point, so the window edges are exact too.
    clock = FakeClock()
    target = FakeTarget(clock, step_s=0.5)
    result = asyncio.run(run_load(target, LoadSpec(1, 50.0, 5.0), clock=clock))
    # Completions at 0.5 * k; the window [5, 55] holds k = 10 .. 110.
    assert result.ok == 101
    assert result.throughput_ops_s == pytest.approx(101 / 50.0)
    assert result.latency_ms_p50 == pytest.approx(500.0)
    assert result.errors == 0
    # The caller stops issuing once the window has closed.
    assert clock.now == pytest.approx(55.0)
    assert [k for k, _, _ in target.calls[:3]] == [b"k0-0", b"k0-1", b"k0-2"]
    assert all(len(v) == VALUE_BYTES for _, v, _ in target.calls)


def test_concurrent_callers_interleave_and_use_their_own_keys():
    clock = FakeClock()
    target = FakeTarget(clock, step_s=0.25)
    result = asyncio.run(run_load(target, LoadSpec(4, 20.0, 2.0), clock=clock))
    callers = {k.split(b"-")[0] for k, _, _ in target.calls}
    assert callers == {b"k0", b"k1", b"k2", b"k3"}
    in_window = [t for _, _, t in target.calls if 2.0 <= t <= 22.0]
    assert result.ok == len(in_window)
    assert result.concurrency == 4


def test_rpc_errors_are_counted_not_raised():
    clock = FakeClock()
    target = FakeTarget(clock, step_s=0.5, fail_every=4)
    result = asyncio.run(run_load(target, LoadSpec(1, 50.0, 5.0), clock=clock))
    assert result.ok + result.errors == 101
    # Calls 12, 16, ..., 108 fail among completions 10 .. 110.
    assert result.errors == 25
    assert result.error_codes == (("UNAVAILABLE", 25),)
