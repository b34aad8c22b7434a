"""`triumvir up`: a local consensus group as child processes, for trying triumvir out.

Each replica runs `python -m triumvir_client.cli serve consensus ...` in its own session,
so a Ctrl-C reaches only this launcher, which then stops the replicas in order with
SIGTERM (and SIGKILL for any that outstay the grace period).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import FrameType
from typing import IO, TextIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from triumvir.common.cpus import spread

REPLICAS_MAX = 9
METRICS_PORT_OFFSET = 100  # replica n serves Prometheus metrics on its port + 100
HOST = "127.0.0.1"
HEALTH_WAIT_S = 30.0
HEALTH_POLL_S = 0.2
HEALTH_CHECK_TIMEOUT_S = 1.0
CHILD_POLL_S = 0.5
STOP_GRACE_S = 10.0


@dataclass(frozen=True, slots=True)
class ReplicaSpec:
    node_id: int
    address: str
    metrics_address: str
    data_dir: str
    log_path: str
    argv: tuple[str, ...]


def replica_specs(
    *, engine: str, data_dir: str, base_port: int, replicas: int, cpus: Sequence[int] = ()
) -> list[ReplicaSpec]:
    """Replica `n` (1-based) listens on base_port + n - 1, serves its metrics on that port
    plus METRICS_PORT_OFFSET, and keeps its data in data_dir/n. Given `cpus`, each replica
    keeps its threads on one of them, in turn (see `triumvir.common.cpus`): replicas on one
    machine then share a CPU only when there are more replicas than CPUs."""
    if not 1 <= replicas <= REPLICAS_MAX:
        raise ValueError(f"--replicas must be between 1 and {REPLICAS_MAX}")
    if not 1 <= base_port <= 65535 - replicas - METRICS_PORT_OFFSET:
        raise ValueError(f"--base-port {base_port} leaves no room for {replicas} replicas")
    ports = {n: base_port + n - 1 for n in range(1, replicas + 1)}
    addresses = {n: f"{HOST}:{port}" for n, port in ports.items()}
    peers = ",".join(f"{n}={address}" for n, address in addresses.items())
    specs = []
    for n, address in addresses.items():
        replica_dir = os.path.join(data_dir, str(n))
        metrics_address = f"{HOST}:{ports[n] + METRICS_PORT_OFFSET}"
        argv = (
            sys.executable,
            "-m",
            "triumvir_client.cli",
            "serve",
            "consensus",
            "--id",
            str(n),
            "--listen",
            address,
            "--peers",
            peers,
            "--data-dir",
            replica_dir,
            "--engine",
            engine,
            "--metrics-listen",
            metrics_address,
        )
        if cpus:
            argv += ("--cpus", str(spread(n, cpus)))
        log_path = os.path.join(data_dir, f"replica-{n}.log")
        specs.append(ReplicaSpec(n, address, metrics_address, replica_dir, log_path, argv))
    return specs


def grpcurl_example(address: str) -> str:
    return f'grpcurl -plaintext -d \'{{"key":"Zm9v","value":"YmFy"}}\' {address} triumvir.v1.KV/Put'


def run(specs: Sequence[ReplicaSpec], out: TextIO, err: TextIO) -> int:
    """Starts the replicas and supervises them until SIGINT or SIGTERM; returns an exit code."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: dict[int, subprocess.Popen[bytes]] = {}
    logs: list[IO[bytes]] = []
    try:
        for spec in specs:
            os.makedirs(spec.data_dir, exist_ok=True)
            log = open(spec.log_path, "ab")  # noqa: SIM115 - closed after the children stop
            logs.append(log)
            children[spec.node_id] = subprocess.Popen(
                spec.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        _report_health(specs, children, stop, out, err)
        if not stop.is_set():
            _print_usage(specs, out)
        return _supervise(specs, children, stop, err)
    finally:
        _stop_children(children, err)
        for log in logs:
            log.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _report_health(
    specs: Sequence[ReplicaSpec],
    children: dict[int, subprocess.Popen[bytes]],
    stop: threading.Event,
    out: TextIO,
    err: TextIO,
) -> None:
    waiting = {spec.node_id: spec for spec in specs}
    deadline = time.monotonic() + HEALTH_WAIT_S
    while waiting and not stop.is_set() and time.monotonic() < deadline:
        for node_id, spec in list(waiting.items()):
            if children[node_id].poll() is not None:
                err.write(f"replica {node_id} exited early; see {spec.log_path}\n")
                del waiting[node_id]
            elif _serving(spec.address):
                out.write(f"replica {node_id} serving on {spec.address}\n")
                del waiting[node_id]
        out.flush()
        stop.wait(HEALTH_POLL_S)
    for node_id, spec in waiting.items():
        err.write(
            f"replica {node_id} is not serving after {HEALTH_WAIT_S:.0f}s; see {spec.log_path}\n"
        )


def _serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=HEALTH_CHECK_TIMEOUT_S)
        except grpc.RpcError:
            return False
    return reply.status == health_pb2.HealthCheckResponse.SERVING


def _print_usage(specs: Sequence[ReplicaSpec], out: TextIO) -> None:
    endpoints = ",".join(spec.address for spec in specs)
    out.write(
        f"\nendpoints: {endpoints}\n"
        f"  export TRIUMVIR_ENDPOINTS={endpoints}\n"
        "  triumvir kv put foo bar && triumvir kv get foo\n\n"
        "with grpcurl (bytes fields are base64 in its JSON: Zm9v is foo, YmFy is bar):\n"
        f"  {grpcurl_example(specs[0].address)}\n\n"
        "metrics: " + ", ".join(f"http://{s.metrics_address}/metrics" for s in specs) + "\n"
        "logs: " + ", ".join(spec.log_path for spec in specs) + "\n"
        "press Ctrl-C to stop the cluster\n"
    )
    out.flush()


def _supervise(
    specs: Sequence[ReplicaSpec],
    children: dict[int, subprocess.Popen[bytes]],
    stop: threading.Event,
    err: TextIO,
) -> int:
    log_paths = {spec.node_id: spec.log_path for spec in specs}
    reported: set[int] = set()
    while not stop.wait(CHILD_POLL_S):
        for node_id, child in children.items():
            code = child.poll()
            if code is not None and node_id not in reported:
                reported.add(node_id)
                err.write(f"replica {node_id} exited with code {code}; see {log_paths[node_id]}\n")
                err.flush()
        if len(reported) == len(children):
            err.write("every replica has exited\n")
            return 1
    return 0


def _stop_children(children: dict[int, subprocess.Popen[bytes]], err: TextIO) -> None:
    running = [child for child in children.values() if child.poll() is None]
    if running:
        err.write(f"stopping {len(running)} replica(s)\n")
        err.flush()
    for child in running:
        child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for node_id, child in children.items():
        try:
            child.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            err.write(f"replica {node_id} ignored SIGTERM for {STOP_GRACE_S:.0f}s; killing it\n")
            child.kill()
            child.wait()
