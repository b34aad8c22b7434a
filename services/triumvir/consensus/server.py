"""`triumvir serve consensus`: one replica's gRPC server, public and peer services on one port."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry

from triumvir.common import bootstrap, cpus
from triumvir.common.logging import configure, get_logger
from triumvir.common.metrics import RequestMetrics, serve_metrics
from triumvir.consensus.config import ReplicaConfig
from triumvir.consensus.replica import Replica
from triumvir.consensus.servicers import (
    ClusterServicer,
    Forwarder,
    KVServicer,
    LeaseServicer,
    MaintenanceServicer,
    WatchServicer,
)
from triumvir.consensus.storage.fsutil import DataDirInUse
from triumvir.v1 import (
    cluster_pb2,
    cluster_pb2_grpc,
    kv_pb2,
    kv_pb2_grpc,
    lease_pb2,
    lease_pb2_grpc,
    maintenance_pb2,
    maintenance_pb2_grpc,
    watch_pb2,
    watch_pb2_grpc,
)

PUBLIC_SERVICES = tuple(
    module.DESCRIPTOR.services_by_name[name].full_name
    for module, name in (
        (kv_pb2, "KV"),
        (watch_pb2, "Watch"),
        (lease_pb2, "Lease"),
        (cluster_pb2, "Cluster"),
        (maintenance_pb2, "Maintenance"),
    )
)
HEALTH_REFRESH_S = 0.1


async def run(config: ReplicaConfig) -> None:
    log = get_logger(node_id=config.node_id)
    registry = CollectorRegistry()
    stop_metrics = _serve_metrics(registry, config.metrics_listen, log)
    replica = Replica(config, registry)
    await replica.start()
    forwarder = Forwarder()
    # Counting calls costs a little on each; it is paid only where metrics are served.
    server = bootstrap.build_server(
        request_bytes_max=config.request_bytes_max,
        interceptors=[RequestMetrics(registry)] if config.metrics_listen else [],
    )
    kv_pb2_grpc.add_KVServicer_to_server(KVServicer(replica, forwarder), server)
    watch_pb2_grpc.add_WatchServicer_to_server(WatchServicer(replica), server)
    lease_pb2_grpc.add_LeaseServicer_to_server(LeaseServicer(replica, forwarder), server)
    cluster_pb2_grpc.add_ClusterServicer_to_server(
        ClusterServicer(replica, forwarder, config.engine), server
    )
    maintenance_pb2_grpc.add_MaintenanceServicer_to_server(MaintenanceServicer(replica), server)
    replica.engine.add_peer_servicer(server, replica.peer_inbox())
    health = bootstrap.Health(server, PUBLIC_SERVICES)
    bootstrap.enable_reflection(server, (*PUBLIC_SERVICES, replica.engine.peer_service))
    await health.set_serving(False)

    async def track_health() -> None:
        # SERVING only while this replica is a member of a group that has a leader.
        while True:
            assert replica.driver is not None
            await health.set_serving(replica.driver.has_leader())
            await asyncio.sleep(HEALTH_REFRESH_S)

    tasks: list[asyncio.Task[None]] = []

    async def started() -> None:
        tasks.append(asyncio.get_running_loop().create_task(track_health()))

    async def stopped() -> None:
        stop_metrics()
        for task in tasks:
            task.cancel()
        await forwarder.close()
        await replica.stop()

    try:
        await bootstrap.serve_until_signalled(
            server, config.listen, on_started=started, on_stopped=stopped
        )
    except BaseException:
        log.exception("replica stopped on an error")
        await replica.stop()
        raise


def _serve_metrics(registry: CollectorRegistry, address: str, log: Any) -> Callable[[], None]:
    """Opened first, so a port already taken stops the replica before it touches its data."""
    if not address:
        return lambda: None
    try:
        stop = serve_metrics(registry, address)
    except OSError as exc:
        raise SystemExit(
            f"error: cannot serve metrics on {address} (--metrics-listen): {exc.strerror or exc}"
        ) from None
    log.info("metrics served", address=f"http://{address}/metrics")
    return stop


def serve(config: ReplicaConfig) -> None:
    configure(config.log_level)
    if config.cpus:
        # Before the loop and gRPC start their threads, so those inherit the mask.
        cpus.pin_process(config.cpus)
        get_logger(node_id=config.node_id).info("threads kept on CPUs", cpus=list(config.cpus))
    try:
        bootstrap.run(run(config), config.event_loop)
    except DataDirInUse as exc:
        # Not a crash: another replica owns the directory, and this one must not touch it.
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(1) from None
