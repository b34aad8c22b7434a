"""Python client for triumvir: `Client` (blocking) and `AsyncClient` (asyncio).

from triumvir_client import Client
with Client(["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]) as client:
    client.put("greeting", "hello")
    print(client.get("greeting").kvs[0].value)
"""

from triumvir_client.aio import AsyncClient
from triumvir_client.client import Client
from triumvir_client.errors import ClientError, OutcomeUnknown
from triumvir_client.routing import RetryPolicy

__all__ = ["AsyncClient", "Client", "ClientError", "OutcomeUnknown", "RetryPolicy"]
