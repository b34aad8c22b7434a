"""A throwaway 3-member etcd cluster on loopback, fsync on, removed afterwards."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from aetcd.rpc import rpc_pb2, rpc_pb2_grpc

from bench.processes import ClusterProcesses, free_ports, log_tail, stop_process

ETCD_BINARY = Path("/usr/bin/etcd")
ETCD_PACKAGE = "etcd-server"
MEMBERS = 3
APT_TIMEOUT_S = 600.0
# etcd elects within a few hundred ms on loopback; the budget covers a slow, shared machine.
HEALTHY_TIMEOUT_S = 30.0
HEALTH_POLL_INTERVAL_S = 0.1
HEALTH_RPC_TIMEOUT_S = 1.0


class EtcdUnavailable(RuntimeError):
    """etcd cannot be installed or started here; the message says what to do."""


@dataclass(frozen=True, slots=True)
class EtcdMember:
    name: str
    client_port: int
    peer_port: int

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.client_port}"


def ensure_etcd_binary(binary: Path = ETCD_BINARY) -> Path:
    """Returns the etcd binary, installing the Debian package when it is missing."""
    if binary.exists():
        return binary
    if os.geteuid() != 0:
        raise EtcdUnavailable(
            f"{binary} is missing and installing it needs root: "
            f"run `sudo apt-get install -y {ETCD_PACKAGE}` and try again"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", ETCD_PACKAGE]
    try:
        done = subprocess.run(install, env=env, capture_output=True, timeout=APT_TIMEOUT_S)
        if done.returncode != 0:
            # A fresh machine often has no package lists yet; refresh them once and retry.
            subprocess.run(
                ["apt-get", "update", "-q"], env=env, capture_output=True, timeout=APT_TIMEOUT_S
            )
            done = subprocess.run(install, env=env, capture_output=True, timeout=APT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise EtcdUnavailable(f"could not run apt-get to install {ETCD_PACKAGE}: {err}") from err
    if done.returncode != 0 or not binary.exists():
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-3:]
        raise EtcdUnavailable(
            f"`apt-get install -y {ETCD_PACKAGE}` failed (exit {done.returncode}): "
            + " | ".join(tail)
        )
    return binary


def member_command(
    binary: Path, member: EtcdMember, cluster: str, token: str, data_dir: Path
) -> list[str]:
    """One member's command line: loopback only, default (safe) fsync, quiet logs."""
    return [
        str(binary),
        "--name", member.name,
        "--data-dir", str(data_dir),
        "--listen-client-urls", member.client_url,
        "--advertise-client-urls", member.client_url,
        "--listen-peer-urls", member.peer_url,
        "--initial-advertise-peer-urls", member.peer_url,
        "--initial-cluster", cluster,
        "--initial-cluster-token", token,
        "--initial-cluster-state", "new",
        "--logger", "zap",
        "--log-level", "warn",
    ]  # fmt: skip


class EtcdCluster(ClusterProcesses):
    """Context manager: starts three members, waits until all agree on a leader, cleans up."""

    name = "etcd"

    def __init__(self, binary: Path | None = None) -> None:
        self._binary = binary
        self._members: tuple[EtcdMember, ...] = ()
        super().__init__()
        self._root: Path | None = None

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(m.endpoint for m in self._members)

    def start(self) -> None:
        binary = self._binary or ensure_etcd_binary()
        ports = free_ports(2 * MEMBERS)
        self._members = tuple(
            EtcdMember(f"m{i + 1}", ports[2 * i], ports[2 * i + 1]) for i in range(MEMBERS)
        )
        cluster = ",".join(f"{m.name}={m.peer_url}" for m in self._members)
        token = f"bench-{secrets.token_hex(4)}"
        self._root = Path(tempfile.mkdtemp(prefix="bench-etcd-"))
        try:
            for member in self._members:
                cmd = member_command(binary, member, cluster, token, self._root / member.name)
                # The child keeps its own copy of the descriptor, so ours can close at once.
                with (self._root / f"{member.name}.log").open("wb") as log:
                    self._procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for proc in self._procs:
            stop_process(proc)
        self._procs = []
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def _wait_healthy(self) -> None:
        """Every member answers Status and names the same leader."""
        deadline = time.monotonic() + HEALTHY_TIMEOUT_S
        while time.monotonic() < deadline:
            self._raise_if_exited()
            leaders = {self._leader_seen_by(m.endpoint) for m in self._members}
            if len(leaders) == 1 and 0 not in leaders:
                return
            time.sleep(HEALTH_POLL_INTERVAL_S)
        raise EtcdUnavailable(f"etcd members did not agree on a leader in {HEALTHY_TIMEOUT_S}s")

    def _leader_seen_by(self, endpoint: str) -> int:
        with grpc.insecure_channel(endpoint) as channel:
            try:
                status = rpc_pb2_grpc.MaintenanceStub(channel).Status(
                    rpc_pb2.StatusRequest(), timeout=HEALTH_RPC_TIMEOUT_S
                )
            except grpc.RpcError:
                return 0
        return status.leader

    def _raise_if_exited(self) -> None:
        assert self._root is not None
        for member, proc in zip(self._members, self._procs, strict=True):
            if proc.poll() is not None:
                tail = log_tail(self._root / f"{member.name}.log")
                raise EtcdUnavailable(
                    f"etcd member {member.name} exited with {proc.returncode}:\n{tail}"
                )
