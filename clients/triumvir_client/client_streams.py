"""Long-lived streams of the blocking client: a resuming watch and a lease keep-alive thread."""

from __future__ import annotations

import contextlib
import queue
import threading
from collections import deque
from collections.abc import Iterator
from typing import Any

import grpc

from triumvir.v1 import common_pb2, lease_pb2, lease_pb2_grpc, watch_pb2, watch_pb2_grpc
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

# Requests waiting to be sent on a keep-alive stream: the refresh in flight and the
# end-of-stream marker.
KEEPALIVE_OUTBOX_MAX = 2
KEEPALIVE_JOIN_TIMEOUT_S = 5.0


class Watch(Iterator[common_pb2.Event]):
    """Iterator of watch events that survives broken streams without gaps or repeats.

    `close()` (from any thread) ends the iteration; so does leaving a `with` block.
    """

    def __init__(self, context: StreamContext, cursor: WatchCursor) -> None:
        self._context = context
        self._cursor = cursor
        self._target = context.endpoints.current
        self._closed = threading.Event()
        self._pending: deque[common_pb2.Event] = deque()
        self._call: Any = None
        self._requests_done: threading.Event | None = None
        self._failures = 0
        self._lock = threading.Lock()

    @property
    def next_revision(self) -> int:
        """The revision the watch would resume from; 0 before the server confirmed it."""
        return self._cursor.next_revision

    def __iter__(self) -> Watch:
        return self

    def __next__(self) -> common_pb2.Event:
        while not self._pending:
            if self._closed.is_set():
                raise StopIteration
            self._pending.extend(self._receive())
        return self._pending.popleft()

    def close(self) -> None:
        self._closed.set()
        self._drop_stream()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _receive(self) -> list[common_pb2.Event]:
        if self._call is None:
            self._open()
        try:
            response = next(self._call, None)
            if response is None:
                raise StreamEnded
        except (grpc.RpcError, StreamEnded) as error:
            if self._closed.is_set():
                return []
            failed = as_failure(error)
            if failed is not None and failed.code not in STREAM_RETRY_CODES:
                self.close()
                raise errors.from_status(failed.code, failed.message) from None
            self._reconnect(failed)
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

    def _open(self) -> None:
        done = threading.Event()
        create = self._cursor.create_request()

        def requests() -> Iterator[watch_pb2.WatchRequest]:
            yield create
            # Keep the request side open; gRPC reads this on its own thread.
            done.wait()

        stub = self._context.stub(self._target, watch_pb2_grpc.WatchStub)
        with self._lock:
            if self._closed.is_set():
                done.set()
                return
            self._requests_done = done
            self._call = stub.Watch(requests())

    def _drop_stream(self) -> None:
        with self._lock:
            call, done = self._call, self._requests_done
            self._call, self._requests_done = None, None
        if done is not None:
            done.set()
        if call is not None:
            call.cancel()

    def _reconnect(self, failed: FailedAttempt | None) -> None:
        self._drop_stream()
        self._failures += 1
        if self._failures > WATCH_RECONNECTS_MAX:
            self.close()
            last = f"{failed.code.name}: {failed.message}" if failed else "stream closed"
            raise errors.Unavailable(
                f"watch gave up after {WATCH_RECONNECTS_MAX} reconnects (last: {last})"
            )
        self._target = reconnect_target(self._context.endpoints, self._target, failed)
        self._closed.wait(self._context.policy.backoff_s(self._failures, self._context.rng))


class KeepAlive:
    """Keeps one lease alive from a background thread until `close()`.

    `ttl_s` is the TTL last granted; `error` is set (and the thread stops) when the lease
    is gone or the cluster stayed unreachable for too long.
    """

    def __init__(self, context: StreamContext, lease_id: int) -> None:
        self.lease_id = lease_id
        self.ttl_s: int | None = None
        self.error: errors.ClientError | None = None
        self._context = context
        self._target = context.endpoints.current
        self._stop = threading.Event()
        self._refreshed = threading.Event()
        self._call: Any = None
        self._call_lock = threading.Lock()
        self._failures = 0
        self._thread = threading.Thread(
            target=self._run, name=f"triumvir-keepalive-{lease_id}", daemon=True
        )
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.error is None

    def wait_refreshed(self, timeout_s: float) -> bool:
        """True once the first refresh was answered (useful to check the lease exists)."""
        return self._refreshed.wait(timeout_s)

    def join(self, timeout_s: float) -> bool:
        """Waits for the keep-alive to end on its own (see `error`); True once it has."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    def close(self) -> None:
        self._stop.set()
        with self._call_lock:
            call = self._call
        if call is not None:
            call.cancel()
        if threading.current_thread() is not self._thread:
            self._thread.join(KEEPALIVE_JOIN_TIMEOUT_S)

    def __enter__(self) -> KeepAlive:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._refresh_until_stopped()
                return
            except (grpc.RpcError, StreamEnded) as error:
                if self._stop.is_set():
                    return
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
                self._stop.wait(self._context.policy.backoff_s(self._failures, self._context.rng))

    def _refresh_until_stopped(self) -> None:
        outbox: queue.Queue[lease_pb2.LeaseKeepAliveRequest | None] = queue.Queue(
            maxsize=KEEPALIVE_OUTBOX_MAX
        )

        def requests() -> Iterator[lease_pb2.LeaseKeepAliveRequest]:
            while (item := outbox.get()) is not None:
                yield item

        stub = self._context.stub(self._target, lease_pb2_grpc.LeaseStub)
        call = stub.KeepAlive(requests())
        with self._call_lock:
            self._call = call
        try:
            while not self._stop.is_set():
                outbox.put(lease_pb2.LeaseKeepAliveRequest(id=self.lease_id))
                response = next(call, None)
                if response is None:
                    raise StreamEnded
                if response.ttl <= 0:
                    self.error = errors.NotFound(f"lease {self.lease_id} expired or was revoked")
                    return
                self.ttl_s = response.ttl
                self._failures = 0
                self._refreshed.set()
                self._stop.wait(keepalive_interval_s(response.ttl))
        finally:
            with self._call_lock:
                self._call = None
            with contextlib.suppress(queue.Full):
                outbox.put_nowait(None)
            call.cancel()
