"""Real replica processes on loopback for integration tests: start, kill -9, restart, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from triumvir.v1 import cluster_pb2, cluster_pb2_grpc

START_TIMEOUT_S = 20.0


def free_ports(count: int) -> list[int]:
    sockets, ports = [], []
    for _ in range(count):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sockets.append(sock)
        ports.append(sock.getsockname()[1])
    for sock in sockets:
        sock.close()
    return ports


@dataclass
class Node:
    node_id: int
    address: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    extra: list[str] = field(default_factory=list)


class LocalCluster:
    def __init__(self, root: Path, size: int = 3, *, engine: str = "raft", **flags: object):
        self.root = root
        self.engine = engine
        self.flags = {
            "tick-ms": 10,
            "election-ticks": 30,
            "heartbeat-ticks": 3,
            **{k.replace("_", "-"): v for k, v in flags.items()},
        }
        ports = free_ports(size)
        self.nodes: dict[int, Node] = {}
        for index, port in enumerate(ports, start=1):
            self.nodes[index] = Node(
                index, f"127.0.0.1:{port}", root / f"node{index}", root / f"node{index}.log"
            )
        self.initial = dict(self.nodes)

    def peers_flag(self, nodes: dict[int, Node] | None = None) -> str:
        nodes = self.initial if nodes is None else nodes
        return ",".join(f"{n.node_id}={n.address}" for n in nodes.values())

    def _command(self, node: Node) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "triumvir.consensus",
            "--id",
            str(node.node_id),
            "--listen",
            node.address,
            "--data-dir",
            str(node.data_dir),
            "--engine",
            self.engine,
            "--peers",
            self.peers_flag(),
        ]
        for name, value in self.flags.items():
            command += [f"--{name}", str(value)]
        return command + node.extra

    def start(self, node_id: int | None = None) -> None:
        for node in self.nodes.values() if node_id is None else [self.nodes[node_id]]:
            node.data_dir.mkdir(parents=True, exist_ok=True)
            log = open(node.log_path, "ab")  # noqa: SIM115 - the child owns it
            node.process = subprocess.Popen(
                self._command(node),
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            log.close()

    def add_node(self, *, join: bool = True) -> Node:
        node_id = max(self.nodes) + 1
        (port,) = free_ports(1)
        node = Node(
            node_id,
            f"127.0.0.1:{port}",
            self.root / f"node{node_id}",
            self.root / f"node{node_id}.log",
            extra=["--join"] if join else [],
        )
        self.nodes[node_id] = node
        return node

    def kill(self, node_id: int) -> None:
        process = self.nodes[node_id].process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(10)

    def stop(self) -> None:
        for node in self.nodes.values():
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)
        for node in self.nodes.values():
            if node.process is not None:
                try:
                    node.process.wait(10)
                except subprocess.TimeoutExpired:
                    node.process.kill()
                    node.process.wait(5)

    def endpoints(self) -> list[str]:
        return [node.address for node in self.nodes.values()]

    def status(self, node_id: int, timeout: float = 1.0) -> cluster_pb2.StatusResponse | None:
        try:
            with grpc.insecure_channel(self.nodes[node_id].address) as channel:
                return cluster_pb2_grpc.ClusterStub(channel).Status(
                    cluster_pb2.StatusRequest(), timeout=timeout
                )
        except grpc.RpcError:
            return None

    def healthy(self, node_id: int) -> bool:
        try:
            with grpc.insecure_channel(self.nodes[node_id].address) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=1.0
                )
                return reply.status == health_pb2.HealthCheckResponse.SERVING
        except grpc.RpcError:
            return False

    def wait_leader(self, timeout: float = START_TIMEOUT_S, exclude: set[int] = frozenset()) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for node_id in self.nodes:
                if node_id in exclude:
                    continue
                status = self.status(node_id, timeout=0.5)
                if status is not None and status.leader_id and status.leader_id not in exclude:
                    leader = self.status(status.leader_id, timeout=0.5)
                    if leader is not None and leader.leader_id == status.leader_id:
                        return status.leader_id
            time.sleep(0.05)
        raise AssertionError(f"no leader within {timeout}s; logs in {self.root}")

    def log_tail(self, node_id: int, lines: int = 30) -> str:
        try:
            return "\n".join(self.nodes[node_id].log_path.read_text().splitlines()[-lines:])
        except OSError:
            return ""
