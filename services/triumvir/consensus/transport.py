"""Peer transport: one long-lived gRPC client stream to each peer, fed from a bounded queue.

Consensus tolerates lost messages, so the transport never blocks the driver: when a
peer's queue is full or its stream is broken, messages are dropped and the protocol's own
retries (heartbeats, probes, election timeouts) recover.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Generic, TypeVar

import grpc

from triumvir.common.logging import get_logger

PEER_QUEUE_MESSAGES_MAX = 4096
MESSAGES_PER_WRITE_MAX = 256
RECONNECT_BACKOFF_S_MIN = 0.05
RECONNECT_BACKOFF_S_MAX = 1.0
PEER_MESSAGE_BYTES_MAX = 64 * 1024 * 1024

W = TypeVar("W")  # the wire message type (RaftMessage or PaxosMessage)

CHANNEL_OPTIONS = (
    ("grpc.max_send_message_length", PEER_MESSAGE_BYTES_MAX),
    ("grpc.max_receive_message_length", PEER_MESSAGE_BYTES_MAX),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
)


class PeerLink(Generic[W]):
    """The outbound stream to one peer."""

    def __init__(
        self,
        address: str,
        open_stream: Callable[[grpc.aio.Channel, AsyncIterator[list[W]]], grpc.aio.StreamUnaryCall],
    ) -> None:
        self.address = address
        self._open_stream = open_stream
        self._queue: asyncio.Queue[W] = asyncio.Queue(maxsize=PEER_QUEUE_MESSAGES_MAX)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def send(self, message: W) -> None:
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped += 1

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _drain(self) -> AsyncIterator[list[W]]:
        # Whatever queued up while the previous write was in flight goes out in one write.
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MESSAGES_PER_WRITE_MAX and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            yield batch

    async def _run(self) -> None:
        backoff = RECONNECT_BACKOFF_S_MIN
        log = get_logger(peer=self.address)
        while True:
            try:
                async with grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS) as ch:
                    await self._open_stream(ch, self._drain())
                backoff = RECONNECT_BACKOFF_S_MIN
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                log.debug("peer stream broke", code=exc.code().name, details=exc.details())
            except Exception:  # a broken peer link must never stop the replica
                log.exception("peer stream failed")
            # Messages queued while the link was down are stale: the protocol resends.
            while not self._queue.empty():
                self._queue.get_nowait()
                self.dropped += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RECONNECT_BACKOFF_S_MAX)


class PeerTransport(Generic[W]):
    """Routes outbound messages to peers by member id; addresses can change at run time."""

    def __init__(
        self,
        self_id: int,
        addresses: Mapping[int, str],
        open_stream: Callable[[grpc.aio.Channel, AsyncIterator[list[W]]], grpc.aio.StreamUnaryCall],
    ) -> None:
        self._self_id = self_id
        self._open_stream = open_stream
        self._addresses: dict[int, str] = dict(addresses)
        self._links: dict[int, PeerLink[W]] = {}

    def address_of(self, member_id: int) -> str:
        return self._addresses.get(member_id, "")

    def addresses(self) -> dict[int, str]:
        return dict(self._addresses)

    def set_address(self, member_id: int, address: str) -> None:
        if self._addresses.get(member_id) == address:
            return
        self._addresses[member_id] = address
        link = self._links.pop(member_id, None)
        if link is not None:
            asyncio.get_running_loop().create_task(link.close())

    def forget(self, member_id: int) -> None:
        self._addresses.pop(member_id, None)
        link = self._links.pop(member_id, None)
        if link is not None:
            asyncio.get_running_loop().create_task(link.close())

    def send(self, member_id: int, message: W) -> None:
        if member_id == self._self_id:
            return
        link = self._links.get(member_id)
        if link is None:
            address = self._addresses.get(member_id)
            if not address:
                return  # unknown peer: its address arrives with the membership change
            link = PeerLink(address, self._open_stream)
            link.start()
            self._links[member_id] = link
        link.send(message)

    async def close(self) -> None:
        links, self._links = list(self._links.values()), {}
        await asyncio.gather(*(link.close() for link in links))
