"""The request interceptor on a real grpc.aio server in this process."""

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from triumvir.common.bootstrap import build_server
from triumvir.common.metrics import RequestMetrics

CHECK = "/grpc.health.v1.Health/Check"


class _Health(health_pb2_grpc.HealthServicer):
    async def Check(self, request, context):
        if request.service == "bad":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no such service")
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def _calls(registry: CollectorRegistry, interceptor: RequestMetrics) -> None:
    server = build_server(request_bytes_max=1 << 20, interceptors=[interceptor])
    health_pb2_grpc.add_HealthServicer_to_server(_Health(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            check = health_pb2_grpc.HealthStub(channel).Check
            await check(health_pb2.HealthCheckRequest(), timeout=10)
            await check(health_pb2.HealthCheckRequest(), timeout=10)
            with pytest.raises(grpc.aio.AioRpcError):
                await check(health_pb2.HealthCheckRequest(service="bad"), timeout=10)
            made_up = channel.unary_unary("/no.Such/Method")
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await made_up(b"", timeout=10)
            assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop(None)


def test_unary_calls_are_counted_by_code_and_made_up_methods_are_not_remembered() -> None:
    registry = CollectorRegistry()
    interceptor = RequestMetrics(registry)
    asyncio.run(_calls(registry, interceptor))

    def value(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert value("triumvir_requests_total", method=CHECK, code="OK") == 2
    assert value("triumvir_requests_total", method=CHECK, code="INVALID_ARGUMENT") == 1
    assert value("triumvir_request_seconds_count", method=CHECK) == 3
    assert value("triumvir_requests_total", method="/no.Such/Method", code="UNIMPLEMENTED") is None
    assert list(interceptor._handlers) == [CHECK]
