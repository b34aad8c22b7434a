"""A throwaway 3-replica triumvir group, each replica its own child process and data dir."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bench.processes import ClusterProcesses, free_ports, log_tail, stop_process
from triumvir.common.cpus import allowed_cpus, spread
from triumvir.consensus.config import ENGINES

REPLICAS = 3

SERVE_MODULE = "triumvir_client.cli"
SERVER_MODULE = "triumvir.consensus.server"
REPO_ROOT = Path(__file__).resolve().parent.parent
# Where the client package lives in a source checkout; added to the children's path so the
# benchmark also works before the client is installed into the environment.
CLIENTS_DIR = REPO_ROOT / "clients"
PREFLIGHT_TIMEOUT_S = 60.0
HEALTHY_TIMEOUT_S = 30.0
HEALTH_POLL_INTERVAL_S = 0.1
HEALTH_RPC_TIMEOUT_S = 1.0


class TriumvirUnavailable(RuntimeError):
    """The triumvir server cannot be started here; the message says why."""


def child_env() -> dict[str, str]:
    paths = [str(CLIENTS_DIR), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}


def replica_command(
    replica_id: int,
    addresses: dict[int, str],
    data_dir: Path,
    engine: str,
    cpus: Sequence[int] = (),
) -> list[str]:
    """One replica's command line: its own listen address, every peer, its own data dir;
    given `cpus`, the CPU it keeps its threads on, spread as `triumvir up` spreads them."""
    peers = ",".join(f"{rid}={addr}" for rid, addr in sorted(addresses.items()))
    pinned = ["--cpus", str(spread(replica_id, cpus))] if cpus else []
    return [
        sys.executable, "-m", SERVE_MODULE, "serve", "consensus",
        "--id", str(replica_id),
        "--listen", addresses[replica_id],
        "--peers", peers,
        "--data-dir", str(data_dir),
        "--engine", engine,
        *pinned,
    ]  # fmt: skip


def preflight() -> None:
    """Fails fast, with the import error itself, when the server code is not there yet."""
    probe = f"import {SERVE_MODULE}, {SERVER_MODULE}"
    try:
        done = subprocess.run(
            [sys.executable, "-c", probe],
            env=child_env(),
            capture_output=True,
            timeout=PREFLIGHT_TIMEOUT_S,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise TriumvirUnavailable(f"could not run {sys.executable}: {err}") from err
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        reason = lines[-1] if lines else f"exit {done.returncode}"
        raise TriumvirUnavailable(f"triumvir server cannot be started: `{probe}` failed: {reason}")


class TriumvirCluster(ClusterProcesses):
    """Context manager: starts three replicas, waits for SERVING on all, SIGTERMs them."""

    name = "triumvir"

    def __init__(self, engine: str = "raft", *, spread_cpus: bool = True) -> None:
        if engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}")
        self._engine = engine
        self._cpus = allowed_cpus() if spread_cpus else ()
        self._addresses: dict[int, str] = {}
        super().__init__()
        self._root: Path | None = None

    @property
    def endpoints(self) -> tuple[str, ...]:
        return tuple(addr for _, addr in sorted(self._addresses.items()))

    @property
    def addresses(self) -> dict[int, str]:
        """Replica id -> client address, as the group was configured."""
        return dict(self._addresses)

    def start(self) -> None:
        preflight()
        ports = free_ports(REPLICAS)
        self._addresses = {i + 1: f"127.0.0.1:{port}" for i, port in enumerate(ports)}
        self._root = Path(tempfile.mkdtemp(prefix="bench-triumvir-"))
        env = child_env()
        try:
            for replica_id in sorted(self._addresses):
                data_dir = self._root / str(replica_id)
                data_dir.mkdir()
                cmd = replica_command(
                    replica_id, self._addresses, data_dir, self._engine, self._cpus
                )
                with (self._root / f"{replica_id}.log").open("wb") as log:
                    self._procs.append(
                        subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
                    )
            self._wait_serving()
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

    def _wait_serving(self) -> None:
        deadline = time.monotonic() + HEALTHY_TIMEOUT_S
        while time.monotonic() < deadline:
            self._raise_if_exited()
            if all(self._is_serving(addr) for addr in self.endpoints):
                return
            time.sleep(HEALTH_POLL_INTERVAL_S)
        raise TriumvirUnavailable(
            f"triumvir replicas were not all SERVING within {HEALTHY_TIMEOUT_S}s"
        )

    @staticmethod
    def _is_serving(address: str) -> bool:
        with grpc.insecure_channel(address) as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=HEALTH_RPC_TIMEOUT_S
                )
            except grpc.RpcError:
                return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def _raise_if_exited(self) -> None:
        assert self._root is not None
        for replica_id, proc in zip(sorted(self._addresses), self._procs, strict=True):
            if proc.poll() is not None:
                tail = log_tail(self._root / f"{replica_id}.log")
                raise TriumvirUnavailable(
                    f"triumvir replica {replica_id} exited with {proc.returncode}:\n{tail}"
                )
