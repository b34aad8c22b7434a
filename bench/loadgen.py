"""The load generator: C concurrent callers doing Puts against one system's leader.

One process, one `grpc.aio` channel to the leader, C callers each writing a 256-byte value
to its own 1000 keys for a warm-up and then a measured window. Only operations that
complete inside the measured window count, so the warm-up and the tail past the window
never skew throughput or latency.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

from bench.processes import strip_scheme
from triumvir.v1 import cluster_pb2, cluster_pb2_grpc, kv_pb2, kv_pb2_grpc

VALUE_BYTES = 256
KEYS_PER_CALLER = 1000
CONCURRENCY_MAX = 1024
# A safety net for a target that answers instantly (e.g. a broken fake): the measured
# window is what normally ends a caller.
OPS_PER_CALLER_MAX = 10_000_000
PUT_TIMEOUT_S = 5.0
DISCOVERY_RPC_TIMEOUT_S = 2.0
# A fresh group may take a few election timeouts to settle on a leader.
LEADER_DISCOVERY_ATTEMPTS_MAX = 100
LEADER_DISCOVERY_INTERVAL_S = 0.2
# Big enough for a 256-byte Put with headroom; grpc's default is fine but stating it keeps
# both targets on the same footing.
MESSAGE_BYTES_MAX = 4 * 1024 * 1024

Clock = Callable[[], float]


class LeaderNotFound(RuntimeError):
    """No endpoint named a leader within the discovery budget."""


class PutTarget(Protocol):
    """A system under test, already pointed at its leader."""

    name: str
    address: str

    async def put(self, key: bytes, value: bytes) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class LoadSpec:
    concurrency: int
    duration_s: float
    warmup_s: float
    value_bytes: int = VALUE_BYTES

    def __post_init__(self) -> None:
        if not 1 <= self.concurrency <= CONCURRENCY_MAX:
            raise ValueError(f"concurrency must be in 1..{CONCURRENCY_MAX}")
        if self.duration_s <= 0:
            raise ValueError("duration_s must be positive")
        if self.warmup_s < 0:
            raise ValueError("warmup_s must not be negative")
        if self.value_bytes < 0:
            raise ValueError("value_bytes must not be negative")


@dataclass(frozen=True, slots=True)
class LoadResult:
    system: str
    concurrency: int
    duration_s: float
    ok: int
    errors: int
    throughput_ops_s: float
    latency_ms_p50: float
    latency_ms_p99: float
    # (gRPC status name, count), most frequent first.
    error_codes: tuple[tuple[str, int], ...] = ()


def key_for(caller: int, i: int) -> bytes:
    """Caller `caller`'s i-th key: each caller cycles through its own KEYS_PER_CALLER keys."""
    return f"k{caller}-{i % KEYS_PER_CALLER}".encode()


def bench_value(value_bytes: int = VALUE_BYTES) -> bytes:
    return b"v" * value_bytes


def percentile(sorted_samples: Sequence[float], q: float) -> float:
    """Nearest-rank percentile: the smallest sample with at least q% of samples <= it.

    Nearest-rank always returns an observed latency, so p99 of a small run is a real
    request, not an interpolation between two.
    """
    if not 0 < q <= 100:
        raise ValueError("q must be in (0, 100]")
    if not sorted_samples:
        return math.nan
    rank = math.ceil(q / 100 * len(sorted_samples))
    return sorted_samples[rank - 1]


def summarize(
    system: str,
    concurrency: int,
    duration_s: float,
    latencies_s: Sequence[float],
    error_codes: Sequence[str],
) -> LoadResult:
    """Throughput and latency percentiles of the ok operations of one measured window."""
    assert duration_s > 0
    ordered_ms = sorted(s * 1000.0 for s in latencies_s)
    counts = Counter(error_codes).most_common()
    return LoadResult(
        system=system,
        concurrency=concurrency,
        duration_s=duration_s,
        ok=len(ordered_ms),
        errors=len(error_codes),
        throughput_ops_s=len(ordered_ms) / duration_s,
        latency_ms_p50=percentile(ordered_ms, 50),
        latency_ms_p99=percentile(ordered_ms, 99),
        error_codes=tuple(counts),
    )


async def run_load(
    target: PutTarget, spec: LoadSpec, clock: Clock = time.perf_counter
) -> LoadResult:
    """Drives `spec.concurrency` callers against `target` and measures one window."""
    value = bench_value(spec.value_bytes)
    window_start = clock() + spec.warmup_s
    window_end = window_start + spec.duration_s
    latencies_s: list[float] = []
    error_codes: list[str] = []

    async def caller(index: int) -> None:
        for i in range(OPS_PER_CALLER_MAX):
            started = clock()
            if started >= window_end:
                return
            code = ""
            try:
                await target.put(key_for(index, i), value)
            except grpc.aio.AioRpcError as err:
                code = err.code().name
            finished = clock()
            if not window_start <= finished <= window_end:
                continue
            if code:
                error_codes.append(code)
            else:
                latencies_s.append(finished - started)

    await asyncio.gather(*(caller(c) for c in range(spec.concurrency)))
    return summarize(target.name, spec.concurrency, spec.duration_s, latencies_s, error_codes)


def _channel(address: str) -> grpc.aio.Channel:
    options = [
        ("grpc.max_send_message_length", MESSAGE_BYTES_MAX),
        ("grpc.max_receive_message_length", MESSAGE_BYTES_MAX),
    ]
    return grpc.aio.insecure_channel(address, options=options)


async def _poll_for_leader(
    endpoints: Sequence[str], ask: Callable[[grpc.aio.Channel], Awaitable[str]]
) -> str:
    """Asks each endpoint in turn until one names a leader address."""
    last_error = "no endpoint answered"
    for _ in range(LEADER_DISCOVERY_ATTEMPTS_MAX):
        for endpoint in endpoints:
            channel = _channel(endpoint)
            try:
                address = await ask(channel)
            except grpc.aio.AioRpcError as err:
                last_error = f"{endpoint}: {err.code().name} {err.details()}"
                continue
            finally:
                await channel.close()
            if address:
                return address
            last_error = f"{endpoint}: no leader known yet"
        await asyncio.sleep(LEADER_DISCOVERY_INTERVAL_S)
    raise LeaderNotFound(f"no leader found among {list(endpoints)}: {last_error}")


class TriumvirTarget:
    """triumvir's `triumvir.v1.KV/Put`, sent straight to the leader."""

    name = "triumvir"

    def __init__(self, address: str) -> None:
        self.address = address
        self._request = kv_pb2.PutRequest
        self._channel = _channel(address)
        self._put = kv_pb2_grpc.KVStub(self._channel).Put

    async def put(self, key: bytes, value: bytes) -> None:
        await self._put(self._request(key=key, value=value), timeout=PUT_TIMEOUT_S)

    async def close(self) -> None:
        await self._channel.close()


async def find_triumvir_leader(endpoints: Sequence[str], known: dict[int, str]) -> str:
    """Cluster.Status names the leader's id; MemberList (or the launcher's map) its address."""

    async def ask(channel: grpc.aio.Channel) -> str:
        stub = cluster_pb2_grpc.ClusterStub(channel)
        status = await stub.Status(cluster_pb2.StatusRequest(), timeout=DISCOVERY_RPC_TIMEOUT_S)
        if status.leader_id == 0:
            return ""
        members = await stub.MemberList(
            cluster_pb2.MemberListRequest(), timeout=DISCOVERY_RPC_TIMEOUT_S
        )
        for member in members.members:
            if member.id == status.leader_id and member.client_urls:
                return strip_scheme(member.client_urls[0])
        return known.get(status.leader_id, "")

    return await _poll_for_leader(endpoints, ask)


class EtcdTarget:
    """etcd's `etcdserverpb.KV/Put` through the stubs shipped in `aetcd`."""

    name = "etcd"

    def __init__(self, address: str) -> None:
        self.address = address
        self._request = rpc_pb2.PutRequest
        self._channel = _channel(address)
        self._put = rpc_pb2_grpc.KVStub(self._channel).Put

    async def put(self, key: bytes, value: bytes) -> None:
        await self._put(self._request(key=key, value=value), timeout=PUT_TIMEOUT_S)

    async def close(self) -> None:
        await self._channel.close()


async def find_etcd_leader(endpoints: Sequence[str]) -> str:
    """Maintenance.Status names the leader's member id; MemberList maps it to a client URL."""

    async def ask(channel: grpc.aio.Channel) -> str:
        status = await rpc_pb2_grpc.MaintenanceStub(channel).Status(
            rpc_pb2.StatusRequest(), timeout=DISCOVERY_RPC_TIMEOUT_S
        )
        if status.leader == 0:
            return ""
        members = await rpc_pb2_grpc.ClusterStub(channel).MemberList(
            rpc_pb2.MemberListRequest(), timeout=DISCOVERY_RPC_TIMEOUT_S
        )
        for member in members.members:
            if status.leader == member.ID and member.clientURLs:
                return strip_scheme(member.clientURLs[0])
        return ""

    return await _poll_for_leader(endpoints, ask)
