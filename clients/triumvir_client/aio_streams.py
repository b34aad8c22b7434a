"""Long-lived streams of the asyncio client: a resuming watch and a lease keep-alive task."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import grpc

from triumvir.v1 import common_pb2, lease_pb2, lease_pb2_grpc, watch_pb2_grpc
from triumvir_client import errors
from triumvir_client.routing import FailedAttempt, reconnect_target
from triumvir_client.streams import (
    KEEPALIVE_RECONNECTS_MAX,
    STREAM_RETRY_CODES,
    WATCH_RECONNECTS_MAX,
    FellBehind,
    StreamContext,
    StreamEnded,
    WatchCursor,
    as_failure,
    keepalive_interval_s,
)


class AsyncWatch(AsyncIterator[common_pb2.Event]):
    """Async iterator of watch events that survives broken streams without gaps or repeats.

    `close()` ends the iteration; so does leaving an `async with` block.
    """

    def __init__(self, context: StreamContext, cursor: WatchCursor) -> None:
        self._context = context
        self._cursor = cursor
        self._target = context.endpoints.current
        self._closed = False
        self._pending: deque[common_pb2.Event] = deque()
        self._call: Any = None
        self._failures = 0

    @property
    def next_revision(self) -> int:
        """The revision the watch would resume from; 0 before the server confirmed it."""
        return self._cursor.next_revision

    def __aiter__(self) -> AsyncWatch:
        return self

    async def __anext__(self) -> common_pb2.Event:
        while not self._pending:
            if self._closed:
                raise StopAsyncIteration
            self._pending.extend(await self._receive())
        return self._pending.popleft()

    def close(self) -> None:
        self._closed = True
        self._drop_stream()

    async def __aenter__(self) -> AsyncWatch:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    async def _receive(self) -> list[common_pb2.Event]:
        try:
            if self._call is None:
                stub = self._context.stub(self._target, watch_pb2_grpc.WatchStub)
                self._call = stub.Watch()
                await self._call.write(self._cursor.create_request())
            response = await self._call.read()
            if response is grpc.aio.EOF:
                raise StreamEnded
        except (grpc.RpcError, StreamEnded) as error:
            if self._closed:
                return []
            failed = as_failure(error)
            if failed is not None and failed.code not in STREAM_RETRY_CODES:
                self.close()
                raise errors.from_status(failed.code, failed.message) from None
            await self._reconnect(failed)
            return []
        try:
            events = self._cursor.accept(response)
        except FellBehind:
            self._drop_stream()  # the next read watches again from the cursor, same member
            return []
        except errors.ClientError:
            self.close()
            raise
        if events or not (response.created or response.canceled):
            self._failures = 0
        return events

    def _drop_stream(self) -> None:
        call, self._call = self._call, None
        if call is not None:
            call.cancel()

    async def _reconnect(self, failed: FailedAttempt | None) -> None:
        self._drop_stream()
        self._failures += 1
        if self._failures > WATCH_RECONNECTS_MAX:
            self.close()
            last = f"{failed.code.name}: {failed.message}" if failed else "stream closed"
            raise errors.Unavailable(
                f"watch gave up after {WATCH_RECONNECTS_MAX} reconnects (last: {last})"
            )
        self._target = reconnect_target(self._context.endpoints, self._target, failed)
        await asyncio.sleep(self._context.policy.backoff_s(self._failures, self._context.rng))


class AsyncKeepAlive:
    """Keeps one lease alive from a task until `close()`; create it inside a running loop.

    `ttl_s` is the TTL last granted; `error` is set (and the task ends) when the lease is
    gone or the cluster stayed unreachable for too long.
    """

    def __init__(self, context: StreamContext, lease_id: int) -> None:
        self.lease_id = lease_id
        self.ttl_s: int | None = None
        self.error: errors.ClientError | None = None
        self._context = context
        self._target = context.endpoints.current
        self._refreshed = asyncio.Event()
        self._call: Any = None
        self._failures = 0
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"triumvir-keepalive-{lease_id}"
        )

    @property
    def alive(self) -> bool:
        return not self._task.done() and self.error is None

    async def wait_refreshed(self, timeout_s: float) -> bool:
        """True once the first refresh was answered (useful to check the lease exists)."""
        try:
            await asyncio.wait_for(self._refreshed.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def join(self, timeout_s: float) -> bool:
        """Waits for the keep-alive to end on its own (see `error`); True once it has."""
        done, _ = await asyncio.wait({self._task}, timeout=timeout_s)
        return bool(done)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def __aenter__(self) -> AsyncKeepAlive:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _run(self) -> None:
        while True:
            try:
                await self._refresh_until_gone()
                return
            except (grpc.RpcError, StreamEnded) as error:
                failed = as_failure(error)
                if failed is not None and failed.code not in STREAM_RETRY_CODES:
                    self.error = errors.from_status(failed.code, failed.message)
                    return
                self._failures += 1
                if self._failures > KEEPALIVE_RECONNECTS_MAX:
                    self.error = errors.Unavailable(
                        f"lease {self.lease_id} keep-alive gave up after "
                        f"{KEEPALIVE_RECONNECTS_MAX} reconnects"
                    )
                    return
                self._target = reconnect_target(self._context.endpoints, self._target, failed)
                await asyncio.sleep(
                    self._context.policy.backoff_s(self._failures, self._context.rng)
                )

    async def _refresh_until_gone(self) -> None:
        stub = self._context.stub(self._target, lease_pb2_grpc.LeaseStub)
        call = stub.KeepAlive()
        try:
            while True:
                await call.write(lease_pb2.LeaseKeepAliveRequest(id=self.lease_id))
                response = await call.read()
                if response is grpc.aio.EOF:
                    raise StreamEnded
                if response.ttl <= 0:
                    self.error = errors.NotFound(f"lease {self.lease_id} expired or was revoked")
                    return
                self.ttl_s = response.ttl
                self._failures = 0
                self._refreshed.set()
                await asyncio.sleep(keepalive_interval_s(response.ttl))
        finally:
            call.cancel()
