"""Bookkeeping for long-lived streams: where a broken watch resumes, how often a lease is
refreshed, and which stream failures are worth reconnecting after.

Pure: the sync and asyncio clients feed responses in and act on the answers.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc

from triumvir.v1 import common_pb2, watch_pb2
from triumvir_client import errors
from triumvir_client.routing import EndpointSet, FailedAttempt, RetryPolicy

# Consecutive reconnects without progress before a watch or keep-alive gives up.
WATCH_RECONNECTS_MAX = 16
KEEPALIVE_RECONNECTS_MAX = 16
# Refresh a lease at a third of its TTL, as etcd clients do: two refreshes can be lost
# before the lease is at risk. The floor stops a 1-second lease from spinning.
KEEPALIVE_TTL_FRACTION = 1 / 3
KEEPALIVE_INTERVAL_S_MIN = 0.2
# Codes after which a stream is reopened (on another member if needed) rather than failed.
STREAM_RETRY_CODES = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.ABORTED, grpc.StatusCode.DEADLINE_EXCEEDED}
)


@dataclass(frozen=True, slots=True)
class StreamContext:
    """What a stream borrows from its client: the members, the retry bounds, the stubs."""

    endpoints: EndpointSet
    policy: RetryPolicy
    rng: random.Random
    stub: Callable[[str, type], Any]


class StreamEnded(Exception):
    """The server closed a stream that should have stayed open."""


def as_failure(error: BaseException) -> FailedAttempt | None:
    """The gRPC status of a broken stream; None when the server simply closed it."""
    return FailedAttempt.from_error(error) if isinstance(error, grpc.RpcError) else None


def keepalive_interval_s(ttl_s: int) -> float:
    return max(ttl_s * KEEPALIVE_TTL_FRACTION, KEEPALIVE_INTERVAL_S_MIN)


FELL_BEHIND_REASON = "watcher fell behind"  # how the server starts that cancel_reason


class FellBehind(Exception):
    """The server dropped a watch that was read too slowly; it resumes from next_revision."""


class WatchCursor:
    """Remembers how far one watch got, so a replacement stream neither repeats nor skips.

    Events of one revision (a transaction's writes) arrive in one response, or in several
    marked `fragment` that are put back together before any is delivered, so after a
    response has been accepted every event up to `next_revision - 1` has been seen.
    """

    def __init__(
        self,
        key: bytes,
        range_end: bytes = b"",
        *,
        start_revision: int = 0,
        prev_kv: bool = False,
    ) -> None:
        if start_revision < 0:
            raise ValueError("start_revision must be >= 0")
        self._key = key
        self._range_end = range_end
        self._prev_kv = prev_kv
        self._requested_revision = start_revision
        # 0 until known: "from the next write", fixed by the server's `created` header.
        self.next_revision = start_revision
        self._fragments: list[common_pb2.Event] = []  # of a batch not yet complete

    def create_request(self) -> watch_pb2.WatchRequest:
        # A new stream sends every batch from its start again.
        self._fragments = []
        return watch_pb2.WatchRequest(
            create_request=watch_pb2.WatchCreateRequest(
                key=self._key,
                range_end=self._range_end,
                start_revision=self.next_revision,
                prev_kv=self._prev_kv,
                fragment=True,
            )
        )

    def accept(self, response: watch_pb2.WatchResponse) -> list[common_pb2.Event]:
        """The events not delivered before, in order; raises when the watch was canceled
        (`FellBehind` when watching again from `next_revision` is all it takes)."""
        if response.canceled:
            if not response.compact_revision and response.cancel_reason.startswith(
                FELL_BEHIND_REASON
            ):
                raise FellBehind(response.cancel_reason)
            raise self._cancel_error(response)
        if response.created:
            if self.next_revision == 0:
                self.next_revision = response.header.revision + 1
            return []
        if response.fragment:
            self._fragments.extend(response.events)
            return []
        if not response.events:
            # Progress: every event up to header.revision has been delivered, unless it
            # came between the fragments of a batch.
            if not self._fragments:
                self.next_revision = max(self.next_revision, response.header.revision + 1)
            return []
        events = [*self._fragments, *response.events]
        self._fragments = []
        floor = self.next_revision - 1
        fresh = [event for event in events if event.kv.mod_revision > floor]
        if fresh:
            self.next_revision = max(self.next_revision, fresh[-1].kv.mod_revision + 1)
        return fresh

    def _cancel_error(self, response: watch_pb2.WatchResponse) -> errors.ClientError:
        if response.compact_revision > 0:
            return errors.WatchCompacted(
                f"watch from revision {self.next_revision} cannot be served: history before "
                f"revision {response.compact_revision} was compacted",
                compact_revision=response.compact_revision,
            )
        reason = response.cancel_reason or "no reason given"
        return errors.WatchCanceled(f"the server canceled the watch: {reason}")
