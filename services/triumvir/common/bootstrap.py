"""What every triumvir gRPC server has: bounded messages, health, reflection, graceful stop.

`build_server` makes a grpc.aio server with the limits set; `serve_until_signalled` runs it
until SIGTERM or SIGINT and then stops it with a grace period, so in-flight calls finish;
`run` runs a server's main coroutine on the chosen event loop.
"""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection

from triumvir.common.logging import get_logger

STOP_GRACE_S = 5.0
# A server allocates hundreds of collector-tracked objects per request (tasks, futures,
# coroutines), nearly all dead before the request ends. With the interpreter's default
# threshold of 700 the youngest generation was collected every few requests, and a busy
# leader spent about a tenth of its CPU walking objects that were about to be freed anyway.
# Collecting every 10,000 allocations keeps the collector's work per request small; each
# collection still only walks what is alive, which a server bounds.
GC_YOUNG_THRESHOLD = 10_000
OVERALL = ""  # the health check service name that means "the whole server"


def build_server(
    *,
    request_bytes_max: int,
    response_bytes_max: int = 64 * 1024 * 1024,
    interceptors: Iterable[grpc.aio.ServerInterceptor] = (),
) -> grpc.aio.Server:
    server = grpc.aio.server(
        interceptors=tuple(interceptors) or None,
        options=(
            ("grpc.max_receive_message_length", request_bytes_max),
            ("grpc.max_send_message_length", response_bytes_max),
            ("grpc.so_reuseport", 0),
        ),
    )
    # Generated `add_*_to_server` functions hand every method to the server twice: in a
    # generic handler and as a "registered" method. grpc.aio keeps one pending accept per
    # registered method and, for every call it accepts, waits on all of them at once, so
    # with a few dozen methods that wait costs more than the rest of a small unary call.
    # Routing every call through the generic handlers alone serves the same methods for
    # far less CPU per call.
    server.add_registered_method_handlers = _route_through_generic_handlers  # type: ignore[method-assign]
    return server


def _route_through_generic_handlers(
    service_name: str, method_handlers: dict[str, grpc.RpcMethodHandler]
) -> None:
    """Registers nothing: the same handlers already arrived as a generic handler."""


class Health:
    """gRPC health, one status for the whole server and one per public service."""

    def __init__(self, server: grpc.aio.Server, service_names: Iterable[str]) -> None:
        self._servicer = health_aio.HealthServicer()
        self._names = (OVERALL, *service_names)
        health_pb2_grpc.add_HealthServicer_to_server(self._servicer, server)
        self._serving: bool | None = None

    async def set_serving(self, serving: bool) -> None:
        if serving == self._serving:
            return
        self._serving = serving
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in self._names:
            await self._servicer.set(name, status)


def enable_reflection(server: grpc.aio.Server, service_names: Iterable[str]) -> None:
    names = (*service_names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name)
    reflection.enable_server_reflection((*names, reflection.SERVICE_NAME), server)


async def serve_until_signalled(
    server: grpc.aio.Server,
    listen: str,
    *,
    on_started: Callable[[], Awaitable[None]] | None = None,
    on_stopped: Callable[[], Awaitable[None]] | None = None,
) -> None:
    log = get_logger(listen=listen)
    if server.add_insecure_port(listen) == 0:
        raise OSError(f"cannot listen on {listen}: address in use or not valid")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if on_started is not None:
        await on_started()
    log.info("serving", event_loop=loop_name(loop))
    await stop.wait()
    log.info("stopping", grace_s=STOP_GRACE_S)
    await server.stop(STOP_GRACE_S)
    if on_stopped is not None:
        await on_stopped()
    log.info("stopped")


def run(main: Coroutine[Any, Any, None], event_loop: str) -> None:
    """Run `main` to completion on a new loop: "uvloop" or "asyncio".

    A gRPC server's loop wakes several times for every call; uvloop does each wake-up in C
    rather than in the standard library's Python, which saves a sixth of a busy replica's
    CPU. Both run the same asyncio code, so "asyncio" remains for platforms without uvloop.
    While `main` runs, the garbage collector's youngest generation is collected less often
    (see GC_YOUNG_THRESHOLD).
    """
    if event_loop == "asyncio":
        start: Callable[[Coroutine[Any, Any, None]], None] = asyncio.run
    else:
        try:
            import uvloop
        except ImportError:
            main.close()
            raise SystemExit(
                "error: uvloop is not installed; `pip install uvloop`, or start with "
                "--event-loop asyncio"
            ) from None
        start = uvloop.run
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
    try:
        start(main)
    finally:
        gc.set_threshold(*thresholds)


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """Which kind of loop is running, "uvloop" or "asyncio", for the logs."""
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
