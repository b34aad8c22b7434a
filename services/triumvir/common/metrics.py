"""Prometheus metrics of one server: its own registry, an HTTP endpoint, and every unary call
counted by method and status code and timed.

Each server keeps its metrics in a registry of its own rather than the library's global
one, so two servers in one process (as in tests) never collide over a metric's name.
Values that a server already keeps (its term, its commit index) are read when Prometheus
scrapes, never updated on the request path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

# From half a millisecond (a lone write on a fast LAN) to seconds (a write that waited out
# an election), roughly doubling.
LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.0, 2.0, 5.0,
)  # fmt: skip


def serve_metrics(registry: CollectorRegistry, address: str) -> Callable[[], None]:
    """Serve `registry` at http://`address`/metrics on a thread; returns what stops it."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]") or "0.0.0.0"  # [::]:9101 names an IPv6 host
    server, thread = start_http_server(int(port), addr=host, registry=registry)

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    return stop


def _code_name(code: Any) -> str:
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


class RequestMetrics(grpc.aio.ServerInterceptor):
    """Counts and times every unary call. Streams (watches, keep-alives, peer links) pass
    through untouched: how long one stays open says nothing about the server."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._calls = Counter(
            "triumvir_requests",
            "Unary calls answered, by method and gRPC status code.",
            ("method", "code"),
            registry=registry,
        )
        self._seconds = Histogram(
            "triumvir_request_seconds",
            "Time from a unary call's arrival to its answer, by method.",
            ("method",),
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        # A method's handler never changes once the server runs, so each is wrapped once.
        # Only methods the server has are kept: a name a client makes up is not remembered.
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        try:
            return self._handlers[method]
        except KeyError:
            pass
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        if handler.unary_unary is not None:
            handler = handler._replace(unary_unary=self._timed(method, handler.unary_unary))
        self._handlers[method] = handler
        return handler

    def _timed(self, method: str, behavior: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
        answered = self._calls.labels(method, "OK")
        seconds = self._seconds.labels(method)

        async def timed(request: Any, context: grpc.aio.ServicerContext) -> Any:
            code = "OK"
            started = time.perf_counter()
            try:
                return await behavior(request, context)
            except asyncio.CancelledError:
                code = "CANCELLED"
                raise
            except BaseException:
                # An abort has set the call's status code (and sent it) before raising.
                code = _code_name(context.code())
                raise
            finally:
                # Timed before it is counted: a scrape that sees the count sees the time.
                seconds.observe(time.perf_counter() - started)
                (answered if code == "OK" else self._calls.labels(method, code)).inc()

        return timed
